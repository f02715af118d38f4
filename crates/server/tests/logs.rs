//! `LOG_FORMAT=json`: the real binary writes one JSON object per line, with the ids of
//! a join (`room`, `peer`, `user`) and of an SFU worker (`worker`) as fields; without
//! it, the lines are text.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use meeting_load::sio::SioClient;
use meeting_service::auth::JwtKeys;
use proto::signaling::JoinMeetingData;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_meeting-service");
const SECRET: &str = "log-format-test-secret-0123";
const WAIT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The binary on loopback with its SFU (one worker on `media_port`), `vars` added.
fn start(dir: &TempDir, port: u16, media_port: u16, vars: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .current_dir(dir.path())
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("JWT_SECRET", SECRET)
        .env("MEDIASOUP_LISTEN_IP", "127.0.0.1")
        .env("MEDIASOUP_ANNOUNCED_IP", "127.0.0.1")
        .env("MEDIASOUP_ALLOW_LOOPBACK", "true")
        .env("MEDIASOUP_WORKERS", "1")
        .env("MEDIASOUP_MIN_PORT", media_port.to_string())
        .env("MEDIASOUP_MAX_PORT", (media_port + 9).to_string())
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

/// SIGTERM to our child (by its PID), then its stdout, bounded.
fn stop(mut child: Child) -> String {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > WAIT {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.wait();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

async fn wait_health(port: u16) {
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        assert!(start.elapsed() < WAIT, "no /health on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A meeting created over REST by `token`'s user; its room.
async fn create_meeting(base: &str, token: &str) -> String {
    let created: Value = reqwest::Client::new()
        .post(format!("{base}/api/meetings/create"))
        .bearer_auth(token)
        .json(&json!({ "title": "Logs" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["meeting"]["roomId"].as_str().unwrap().to_owned()
}

/// Alice creates a meeting and joins it; its room and her peer id.
async fn a_join(port: u16) -> (String, String) {
    let token = JwtKeys::new(SECRET)
        .mint("alice", "Alice", None, Duration::from_secs(600))
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let room = create_meeting(&base, &token).await;
    let (client, _events) = SioClient::connect(&base, &token, WAIT).await.unwrap();
    let joined: JoinMeetingData = client
        .call("join-meeting", &json!({ "roomId": room }), WAIT)
        .await
        .unwrap();
    client.close();
    (room, joined.peer_id.to_string())
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_ids_as_fields() {
    let dir = TempDir::new("jsonlogs");
    let port = free_port();
    let vars = [("LOG_FORMAT", "json"), ("MEDIASOUP_LOG_LEVEL", "info")];
    let child = start(&dir, port, 47330, &vars);
    wait_health(port).await;
    let (room, peer) = a_join(port).await;
    let out = stop(child);

    let lines: Vec<Value> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 3, "{out}");
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
        assert!(l["fields"]["message"].is_string(), "{l}");
    }
    let find = |message: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line in:\n{out}"))
    };
    let joined = find("joined");
    assert_eq!(joined["fields"]["room"], room.as_str());
    assert_eq!(joined["fields"]["peer"], peer.as_str());
    assert_eq!(joined["fields"]["user"], "alice");
    assert_eq!(find("SFU worker started")["fields"]["worker"], 0);
}

#[tokio::test]
async fn text_is_the_default() {
    let dir = TempDir::new("textlogs");
    let port = free_port();
    let child = start(&dir, port, 47340, &[]);
    wait_health(port).await;
    let out = stop(child);
    let listening = out
        .lines()
        .find(|l| l.contains("meeting-service listening"))
        .unwrap_or_else(|| panic!("no listening line:\n{out}"));
    assert!(
        serde_json::from_str::<Value>(listening).is_err(),
        "{listening}"
    );
    assert!(listening.contains(" INFO "), "{listening}");
}

/// Every error a user can meet is logged once, with the ids that find it: a refused
/// Socket.IO event (`event refused`: socket, user, room and peer of the connection,
/// code) and a refused REST request (`request refused`: method, path, status).
#[tokio::test]
async fn refusals_are_logged_once_with_their_ids() {
    let dir = TempDir::new("refusallogs");
    let port = free_port();
    let child = start(&dir, port, 47350, &[("LOG_FORMAT", "json")]);
    wait_health(port).await;
    let base = format!("http://127.0.0.1:{port}");
    let token = JwtKeys::new(SECRET)
        .mint("bob", "Bob", None, Duration::from_secs(600))
        .unwrap();
    let room = create_meeting(&base, &token).await;
    let (client, _events) = SioClient::connect(&base, &token, WAIT).await.unwrap();
    let joined: JoinMeetingData = client
        .call("join-meeting", &json!({ "roomId": room }), WAIT)
        .await
        .unwrap();
    // A host control on a meeting Bob is not in: NOT_IN_MEETING.
    let refused = client
        .call::<Value>(
            "toggle-audio",
            &json!({ "roomId": "ZZZZ-ZZZ-ZZZ", "isEnabled": false }),
            WAIT,
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    client.close();
    let missing = reqwest::Client::new()
        .get(format!("{base}/api/meetings/ZZZZ-ZZZ-ZZZ"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let out = stop(child);

    let lines: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let with = |message: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["fields"]["message"] == message)
            .collect()
    };
    let events = with("event refused");
    assert_eq!(events.len(), 1, "one refused event, logged once:\n{out}");
    let f = &events[0]["fields"];
    assert_eq!(f["code"], "NOT_IN_MEETING", "{f}");
    assert_eq!(f["user"], "bob", "{f}");
    assert_eq!(f["room"], room.as_str(), "the connection's meeting: {f}");
    assert_eq!(f["peer"], joined.peer_id.to_string().as_str(), "{f}");
    assert!(f["socket"].as_str().is_some_and(|s| !s.is_empty()), "{f}");

    let requests = with("request refused");
    assert_eq!(requests.len(), 1, "one refused request:\n{out}");
    let f = &requests[0]["fields"];
    assert_eq!(f["status"], 404, "{f}");
    assert_eq!(f["method"], "GET", "{f}");
    assert_eq!(f["path"], "/api/meetings/ZZZZ-ZZZ-ZZZ", "{f}");
}
