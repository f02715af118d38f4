//! The deploy files (`deploy/`) and the deployment guide agree with the configuration:
//! the Kubernetes manifest's ports and variables match the defaults, every variable any
//! deploy file or `docs/deployment.md` sets is one the service reads, the coturn config
//! is the one the ephemeral credentials need, and `KNOWN_VARS` itself matches `config/`
//! and `docs/configuration.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use meeting_service::config::{Config, KNOWN_VARS, RATE_LIMIT_DEFAULTS, is_known_var};
use serde_norway::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_docs(rel: &str) -> Vec<Value> {
    let text = read(rel);
    serde_norway::Deserializer::from_str(&text)
        .map(|d| {
            <Value as serde::Deserialize>::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}"))
        })
        .collect()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for key in path {
        cur = match key.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => &cur[*key],
        };
    }
    cur
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn config(pairs: &BTreeMap<String, String>) -> Config {
    Config::from_vars(pairs.clone())
        .unwrap_or_else(|e| panic!("{pairs:?} is not a valid configuration: {e}"))
}

fn defaults() -> Config {
    Config::from_vars(Vec::new()).expect("defaults are valid")
}

/// Literal values of a k8s container's env; `valueFrom` gets a stand-in value.
fn k8s_env(container: &Value) -> (Vec<String>, BTreeMap<String, String>) {
    let mut names = Vec::new();
    let mut vars = BTreeMap::new();
    for e in container["env"].as_sequence().expect("env list") {
        let name = text(&e["name"]);
        names.push(name.clone());
        let value = if !e["value"].is_null() {
            text(&e["value"])
        } else if e["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP" {
            "198.51.100.7".to_owned()
        } else if e["valueFrom"]["secretKeyRef"]["optional"] == true {
            continue;
        } else {
            match name.as_str() {
                "JWT_SECRET" => {
                    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned()
                }
                "DATABASE_URL" => "postgres://meetings:password@postgres:5432/meetings".to_owned(),
                other => panic!("no stand-in for {other} from {:?}", e["valueFrom"]),
            }
        };
        vars.insert(name, value);
    }
    (names, vars)
}

#[test]
fn kubernetes_manifest_uses_host_network_and_the_default_ports() {
    let docs = yaml_docs("deploy/kubernetes.yaml");
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = s(deployment, &["spec", "template", "spec"]);
    assert_eq!(pod["hostNetwork"], Value::from(true));
    assert_eq!(
        pod["dnsPolicy"],
        Value::from("ClusterFirstWithHostNet"),
        "hostNetwork pods need it to resolve cluster names"
    );
    let containers = pod["containers"].as_sequence().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];

    let (names, env) = k8s_env(c);
    for n in &names {
        assert!(
            is_known_var(n),
            "kubernetes.yaml sets {n}, which the service does not read"
        );
    }
    let cfg = config(&env);
    let def = defaults();
    assert!(cfg.is_production());
    // SIGTERM drains for up to DRAIN_TIMEOUT_SECONDS; Kubernetes must not SIGKILL first
    // (a few seconds more for the process to close its recordings and database).
    let grace: u64 = text(&pod["terminationGracePeriodSeconds"])
        .parse()
        .expect("terminationGracePeriodSeconds is a number");
    assert!(
        grace >= cfg.drain_timeout.as_secs() + 5,
        "terminationGracePeriodSeconds {grace} must exceed DRAIN_TIMEOUT_SECONDS ({} s) by at least 5 s",
        cfg.drain_timeout.as_secs()
    );
    assert_eq!(
        cfg.listen.port(),
        def.listen.port(),
        "PORT differs from the default"
    );
    assert_eq!(
        (cfg.sfu.min_port, cfg.sfu.max_port),
        (def.sfu.min_port, def.sfu.max_port),
        "the UDP range differs from the defaults"
    );

    // Declared ports: http = PORT; the UDP ports are exactly the workers' ports, and so
    // are the TCP media ports when ICE-TCP is on (none when it is off).
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    let mut http = None;
    for p in c["ports"].as_sequence().expect("ports") {
        let port: u16 = text(&p["containerPort"]).parse().expect("port number");
        let name = text(&p["name"]);
        assert!(
            name.len() <= 15,
            "port name {name} is longer than Kubernetes allows (15)"
        );
        match (text(&p["protocol"]).as_str(), name.as_str()) {
            ("UDP", _) => udp.push(port),
            ("TCP", "http") => http = Some(port),
            ("TCP", n) if n.starts_with("media-tcp-") => tcp.push(port),
            (proto, n) => panic!("port {n} ({proto}) is neither http nor a media port"),
        }
    }
    assert_eq!(http, Some(cfg.listen.port()));
    udp.sort_unstable();
    tcp.sort_unstable();
    let workers = cfg.sfu.media_ports();
    assert_eq!(
        udp, workers,
        "declared UDP ports must be MEDIASOUP_MIN_PORT + i for each of the {} workers",
        cfg.sfu.workers
    );
    assert!(
        cfg.sfu.single_port.is_some()
            || udp
                .iter()
                .all(|p| (cfg.sfu.min_port..=cfg.sfu.max_port).contains(p))
    );
    assert_eq!(
        env.get("MEDIASOUP_ENABLE_TCP").map(String::as_str),
        Some("true"),
        "kubernetes.yaml should say whether ICE-TCP is on"
    );
    if cfg.sfu.enable_tcp {
        assert_eq!(
            tcp, workers,
            "with ICE-TCP the TCP media ports must be the UDP ones"
        );
    } else {
        assert!(
            tcp.is_empty(),
            "TCP media ports declared but MEDIASOUP_ENABLE_TCP is off: {tcp:?}"
        );
    }
    // One core per worker.
    assert_eq!(
        text(s(c, &["resources", "requests", "cpu"])),
        cfg.sfu.workers.to_string()
    );

    // Probes on the http port: liveness /health, readiness /health/ready.
    assert_eq!(text(s(c, &["livenessProbe", "httpGet", "path"])), "/health");
    assert_eq!(text(s(c, &["livenessProbe", "httpGet", "port"])), "http");
    assert_eq!(
        text(s(c, &["readinessProbe", "httpGet", "path"])),
        "/health/ready"
    );

    // Non-root, the Dockerfile's user.
    assert_eq!(
        s(pod, &["securityContext", "runAsNonRoot"]),
        &Value::from(true)
    );
    let uid = text(s(pod, &["securityContext", "runAsUser"]));
    assert!(
        read("deploy/Dockerfile").contains(&format!("--uid {uid}")),
        "runAsUser {uid} is not the Dockerfile's user"
    );

    // The Service forwards the same http port.
    let service = docs
        .iter()
        .find(|d| d["kind"] == "Service")
        .expect("a Service");
    let sp = &service["spec"]["ports"][0];
    assert_eq!(text(&sp["port"]), cfg.listen.port().to_string());
    assert_eq!(text(&sp["targetPort"]), "http");
}

/// `NAME=value` at the start of a line (after optional `#`, `export`, `ENV`, `Environment=`).
fn assignments(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut l = line.trim().trim_start_matches('#').trim();
        for prefix in ["export ", "ENV ", "Environment="] {
            if let Some(rest) = l.strip_prefix(prefix) {
                l = rest.trim();
            }
        }
        l = l.trim_end_matches('\\').trim();
        for word in l.split_whitespace() {
            let Some((name, value)) = word.split_once('=') else {
                break;
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                || !name.as_bytes()[0].is_ascii_uppercase()
            {
                break;
            }
            out.push((name.to_owned(), value.to_owned()));
        }
    }
    out
}

#[test]
fn every_variable_the_deploy_files_and_the_guide_set_is_known() {
    let mut checked = BTreeMap::new();
    // Dockerfile ENV (one instruction over several lines), systemd Environment=, the env file.
    for file in [
        "deploy/Dockerfile",
        "deploy/meeting-service.service",
        "deploy/meeting-service.env",
    ] {
        let vars = assignments(&read(file));
        assert!(
            !vars.is_empty(),
            "{file}: no variable found (the parser or the file is wrong)"
        );
        checked.insert(file, vars.into_iter().map(|(n, _)| n).collect::<Vec<_>>());
    }
    // YAML files, from their structure.
    let (k8s, _) = k8s_env(
        &yaml_docs("deploy/kubernetes.yaml")[0]["spec"]["template"]["spec"]["containers"][0],
    );
    checked.insert("deploy/kubernetes.yaml", k8s);
    let render = yaml_docs("deploy/render.yaml");
    let keys: Vec<String> = render[0]["services"][0]["envVars"]
        .as_sequence()
        .expect("envVars")
        .iter()
        .map(|e| text(&e["key"]))
        .collect();
    checked.insert("deploy/render.yaml", keys);
    // The guide's code blocks.
    let guide = read("docs/deployment.md");
    let mut in_code = false;
    let mut code = String::new();
    for line in guide.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if in_code {
            code.push_str(line);
            code.push('\n');
        }
    }
    let guide_vars: Vec<String> = assignments(&code).into_iter().map(|(n, _)| n).collect();
    assert!(
        guide_vars.len() > 10,
        "docs/deployment.md: too few variables found: {guide_vars:?}"
    );
    checked.insert("docs/deployment.md", guide_vars);

    for (file, names) in &checked {
        assert!(!names.is_empty(), "{file}: no variables");
        for n in names {
            assert!(
                is_known_var(n),
                "{file} sets {n}, which is not a configuration variable (KNOWN_VARS in config/vars.rs)"
            );
        }
    }
}

#[test]
fn deploy_values_are_valid_configurations() {
    // The VPS env file as it stands (its TURN lines are commented out).
    let env: BTreeMap<String, String> = assignments(&read("deploy/meeting-service.env"))
        .into_iter()
        .filter(|(n, _)| !n.starts_with("TURN_") && n != "DATABASE_URL" && n != "REDIS_URL")
        .collect();
    let cfg = config(&env);
    assert!(cfg.is_production());
    assert_eq!(
        (cfg.sfu.min_port, cfg.sfu.max_port, cfg.listen.port()),
        (10_000, 10_100, 3009)
    );

    // The Render blueprint, with stand-ins for the generated and dashboard values.
    let render = yaml_docs("deploy/render.yaml");
    let service = &render[0]["services"][0];
    assert_eq!(text(&service["healthCheckPath"]), "/health");
    assert_eq!(text(&service["dockerfilePath"]), "./deploy/Dockerfile");
    let mut vars = BTreeMap::new();
    for e in service["envVars"].as_sequence().expect("envVars") {
        let key = text(&e["key"]);
        let value = if !e["value"].is_null() {
            text(&e["value"])
        } else {
            match key.as_str() {
                "JWT_SECRET" => {
                    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()
                }
                "DATABASE_URL" => "postgresql://u:p@dpg-x/meetings".into(),
                "TURN_SERVER_URL" => "turns:turn.example.com:5349?transport=tcp".into(),
                "TURN_SECRET" => "coturn-static-auth-secret".into(),
                other => panic!("render.yaml: no stand-in for {other}"),
            }
        };
        vars.insert(key, value);
    }
    let cfg = config(&vars);
    // No UDP on Render: TURN with ephemeral credentials, mesh by default.
    let turn = cfg.ice.turn.as_ref().expect("render.yaml configures TURN");
    assert!(
        turn.secret.is_some(),
        "render.yaml should use TURN_SECRET (ephemeral credentials)"
    );
    assert!(
        !cfg.sfu_mode_enabled,
        "on Render the SFU's UDP ports are unreachable: meetings default to mesh"
    );

    // The Dockerfile's ENV is a valid configuration with the default ports.
    let docker: BTreeMap<String, String> = assignments(&read("deploy/Dockerfile"))
        .into_iter()
        .collect();
    let cfg = config(&docker);
    let def = defaults();
    assert_eq!(
        (cfg.listen.port(), cfg.sfu.min_port, cfg.sfu.max_port),
        (def.listen.port(), def.sfu.min_port, def.sfu.max_port)
    );
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_a_health_check() {
    let d = read("deploy/Dockerfile");
    let froms = d.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(froms >= 2, "multi-stage: {froms} FROM");
    let user = d
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER instruction")
        .trim();
    assert!(user != "root" && user != "0", "runs as {user}");
    let hc = d
        .lines()
        .position(|l| l.starts_with("HEALTHCHECK"))
        .expect("HEALTHCHECK");
    let hc_text: String = d.lines().skip(hc).take(2).collect();
    assert!(hc_text.contains("/health"), "{hc_text}");
    assert!(d.contains("EXPOSE 3009/tcp") && d.contains("EXPOSE 10000-10100/udp"));
    // ICE-TCP is on by default: the same range over TCP.
    assert!(
        defaults().sfu.enable_tcp && d.contains("EXPOSE 10000-10100/tcp"),
        "the Dockerfile must expose the TCP media range"
    );
    assert!(d.contains("COPY --from=build"));
}

#[test]
fn systemd_unit_runs_the_server_unprivileged() {
    let u = read("deploy/meeting-service.service");
    assert!(u.contains("ExecStart=/usr/local/bin/meeting-service serve"));
    let user = u
        .lines()
        .find_map(|l| l.strip_prefix("User="))
        .expect("User=");
    assert_ne!(user, "root");
    assert!(u.contains("EnvironmentFile=/etc/meeting-service/meeting-service.env"));
    assert!(u.contains("[Install]") && u.contains("WantedBy=multi-user.target"));
}

#[test]
fn coturn_config_checks_the_credentials_the_service_mints() {
    let conf = read("deploy/turnserver.conf");
    let settings: Vec<(&str, &str)> = conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once('=').unwrap_or((l, "")))
        .collect();
    let get = |k: &str| settings.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    assert!(
        get("use-auth-secret").is_some(),
        "coturn must check TURN REST API credentials"
    );
    assert!(get("static-auth-secret").is_some_and(|v| !v.is_empty()));
    assert!(
        get("lt-cred-mech").is_none() && get("user").is_none(),
        "no static users next to use-auth-secret"
    );
    let plain: u16 = get("listening-port")
        .expect("listening-port")
        .parse()
        .expect("port");
    let tls: u16 = get("tls-listening-port")
        .expect("tls-listening-port")
        .parse()
        .expect("port");

    // Every TURN URL the deploy files suggest points at those ports, turns: at the TLS one.
    let mut urls = Vec::new();
    for file in [
        "deploy/meeting-service.env",
        "deploy/turnserver.conf",
        "docs/deployment.md",
    ] {
        for (name, value) in assignments(&read(file)) {
            if name == "TURN_SERVER_URL" && value.contains("turn.example.com") {
                urls.extend(value.split(',').map(str::to_owned));
            }
        }
    }
    assert!(urls.len() >= 3, "{urls:?}");
    for u in &urls {
        let secure = u.starts_with("turns:");
        let port: u16 = u
            .split('?')
            .next()
            .and_then(|h| h.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{u}: no port"));
        assert_eq!(
            port,
            if secure { tls } else { plain },
            "{u} does not match turnserver.conf"
        );
    }
}

#[test]
fn known_vars_match_config_rs_and_the_configuration_reference() {
    // rustfmt breaks long calls across lines (`vars\n    .get(` or `parse(\n    "HOST"`):
    // join the trimmed lines so that each call reads as one.
    // The configuration is a module of several files (crates/server/src/config/); its
    // unit tests (tests.rs) name variables too, but only as input.
    let dir = repo().join("crates/server/src/config");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs") && !p.ends_with("tests.rs"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    let src: String = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect::<Vec<_>>()
        .join("\n")
        .lines()
        .map(str::trim)
        .collect();
    let mut read_by_config = Vec::new();
    for pat in ["vars.get(\"", "vars.parse(\"", "vars.bool(\""] {
        for (i, _) in src.match_indices(pat) {
            let rest = &src[i + pat.len()..];
            let name = &rest[..rest.find('"').expect("closing quote")];
            read_by_config.push(name.to_owned());
        }
    }
    assert!(read_by_config.len() > 15, "{read_by_config:?}");
    for name in &read_by_config {
        assert!(
            is_known_var(name) || name.starts_with("MONGO"),
            "config/ reads {name}, missing from KNOWN_VARS"
        );
    }
    for known in KNOWN_VARS {
        // The `RATE_LIMIT_*` variables are read in one loop over their table.
        let in_src = *known == "RUST_LOG"
            || known.starts_with("STUN_SERVER_")
            || RATE_LIMIT_DEFAULTS.iter().any(|(n, _)| n == known)
            || read_by_config.iter().any(|n| n == known);
        assert!(
            in_src,
            "KNOWN_VARS lists {known}, which config/ does not read"
        );
    }
    let reference = read("docs/configuration.md");
    for known in KNOWN_VARS {
        let shown = if known.starts_with("STUN_SERVER_") {
            "STUN_SERVER_1"
        } else {
            known
        };
        assert!(
            reference.contains(&format!("`{shown}`")),
            "docs/configuration.md does not document {shown}"
        );
    }
}

#[test]
fn every_media_port_opened_for_udp_is_opened_for_tcp_too() {
    // ICE-TCP is on by default: a firewall command that opens the media ports (the
    // defaults start at 10000) for UDP must open them for TCP as well.
    assert!(defaults().sfu.enable_tcp);
    for file in ["README.md", "docs/deployment.md", "docs/configuration.md"] {
        let t = read(file);
        let mut opened = 0;
        for (i, _) in t.match_indices("ufw allow 10000") {
            let spec = t[i + "ufw allow ".len()..]
                .split(|c: char| c.is_whitespace() || c == '`')
                .next()
                .expect("a port spec");
            if let Some(ports) = spec.strip_suffix("/udp") {
                opened += 1;
                assert!(
                    t.contains(&format!("ufw allow {ports}/tcp")),
                    "{file}: `ufw allow {spec}` without `ufw allow {ports}/tcp`"
                );
            }
        }
        assert!(
            opened > 0,
            "{file}: no `ufw allow 10000…/udp` found (the parser or the file is wrong)"
        );
    }
}
