//! The short corpus run of the `signaling_payload` fuzz target: every committed seed
//! (`fuzz/corpus/signaling_payload/`) through the target's entry point, in `cargo test`
//! (fuzz/README.md says why CI replays the corpus this way).

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read seed");
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_signaling_seed_is_a_payload_the_server_accepts() {
    let files = corpus("signaling_payload");
    assert!(files.len() >= 10, "seeds missing: {}", files.len());
    for (path, data) in files {
        // The seeds are real payloads of each event: each is one some type accepts.
        let accepted = meeting_proto::fuzzing::signaling_payload(&data);
        assert!(accepted >= 1, "{} accepted by no type", path.display());
    }
}
