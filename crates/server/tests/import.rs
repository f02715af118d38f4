//! `meeting-service import mongo-export FILE`, the built binary, on the export in
//! `fixtures/mongo-export.json`: three good records (relaxed Extended JSON; canonical
//! with `$numberLong` dates and `$numberInt`; an active meeting without `createdAt`,
//! dated by its ObjectId) with nested participants, and eight bad ones, each skipped
//! with its reason. Then the imported meetings through the REST API and Socket.IO of a
//! server on the same database: an old link (`/api/meetings/abc123`) opens its record,
//! the history adds up, and a second import changes nothing. On SQLite, and on
//! PostgreSQL (ignored without it; `.ci/run` includes it).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Db, TempDir, TestServer, config};
use meeting_load::sio::SioClient;
use proto::signaling::JoinMeetingData;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_meeting-service");
const EXPORT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/mongo-export.json"
);
const HOST_OID: &str = "65e19a10c2a4f1b2c3d4e5aa";

/// Runs the import of `file` into `db` with only `DATABASE_URL` set (off the runtime's
/// threads: it waits for a process); its exit code and output.
async fn import(db: &Db, file: &str) -> (Option<i32>, String, String) {
    let (url, file) = (db.url(), file.to_owned());
    tokio::task::spawn_blocking(move || run_import(&url, &file))
        .await
        .unwrap()
}

fn run_import(db_url: &str, file: &str) -> (Option<i32>, String, String) {
    let dir = TempDir::new("import");
    let out = Command::new(BIN)
        .args(["import", "mongo-export", file])
        .env_clear()
        .env("DATABASE_URL", db_url)
        .env("SFU_MODE_ENABLED", "false")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn mongo_export_sqlite() {
    let db = Db::sqlite();
    mongo_export(&db).await;
    db.cleanup().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn mongo_export_postgres() {
    let db = Db::postgres().await;
    mongo_export(&db).await;
    db.cleanup().await;
}

/// A time of the API as an instant (the text may or may not show milliseconds).
fn instant(v: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .into()
}

/// What the API shows of the imported meetings (to compare before and after a second
/// import).
async fn snapshot(server: &TestServer, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for room in ["ABC123", "K7PQ-XW2-RT9", "LIVE-ROOM_1"] {
        for path in [
            format!("/api/meetings/{room}"),
            format!("/api/meetings/{room}/stats"),
        ] {
            let (status, body) = server.get(&path, Some(token)).await;
            assert_eq!(status, 200, "{path}: {body}");
            all.push(body);
        }
    }
    all
}

async fn mongo_export(db: &Db) {
    let (code, stdout, stderr) = import(db, EXPORT).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "imported 3 meetings (4 participant records); 0 already imported (unchanged); 8 skipped"
        ),
        "{stdout}"
    );
    for line in [
        "skipped record 3: record: not a JSON object",
        "skipped record 4 (_id 65e19a10c2a4f1b2c3d4e505): roomId: missing",
        "skipped record 5 (_id 65e19a10c2a4f1b2c3d4e506, roomId a/b): roomId: \"a/b\" cannot be a meeting id",
        "skipped record 6 (_id 65e19a10c2a4f1b2c3d4e507, roomId BADDATE): createdAt: ",
        "skipped record 7 (_id 65e19a10c2a4f1b2c3d4e508, roomId BADSTATUS): status: \"paused\" is not scheduled, active or ended",
        "skipped record 8 (_id 65e19a10c2a4f1b2c3d4e509, roomId abc123): roomId: another meeting already has this id",
        "skipped record 9 (_id 65e19a10c2a4f1b2c3d4e50a, roomId NOHOST): hostId: missing",
        "skipped record 10 (_id 65e19a10c2a4f1b2c3d4e50b, roomId BADPART): participants[0].joinedAt: ",
    ] {
        assert!(
            stdout.contains(line),
            "the report lacks {line:?}:\n{stdout}"
        );
    }

    let server = TestServer::start(config(&db.url(), &[])).await;
    let host = server.token(HOST_OID);

    // The old link, spelled as the old service's links were (and in lower case).
    let (status, body) = server.get("/api/meetings/abc123", Some(&host)).await;
    assert_eq!(status, 200, "{body}");
    let m = &body["meeting"];
    assert_eq!(m["roomId"], "ABC123");
    assert_eq!(m["legacyId"], "65e19a10c2a4f1b2c3d4e501");
    assert_eq!(m["hostId"], HOST_OID, "an ObjectId host id is its hex");
    assert_eq!(m["status"], "ended");
    assert_eq!(m["topology"], "mesh");
    assert_eq!(m["maxParticipants"], 10);
    assert_eq!(m["settings"]["allowChat"], false, "isChatEnabled: false");
    assert_eq!(m["settings"]["allowRecording"], true);
    assert_eq!(
        instant(&m["scheduledAt"]),
        instant(&json!("2024-03-01T08:55:00.000Z")),
        "scheduledAt"
    );
    assert_eq!(
        instant(&m["startedAt"]),
        instant(&json!("2024-03-01T09:00:00.000Z")),
        "startedAt"
    );
    assert_eq!(
        instant(&m["endedAt"]),
        instant(&json!("2024-03-01T09:30:00.000Z")),
        "endedAt"
    );
    assert_eq!(
        instant(&m["createdAt"]),
        instant(&json!("2024-03-01T08:50:00.000Z")),
        "createdAt"
    );
    assert_eq!(m["duration"], 1800);
    assert_eq!(m["peakParticipants"], 2);
    let (status, stats) = server.get("/api/meetings/ABC123/stats", Some(&host)).await;
    assert_eq!(status, 200, "{stats}");
    let s = &stats["stats"];
    assert_eq!(
        (
            &s["totalParticipants"],
            &s["totalJoins"],
            &s["currentParticipants"]
        ),
        (&json!(2), &json!(3), &json!(0)),
        "{stats}"
    );
    // In the host's list, found by the ObjectId of the token's user.
    let (status, list) = server
        .get(&format!("/api/meetings/user/{HOST_OID}"), Some(&host))
        .await;
    assert_eq!(status, 200, "{list}");
    assert!(
        list["meetings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["roomId"] == "ABC123"),
        "{list}"
    );

    // Canonical Extended JSON: our code's format in another spelling, its cap lowered to
    // MAX_PARTICIPANTS (50), dates from `$numberLong`.
    let (_, body) = server.get("/api/meetings/K7PQXW2RT9", Some(&host)).await;
    let m = &body["meeting"];
    assert_eq!(m["roomId"], "K7PQ-XW2-RT9", "{body}");
    assert_eq!(m["maxParticipants"], 50);
    assert_eq!(m["status"], "scheduled");
    assert_eq!(
        instant(&m["scheduledAt"]),
        instant(&json!("2100-01-01T00:00:00.000Z")),
        "scheduledAt"
    );
    assert_eq!(
        instant(&m["createdAt"]),
        instant(&json!("2024-03-01T09:00:00.000Z")),
        "createdAt"
    );

    // Left open by the old service: its stay is closed, nobody is in it, and its link
    // joins (an active meeting).
    let (_, body) = server.get("/api/meetings/live-room_1", Some(&host)).await;
    let m = &body["meeting"];
    assert_eq!(m["status"], "active", "{body}");
    assert_eq!(
        instant(&m["createdAt"]),
        instant(&json!("2024-03-01T09:04:16Z")),
        "dated by its ObjectId"
    );
    let (_, people) = server
        .get("/api/meetings/LIVE-ROOM_1/participants", Some(&host))
        .await;
    assert_eq!(people["participants"], json!([]), "{people}");
    let seven = server.token("user-7");
    let (client, _events) = SioClient::connect(&server.url(""), &seven, Duration::from_secs(20))
        .await
        .unwrap();
    let joined: JoinMeetingData = client
        .call(
            "join-meeting",
            &json!({ "roomId": "live-room_1" }),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(joined.room_id.as_str(), "LIVE-ROOM_1");
    assert!(joined.is_host);
    let ack = client
        .request(
            "leave-meeting",
            &json!({ "roomId": "LIVE-ROOM_1" }),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(ack["ok"], true, "{ack}");
    client.close();

    // A second import changes nothing.
    let before = snapshot(&server, &host).await;
    let (code, stdout, stderr) = import(db, EXPORT).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "imported 0 meetings (0 participant records); 3 already imported (unchanged); 8 skipped"
        ),
        "{stdout}"
    );
    let after = snapshot(&server, &host).await;
    // `duration` of an active meeting counts up with the clock; the rest is equal.
    let strip = |v: Vec<Value>| {
        v.into_iter()
            .map(|mut b| {
                if let Some(m) = b.get_mut("meeting") {
                    m["duration"] = Value::Null;
                }
                if let Some(s) = b.get_mut("stats") {
                    s["duration"] = Value::Null;
                }
                b
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(before), strip(after));

    // A file that is not an export: a clear error, exit 1, nothing written.
    let dir = TempDir::new("notjson");
    let bad = dir.path().join("meetings.json");
    std::fs::write(&bad, "{ \"roomId\": \"X\" }\n{ \"roomId\": \"Y\" }\n").unwrap();
    let (code, stdout, stderr) = import(db, &bad.display().to_string()).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("--jsonArray"), "{stderr}");
    let (code, _, stderr) = import(db, "/nonexistent/meetings.json").await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("cannot read /nonexistent/meetings.json"),
        "{stderr}"
    );
    server.stop().await;
}
