//! Recording's refusals and its REST surface, over real HTTP and WebSockets against a
//! server in this process (SQLite, no engine): only the host may start or stop, only
//! where `allowRecording` is true, only SFU meetings; the list and the files are the
//! host's; a file name from a request never reaches the disk unless the manifest lists
//! it; signed links are checked. The recording of real media (Chromium, ffprobe, the
//! SIGKILL and full-disk cases) is `tests/browser/recording.test.js`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Db, TestServer, config, error_of};
use meeting_load::sio::SioClient;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn message(body: &Value) -> String {
    error_of(body);
    body["error"]["message"].as_str().unwrap().to_owned()
}

async fn create(server: &TestServer, token: &str, body: Value) -> String {
    let (status, body) = server.post("/api/meetings/create", Some(token), body).await;
    assert_eq!(status, 201, "{body}");
    body["meeting"]["roomId"].as_str().unwrap().to_owned()
}

/// A server of this process with its own database and recordings directory, and the
/// tokens of a host and of a guest.
struct Setup {
    db: Db,
    dir: common::TempDir,
    server: TestServer,
    host: String,
    guest: String,
}

async fn setup() -> Setup {
    let db = Db::sqlite();
    let dir = common::TempDir::new("recordings");
    let server = TestServer::start(config(
        &db.url(),
        &[("RECORDINGS_DIR", dir.path().to_str().unwrap())],
    ))
    .await;
    let (host, guest) = (server.token("host"), server.token("guest"));
    Setup {
        db,
        dir,
        server,
        host,
        guest,
    }
}

impl Setup {
    async fn stop(self) {
        self.server.stop().await;
        self.db.cleanup().await;
    }
}

/// `user` joins `room` on a socket; its acknowledgement to `event` is returned.
async fn socket_ack(server: &TestServer, user: &str, room: &str, event: &str) -> Value {
    let (client, _events) = SioClient::connect(&server.url(""), &server.token(user), WAIT)
        .await
        .expect("Socket.IO connect");
    let joined = client
        .request("join-meeting", &json!({ "roomId": room }), WAIT)
        .await
        .expect("join-meeting");
    assert_eq!(joined["ok"], true, "{joined}");
    let ack = client
        .request(event, &json!({ "roomId": room }), WAIT)
        .await
        .expect("ack");
    client.close();
    ack
}

#[tokio::test]
async fn only_the_host_records_and_only_where_the_meeting_allows_it() {
    let t = setup().await;
    let (server, host, guest) = (&t.server, t.host.clone(), t.guest.clone());
    let allowed = create(
        server,
        &host,
        json!({ "title": "Allowed", "settings": { "allowRecording": true } }),
    )
    .await;
    let closed = create(server, &host, json!({ "title": "Not allowed" })).await;

    // A non-host, over REST and over the socket.
    let (status, body) = server
        .post(
            &format!("/api/meetings/{allowed}/recording/start"),
            Some(&guest),
            json!({}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(message(&body).contains("only the host"), "{body}");
    let ack = socket_ack(server, "guest", &allowed, "recording-start").await;
    assert_eq!(ack["error"]["code"], "FORBIDDEN", "{ack}");
    assert!(
        ack["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only the host"),
        "{ack}"
    );
    let ack = socket_ack(server, "guest", &allowed, "recording-stop").await;
    assert_eq!(ack["error"]["code"], "FORBIDDEN", "{ack}");

    // allowRecording=false (the default), even for the host.
    let (status, body) = server
        .post(
            &format!("/api/meetings/{closed}/recording/start"),
            Some(&host),
            json!({}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(message(&body).contains("allowRecording: false"), "{body}");
    let ack = socket_ack(server, "host", &closed, "recording-start").await;
    assert_eq!(ack["error"]["code"], "FORBIDDEN", "{ack}");
    assert!(
        ack["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allowRecording"),
        "{ack}"
    );

    // Allowed, but a mesh meeting (this server has no engine): its media never reaches
    // the server, which says so.
    let (status, body) = server
        .post(
            &format!("/api/meetings/{allowed}/recording/start"),
            Some(&host),
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(error_of(&body).0, "RECORDING_UNAVAILABLE", "{body}");
    let ack = socket_ack(server, "host", &allowed, "recording-start").await;
    assert_eq!(ack["error"]["code"], "UNAVAILABLE", "{ack}");
    // Nothing runs, so nothing stops.
    let (status, body) = server
        .post(
            &format!("/api/meetings/{allowed}/recording/stop"),
            Some(&host),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, error_of(&body).0.as_str()),
        (409, "NOT_RECORDING"),
        "{body}"
    );
    // An unknown meeting.
    let (status, _) = server
        .post(
            "/api/meetings/NOPE-NOP-NOP/recording/start",
            Some(&host),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    t.stop().await;
}

#[tokio::test]
async fn recordings_and_their_files_are_the_host_s() {
    let t = setup().await;
    let (server, host, guest) = (&t.server, t.host.clone(), t.guest.clone());
    let room = create(
        server,
        &host,
        json!({ "title": "Listed", "settings": { "allowRecording": true } }),
    )
    .await;
    // A recording on disk as the recorder leaves it: a manifest and one track.
    let id = "20261201T020500Z-3fa9c1";
    let rec = t.dir.path().join(&room).join(id);
    std::fs::create_dir_all(&rec).unwrap();
    let manifest = json!({
        "version": 1, "recordingId": id, "roomId": room, "status": "finished",
        "stopReason": "host", "startedAtMs": 1_700_000_000_000u64, "stoppedMs": 20_000.0,
        "tracks": [{
            "file": "p_a-microphone.webm", "peerId": "p_a", "source": "microphone",
            "kind": "audio", "codec": "opus", "startMs": 10.0, "stopMs": 19_990.0,
            "clock": "arrival", "frames": 999, "framesLost": 0, "width": null, "height": null
        }],
        "participants": [{ "peerId": "p_a", "userId": "host", "userName": "Host" }],
        "packetsDropped": 0
    });
    std::fs::write(rec.join("manifest.json"), manifest.to_string()).unwrap();
    let track: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(rec.join("p_a-microphone.webm"), &track).unwrap();
    // A file beside it that the manifest does not list.
    std::fs::write(rec.join("secret.txt"), b"not a recording").unwrap();

    let list = format!("/api/meetings/{room}/recordings");
    let (status, _) = server.get(&list, Some(&guest)).await;
    assert_eq!(status, 403);
    let (status, body) = server.get(&list, Some(&host)).await;
    assert_eq!(status, 200, "{body}");
    let r = &body["recordings"][0];
    assert_eq!(r["recordingId"], id);
    assert_eq!(r["durationSecs"], 20.0);
    assert_eq!(r["tracks"][0]["sizeBytes"], 1000);
    assert!(r["sizeBytes"].as_u64().unwrap() > 1000, "{body}");
    assert_eq!(body["recording"], Value::Null, "nothing runs now");

    let file = format!("/api/meetings/{room}/recordings/{id}/files/p_a-microphone.webm");
    // The host, with a Range: 206 and those bytes.
    let res = server
        .http
        .get(server.url(&file))
        .bearer_auth(&host)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.headers()["content-range"].to_str().unwrap(),
        "bytes 100-199/1000"
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), &track[100..200]);
    // Somebody else, or nobody: refused.
    let res = server
        .http
        .get(server.url(&file))
        .bearer_auth(&guest)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = server.http.get(server.url(&file)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    // Names the manifest does not list, or that climb out, are not served.
    for bad in [
        "secret.txt",
        "..%2F..%2Fmanifest.json",
        "%2E%2E",
        "manifest.json%00",
    ] {
        let res = server
            .http
            .get(server.url(&format!("/api/meetings/{room}/recordings/{id}/files/{bad}")))
            .bearer_auth(&host)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{bad}");
    }
    let res = server
        .http
        .get(server.url(&format!(
            "/api/meetings/{room}/recordings/..%2F{id}/files/manifest.json"
        )))
        .bearer_auth(&host)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // A signed link works without a token; a changed one or an expired one does not.
    let (status, body) = server
        .post(
            &format!("/api/meetings/{room}/recordings/{id}/link"),
            Some(&guest),
            json!({ "file": "p_a-microphone.webm" }),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = server
        .post(
            &format!("/api/meetings/{room}/recordings/{id}/link"),
            Some(&host),
            json!({ "file": "p_a-microphone.webm", "ttlSecs": 60 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let url = body["url"].as_str().unwrap().to_owned();
    let res = server.http.get(server.url(&url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().len(), 1000);
    let tampered = url.replace("expires=", "expires=1");
    let res = server.http.get(server.url(&tampered)).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let other_file = url.replace("p_a-microphone.webm", "manifest.json");
    let res = server
        .http
        .get(server.url(&other_file))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "a link grants its one file");
    t.stop().await;
}
