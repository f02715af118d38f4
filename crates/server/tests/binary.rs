//! The built binary: bad configuration refused with a clear message, the `token`
//! subcommand, and a default start answering `/health` then stopping on SIGTERM.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_meeting-service");

/// Runs the binary with only `vars` set, in an empty directory (no `.env`, no `./data`).
fn run(dir: &TempDir, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .current_dir(dir.path())
        .stdin(Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(child, Duration::from_secs(20))
}

fn wait_bounded(mut child: std::process::Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("meeting-service did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_configuration_is_refused_with_its_reason() {
    let dir = TempDir::new("badcfg");
    // (variables set, texts stderr must contain)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            &[("MEETING_TTL", "four hours")],
            &["MEETING_TTL=\"four hours\"", "whole number of seconds"],
        ),
        (&[("PORT", "http")], &["PORT=\"http\"", "TCP port"]),
        (
            &[("MAX_PARTICIPANTS", "1")],
            &["MAX_PARTICIPANTS=\"1\"", "from 2 to 1000"],
        ),
        (
            &[
                ("MEDIASOUP_MIN_PORT", "10100"),
                ("MEDIASOUP_MAX_PORT", "10000"),
            ],
            &["MEDIASOUP_MAX_PORT=\"10000\"", "inverted"],
        ),
        (
            &[
                ("MEDIASOUP_WORKERS", "8"),
                ("MEDIASOUP_MIN_PORT", "10000"),
                ("MEDIASOUP_MAX_PORT", "10003"),
            ],
            &["10000-10003 holds 4", "MEDIASOUP_WORKERS gives 8"],
        ),
        (
            &[("MEDIASOUP_WORKERS", "many")],
            &["MEDIASOUP_WORKERS=\"many\""],
        ),
        (
            &[("MEDIASOUP_ANNOUNCED_IP", "my-server.local")],
            &[
                "MEDIASOUP_ANNOUNCED_IP=\"my-server.local\"",
                "an IP address",
            ],
        ),
        (
            &[("MEDIASOUP_ANNOUNCED_IP", "127.0.0.1")],
            &["DO NOT use 127.0.0.1", "MEDIASOUP_ALLOW_LOOPBACK"],
        ),
        (
            &[("TURN_SERVER_URL", "https://turn.example.com")],
            &["TURN_SERVER_URL=\"https://turn.example.com\"", "turn:"],
        ),
        (
            &[("TURN_SERVER_URL", "turns:turn.example.com:5349")],
            &["TURN_USERNAME"],
        ),
        (
            &[("STUN_SERVER_1", "stun.l.google.com:19302")],
            &["STUN_SERVER_1=", "stun:"],
        ),
        (
            &[("MONGO_URI", "mongodb+srv://x")],
            &["MONGO_URI is set", "SQLite", "PostgreSQL", "DATABASE_URL"],
        ),
        (
            &[("MONGODB_URI", "mongodb://x")],
            &["MONGODB_URI is set", "DATABASE_URL"],
        ),
        (
            &[("NODE_ENV", "production")],
            &["NODE_ENV=production", "JWT_SECRET"],
        ),
        // Any spelling of production is production (issue #12: `prod` and `Production`
        // used to start on the public development secret with the guest endpoint open).
        (
            &[("NODE_ENV", "prod")],
            &["NODE_ENV=prod is production", "JWT_SECRET is not set"],
        ),
        (
            &[("NODE_ENV", "Production")],
            &["NODE_ENV=Production is production", "JWT_SECRET is not set"],
        ),
        (
            &[("NODE_ENV", "staging")],
            &[
                "NODE_ENV=\"staging\" is invalid",
                "production",
                "development",
            ],
        ),
        (
            &[("RATE_LIMIT_SOCKET_CHAT", "lots")],
            &["RATE_LIMIT_SOCKET_CHAT=\"lots\"", "COUNT/PERIOD"],
        ),
        (
            &[("SFU_MODE_ENABLED", "sometimes")],
            &["SFU_MODE_ENABLED=\"sometimes\"", "true or false"],
        ),
        (
            &[("DATABASE_URL", "mysql://root:hunter2@db/x")],
            &["DATABASE_URL=", "postgres://"],
        ),
        (
            &[("REDIS_URL", "localhost:6379")],
            &["REDIS_URL=\"localhost:6379\"", "redis://"],
        ),
        (
            &[("MEDIASOUP_ENABLE_TCP", "tcp")],
            &["MEDIASOUP_ENABLE_TCP=\"tcp\"", "true or false"],
        ),
        (
            &[("MEDIASOUP_SINGLE_PORT", "443")],
            &["MEDIASOUP_SINGLE_PORT=\"443\"", "from 1024 to 65535"],
        ),
        (
            &[("MEDIASOUP_SINGLE_PORT", "10000-10100")],
            &["MEDIASOUP_SINGLE_PORT=\"10000-10100\"", "a port number"],
        ),
        (
            &[("MEDIASOUP_SINGLE_PORT", "10000"), ("PORT", "10000")],
            &["PORT=\"10000\"", "MEDIASOUP_ENABLE_TCP=false"],
        ),
    ];
    for (vars, needles) in cases {
        let out = run(&dir, &[], vars);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{vars:?} should exit 2; stderr: {stderr}"
        );
        for needle in *needles {
            assert!(
                stderr.contains(needle),
                "{vars:?}: stderr lacks {needle:?}:\n{stderr}"
            );
        }
        assert!(!stderr.contains("hunter2"), "a password leaked: {stderr}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "a refused start must not create the database"
    );
}

#[test]
fn dotenv_file_is_read() {
    let dir = TempDir::new("dotenv");
    std::fs::write(
        dir.path().join(".env"),
        "# from the seed\nMEETING_TTL=soon\n",
    )
    .unwrap();
    let out = run(&dir, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MEETING_TTL=\"soon\""));
}

#[test]
fn token_subcommand_mints_a_verifiable_token() {
    let dir = TempDir::new("token");
    let secret = "cli-secret-0123456789abcdef-0123456789";
    let out = run(
        &dir,
        &["token", "--user", "alice", "--name", "Alice", "--ttl", "2h"],
        &[("JWT_SECRET", secret)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let claims = meeting_service::auth::JwtKeys::new(secret)
        .verify(token.trim())
        .unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.name.as_str()),
        ("alice", "Alice")
    );
    assert_eq!(claims.exp - claims.iat, 7200);

    let out = run(
        &dir,
        &["token", "--user", "alice", "--ttl", "1y"],
        &[("JWT_SECRET", secret)],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ttl"));
}

/// No configuration at all (but a port of our choosing): it starts, creates its SQLite
/// file under ./data, answers /health, and exits 0 on SIGTERM.
#[test]
fn starts_with_defaults_and_stops_on_sigterm() {
    let dir = TempDir::new("start");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .current_dir(dir.path())
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        // Keep the media sockets on loopback, on ports no other test uses.
        .env("SFU_MODE_ENABLED", "false")
        .env("MEDIASOUP_LISTEN_IP", "127.0.0.1")
        .env("MEDIASOUP_WORKERS", "1")
        .env("MEDIASOUP_MIN_PORT", "47310")
        .env("MEDIASOUP_MAX_PORT", "47319")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let health = wait_health(port, Duration::from_secs(20));
    let term = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let out = wait_bounded(child, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        health.contains("\"status\":\"ok\""),
        "health: {health}\n{stdout}{stderr}"
    );
    assert!(term.unwrap().success());
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("SIGTERM") || stderr.contains("SIGTERM"),
        "{stdout}{stderr}"
    );
    assert!(dir.path().join("data/meetings.db").exists());
    assert!(
        !stdout.contains('\x1b'),
        "logs to a pipe carry no colour codes: {stdout}"
    );
}

/// GET /health with a plain TcpStream (this test is synchronous), retried until it answers.
fn wait_health(port: u16, limit: Duration) -> String {
    use std::io::{Read, Write};
    let start = Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s
                .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            let mut buf = String::new();
            if s.read_to_string(&mut buf).is_ok() && buf.starts_with("HTTP/1.1 200") {
                return buf;
            }
        }
        assert!(
            start.elapsed() < limit,
            "no /health answer on port {port} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
