//! The server crate's top-level modules import each other without a circle, the
//! low-level ones never reach up to the state or an edge, and no source file is longer
//! than the limit.
//!
//! The graph is read from the source, not from the compiler: every `.rs` file under
//! `crates/server/src` (test modules left out), with comments and string literals
//! skipped, contributes an edge from its top-level module to each top-level module its
//! `crate::` paths name (`crate::a::b`, grouped `crate::{a, b::c}`) and each one its
//! `super::` paths climb out to (`super::super::x` from `a/b/c.rs` names `a::x`, inside
//! `a`; from `a/b.rs` it names the top-level `x`). `lib.rs` and `main.rs` assemble the
//! modules and are not part of the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest a source file may be (tests under `crates/server/tests` aside): past it, a
/// file holds more than one thing and should be split along what it holds.
const MAX_LINES: usize = 700;

/// Files over [`MAX_LINES`] that only warn (none: the signaling's handlers were the last,
/// split by the membership work of issue #13).
const WARN_ONLY: &[&str] = &[];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file relative to `src`: `a/b/mod.rs` and `a/b.rs` are `[a, b]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.strip_suffix(".rs").expect(".rs file");
    if stem != "mod" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The code of a Rust file with comments removed and string and character literals
/// emptied, so that neither can contribute (or hide) a path.
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(k).copied().unwrap_or('\0');
        match c[i] {
            '/' if at(i + 1) == '/' => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            }
            // Raw strings: r"…", r#"…"#, br##"…"##.
            'r' if (at(i + 1) == '"' || at(i + 1) == '#')
                && !(i > 0
                    && (c[i - 1].is_alphanumeric() || c[i - 1] == '_')
                    && c[i - 1] != 'b') =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while at(j) == '#' {
                    hashes += 1;
                    j += 1;
                }
                if at(j) != '"' {
                    out.push(c[i]);
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= c.len() {
                        break;
                    }
                    if c[j] == '"' && (1..=hashes).all(|h| at(j + h) == '#') {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
            }
            '"' => {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    if c[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push_str("\"\"");
            }
            // A character literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            '\'' if at(i + 1) == '\\' || at(i + 2) == '\'' => {
                i += 1;
                while i < c.len() && c[i] != '\'' {
                    if c[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

/// Removes every item annotated `#[cfg(test)]` (a `mod tests { … }` block, or a
/// `mod tests;` whose file is then skipped too), up to its `;` or its balanced block.
/// Returns the code left and the names of the test module files declared here.
fn without_test_items(code: &str) -> (String, Vec<String>) {
    const ATTR: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut test_files = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(ATTR) {
        out.push_str(&rest[..at]);
        let item = &rest[at + ATTR.len()..];
        let mut depth = 0usize;
        let mut end = item.len();
        for (k, ch) in item.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = k + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = k + 1;
                    let decl = item[..k].trim();
                    if let Some(name) = decl
                        .rsplit_once("mod ")
                        .map(|(_, n)| n.trim())
                        .filter(|n| n.chars().all(|c| c.is_alphanumeric() || c == '_'))
                    {
                        test_files.push(name.to_owned());
                    }
                    break;
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    (out, test_files)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn ident_at(s: &str) -> &str {
    let s = s.trim_start();
    let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
    &s[..end]
}

/// The first segment of each path in `{a, b::c, d::{e, f}}` (the text after the `{`).
fn group_heads(s: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expecting = true;
    for (k, ch) in s.char_indices() {
        match ch {
            '{' => {
                depth += 1;
                expecting = false;
            }
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expecting = true,
            c if expecting && is_ident(c) => {
                heads.push(ident_at(&s[k..]).to_owned());
                expecting = false;
            }
            _ => {}
        }
    }
    heads
}

/// What follows a `crate::` or `super::` prefix: one name, or a group's first names.
fn heads_after(s: &str) -> Vec<String> {
    let s = s.trim_start();
    if let Some(group) = s.strip_prefix('{') {
        group_heads(group)
    } else {
        let name = ident_at(s);
        if name.is_empty() {
            Vec::new()
        } else {
            vec![name.to_owned()]
        }
    }
}

/// The top-level modules a file's code names, through `crate::` and `super::` paths.
fn targets(code: &str, module: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let boundary = |at: usize| at == 0 || !code[..at].ends_with(|c: char| is_ident(c) || c == ':');
    for (at, _) in code.match_indices("crate::") {
        if boundary(at) {
            out.extend(heads_after(&code[at + "crate::".len()..]));
        }
    }
    for (at, _) in code.match_indices("super::") {
        if !boundary(at) {
            continue; // counted from the first `super::` of the chain
        }
        let mut rest = &code[at..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r.trim_start();
        }
        // `super` of the file's module, `ups` times: the crate root when it climbs to it.
        if ups >= module.len() {
            out.extend(heads_after(rest));
        }
    }
    out
}

#[derive(Debug)]
struct Graph {
    /// module → module it imports → the files that do.
    edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

fn read_graph() -> (Graph, Vec<(String, usize)>) {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let top_level: BTreeSet<String> = files
        .iter()
        .filter_map(|f| {
            module_path(f.strip_prefix(&src).expect("under src"))
                .first()
                .cloned()
        })
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut test_files = BTreeSet::new();
    let mut parsed = Vec::new();
    let mut lengths = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        lengths.push((rel.to_string_lossy().into_owned(), text.lines().count()));
        let (code, tests) = without_test_items(&strip(&text));
        let module = module_path(rel);
        for t in tests {
            let mut m = module.clone();
            m.push(t);
            test_files.insert(m);
        }
        parsed.push((rel.to_string_lossy().into_owned(), module, code));
    }
    let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (rel, module, code) in parsed {
        let Some(from) = module.first() else { continue };
        if from == "lib" || from == "main" || test_files.contains(&module) {
            continue;
        }
        for to in targets(&code, &module) {
            if &to != from && top_level.contains(&to) {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .insert(rel.clone());
            }
        }
    }
    (Graph { edges }, lengths)
}

impl Graph {
    /// The strongly connected components with more than one module: each is a circle
    /// (or several sharing modules). Tarjan's algorithm.
    fn circles(&self) -> Vec<Vec<String>> {
        struct State<'a> {
            g: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on_stack: BTreeSet<&'a str>,
            next: usize,
            out: Vec<Vec<String>>,
        }
        fn visit<'a>(s: &mut State<'a>, v: &'a str) {
            s.index.insert(v, s.next);
            s.low.insert(v, s.next);
            s.next += 1;
            s.stack.push(v);
            s.on_stack.insert(v);
            let g = s.g;
            for w in g.edges.get(v).into_iter().flat_map(|m| m.keys()) {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if s.on_stack.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if s.low[v] == s.index[v] {
                let mut component = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    s.out.push(component);
                }
            }
        }
        let mut s = State {
            g: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            next: 0,
            out: Vec::new(),
        };
        for v in self.edges.keys() {
            if !s.index.contains_key(v.as_str()) {
                visit(&mut s, v);
            }
        }
        s.out
    }

    fn describe(&self, component: &[String]) -> String {
        let mut text = String::new();
        for from in component {
            for (to, files) in self.edges.get(from).into_iter().flatten() {
                if component.contains(to) {
                    let files: Vec<&str> = files.iter().map(String::as_str).collect();
                    text.push_str(&format!("  {from} -> {to} ({})\n", files.join(", ")));
                }
            }
        }
        text
    }
}

#[test]
fn top_level_modules_import_each_other_without_a_circle() {
    let (graph, _) = read_graph();
    // The reader must see the graph at all: the HTTP edge uses the store and auth.
    assert!(
        graph
            .edges
            .get("http")
            .is_some_and(|m| m.contains_key("store") && m.contains_key("auth")),
        "the module graph looks empty: {graph:#?}"
    );
    let circles = graph.circles();
    let report: Vec<String> = circles
        .iter()
        .map(|c| format!("{}:\n{}", c.join(" <-> "), graph.describe(c)))
        .collect();
    assert!(
        circles.is_empty(),
        "import circles among crates/server/src's modules:\n{}",
        report.join("\n")
    );
}

/// Modules below the edges: they hold one thing each and are used by the edges and the
/// tasks, never the other way round. None may reach the shared application state or an
/// edge; `cluster` (the Redis connection) is used by the live registry and the media
/// router and must not know them.
#[test]
fn low_level_modules_do_not_reach_up() {
    const LOW: &[&str] = &["auth", "cluster", "config", "limits", "live", "store"];
    const HIGH: &[&str] = &["state", "http", "signaling", "membership", "tasks"];
    let (graph, _) = read_graph();
    let mut wrong = Vec::new();
    for from in LOW {
        let forbidden: Vec<&str> = if *from == "cluster" {
            HIGH.iter().chain(&["live", "media"]).copied().collect()
        } else {
            HIGH.to_vec()
        };
        for (to, files) in graph.edges.get(*from).into_iter().flatten() {
            if forbidden.contains(&to.as_str()) {
                let files: Vec<&str> = files.iter().map(String::as_str).collect();
                wrong.push(format!("{from} -> {to} ({})", files.join(", ")));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "low-level modules importing upwards:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let (_, lengths) = read_graph();
    let mut over = Vec::new();
    for (file, lines) in &lengths {
        if *lines <= MAX_LINES {
            continue;
        }
        if WARN_ONLY.contains(&file.as_str()) {
            eprintln!("warning: crates/server/src/{file} has {lines} lines (limit {MAX_LINES})");
        } else {
            over.push(format!("{file}: {lines} lines"));
        }
    }
    assert!(
        over.is_empty(),
        "files in crates/server/src over {MAX_LINES} lines (split them along what they hold):\n{}",
        over.join("\n")
    );
}

/// The reader itself: the path forms it must understand, and what it must not count.
#[test]
fn the_reader_finds_grouped_nested_and_climbing_paths() {
    let code = strip(
        r##"
        use crate::{a, b::c, d::{e, f}};
        use crate::g::H;
        use super::super::x::Y;
        use super::sibling;
        // use crate::in_comment;
        /* use crate::in_block; */
        const S: &str = "crate::in_string";
        const R: &str = r#"crate::in_raw "string""#;
        fn f<'a>(c: char) -> bool { c == '"' || c == '\'' }
        use crate::after_chars;
        #[cfg(test)]
        mod tests { use crate::only_in_tests; }
        #[cfg(test)]
        mod more;
        "##,
    );
    let (code, test_files) = without_test_items(&code);
    assert_eq!(test_files, ["more"]);
    let nested = ["m".to_owned(), "n".to_owned()];
    let found = targets(&code, &nested);
    let expected: BTreeSet<String> = ["a", "b", "d", "g", "x", "after_chars"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, expected);
    // From `m.rs` (one level), `super::` is the crate root.
    let top = targets(&strip("use super::sibling::X;"), &["m".to_owned()]);
    assert_eq!(top, BTreeSet::from(["sibling".to_owned()]));
}
