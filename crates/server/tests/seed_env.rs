//! The seed deployment guide's `.env` example, as `fixtures/seed.env`: the guide's
//! block exactly, without its `MONGO_URI` line and with `<YOUR_LOCAL_IP>` replaced by
//! 192.0.2.10 (an address for documentation). The binary starts with that file as its
//! only configuration (`PORT=3009`, two SFU workers on UDP/TCP 10000-10001), answers
//! `/health` and `/health/ready`, accepts a token signed with the seed's 15-character
//! `JWT_SECRET`, warns about that secret and the `redis://...` placeholder, and stops
//! on SIGTERM.
//!
//! The file's fixed ports must not meet the other tests' (or a developer's server), so
//! the binary runs in a private network namespace of its own (`unshare --net`, which
//! needs root: ignored without `--include-ignored`, as `.ci/run` runs it).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_meeting-service");
const SEED_ENV: &str = include_str!("fixtures/seed.env");

/// Inside the namespace: loopback up, the binary started with nothing but `PATH` (its
/// configuration is `.env`), `/health` polled (at most 30 s; the loop ends early if the
/// binary exits), then `/health/ready` and a meeting created with `$TOKEN`, then SIGTERM.
const DRIVER: &str = r#"
set -u
ip link set lo up
env -i PATH="$PATH" "$BIN" > server.log 2>&1 &
pid=$!
health=""
for _ in $(seq 1 300); do
  if health=$(curl -fsS --max-time 2 http://127.0.0.1:3009/health); then break; fi
  health=""
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
echo "HEALTH $health"
echo "READY $(curl -sS --max-time 5 http://127.0.0.1:3009/health/ready)"
echo "CREATE $(curl -sS --max-time 5 -X POST http://127.0.0.1:3009/api/meetings/create \
  -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"title":"Seed"}')"
kill -TERM "$pid" 2>/dev/null
wait "$pid"
echo "EXIT $?"
"#;

#[test]
#[ignore = "needs root for a private network namespace (unshare --net); .ci/run includes it"]
fn the_seed_guides_env_starts() {
    let dir = TempDir::new("seedenv");
    std::fs::write(dir.path().join(".env"), SEED_ENV).unwrap();
    let token = meeting_service::auth::JwtKeys::new("your-secret-key")
        .mint(
            "platform-user",
            "Platform User",
            None,
            Duration::from_secs(600),
        )
        .unwrap();
    let child = Command::new("unshare")
        .args(["--net", "--", "bash", "-c", DRIVER])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIN", BIN)
        .env("TOKEN", &token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux)");
    let out = wait_bounded(child, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    let context = format!(
        "driver: {stdout}\n{}\nserver log:\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |tag: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(tag))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    assert!(line("HEALTH ").contains("\"status\":\"ok\""), "{context}");
    let ready: serde_json::Value = serde_json::from_str(&line("READY ")).unwrap_or_default();
    assert_eq!(ready["status"], "ready", "{context}");
    let workers = ready["checks"]["sfu"]["workers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !workers.is_empty() && workers.iter().all(|w| w["alive"] == true),
        "MEDIASOUP_WORKERS=0: one SFU worker per core, all running\n{context}"
    );
    let created: serde_json::Value = serde_json::from_str(&line("CREATE ")).unwrap_or_default();
    assert_eq!(
        created["meeting"]["hostId"], "platform-user",
        "a token signed with JWT_SECRET=your-secret-key is accepted\n{context}"
    );
    assert_eq!(line("EXIT "), "0", "{context}");
    for warning in [
        "JWT_SECRET is 15 characters long",
        "REDIS_URL=\"redis://...\" is the deployment guide's placeholder",
        "192.0.2.10",
    ] {
        assert!(
            log.contains(warning),
            "the log lacks {warning:?}\n{context}"
        );
    }
    assert!(dir.path().join("data/meetings.db").exists(), "{context}");
}

fn wait_bounded(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the seed .env driver did not finish within {limit:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
