//! One meeting, every spelling of its code, every entry point: the REST routes, each
//! Socket.IO event that names a meeting, and the page's `/m/<code>` route accept
//! `U5HEK92QJM`, `u5hek92qjm` and `U5HE K92 QJM` for `U5HE-K92-QJM`, through
//! `room_code::normalise`. Over real WebSockets (the load tool's Socket.IO client)
//! against a server in this process, on SQLite.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Db, TestServer, config};
use meeting_load::sio::{ServerEvent, SioClient};
use proto::signaling::JoinMeetingData;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(20);

/// The spellings of `canonical` (`KXRT-PQZ-MHN`) a person may type or a link may carry.
fn spellings(canonical: &str) -> Vec<String> {
    let bare = canonical.replace('-', "");
    vec![
        canonical.to_owned(),
        bare.clone(),
        bare.to_ascii_lowercase(),
        canonical.replace('-', " "),
        format!(" {} ", canonical.to_ascii_lowercase()),
    ]
}

async fn create(server: &TestServer, token: &str) -> String {
    let (status, body) = server
        .post(
            "/api/meetings/create",
            Some(token),
            json!({ "title": "Spellings" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["meeting"]["roomId"].as_str().unwrap().to_owned()
}

async fn connect(server: &TestServer, user: &str) -> (SioClient, UnboundedReceiver<ServerEvent>) {
    SioClient::connect(&server.url(""), &server.token(user), WAIT)
        .await
        .expect("Socket.IO connect")
}

/// The next event called `name` on this socket, within `WAIT`.
async fn next_named(events: &mut UnboundedReceiver<ServerEvent>, name: &str) -> Value {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events.recv().await.expect("the socket stays open");
            if e.name == name {
                return e.args.into_iter().next().unwrap_or(Value::Null);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {name} within {WAIT:?}"))
}

#[tokio::test]
async fn every_spelling_reaches_the_meeting_over_rest() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[])).await;
    let alice = server.token("alice");
    let room = create(&server, &alice).await;
    for s in spellings(&room) {
        let path = format!("/api/meetings/{}", s.replace(' ', "%20"));
        let (status, body) = server.get(&path, Some(&alice)).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        assert_eq!(body["meeting"]["roomId"], room.as_str(), "GET {path}");
        let (status, body) = server
            .get(&format!("{path}/participants"), Some(&alice))
            .await;
        assert_eq!(status, 200, "GET {path}/participants: {body}");
    }
    // A code that is ours in form but not in the store, and a malformed one: 404.
    let (status, _) = server.get("/api/meetings/2222-222-222", Some(&alice)).await;
    assert_eq!(status, 404);
    let (status, _) = server.get("/api/meetings/a%2Fb", Some(&alice)).await;
    assert_eq!(status, 404);
    server.stop().await;
    db.cleanup().await;
}

/// Each spelling joins; with the socket joined under one spelling, the later events
/// (toggles, chat, screen share, leave) name the meeting in another spelling and are
/// accepted, and the join's ack and events carry the canonical id.
#[tokio::test]
async fn every_spelling_joins_and_every_event_accepts_it() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[])).await;
    let alice = server.token("alice");
    let room = create(&server, &alice).await;
    let all = spellings(&room);
    let (host, mut host_events) = connect(&server, "alice").await;
    let hosted: JoinMeetingData = host
        .call("join-meeting", &json!({ "roomId": room }), WAIT)
        .await
        .expect("the host joins");
    assert_eq!(hosted.room_id.as_str(), room);

    for (i, spelling) in all.iter().enumerate() {
        let user = format!("guest{i}");
        let (client, mut events) = connect(&server, &user).await;
        let joined: JoinMeetingData = client
            .call("join-meeting", &json!({ "roomId": spelling }), WAIT)
            .await
            .unwrap_or_else(|e| panic!("join with {spelling:?}: {e:#}"));
        assert_eq!(joined.room_id.as_str(), room, "ack of {spelling:?}");
        let note = next_named(&mut events, "joined-meeting").await;
        assert_eq!(
            note["roomId"],
            room.as_str(),
            "joined-meeting of {spelling:?}"
        );
        let seen = next_named(&mut host_events, "participant-joined").await;
        assert_eq!(seen["userId"], user.as_str());

        // Later events in the next spelling of the list.
        let other = &all[(i + 1) % all.len()];
        for (event, body) in [
            (
                "toggle-audio",
                json!({ "roomId": other, "isEnabled": false }),
            ),
            (
                "toggle-video",
                json!({ "roomId": other, "isEnabled": false }),
            ),
            (
                "toggle-screen-share",
                json!({ "roomId": other, "isSharing": false }),
            ),
            (
                "meeting-chat-message",
                json!({ "roomId": other, "message": "hi" }),
            ),
        ] {
            let ack = client.request(event, &body, WAIT).await.unwrap();
            assert_eq!(ack["ok"], true, "{event} with {other:?}: {ack}");
        }
        let chat = next_named(&mut host_events, "meeting-chat-message").await;
        assert_eq!(chat["userId"], user.as_str());
        let ack = client
            .request("leave-meeting", &json!({ "roomId": other }), WAIT)
            .await
            .unwrap();
        assert_eq!(ack["ok"], true, "leave-meeting with {other:?}: {ack}");
        let left = next_named(&mut host_events, "participant-left").await;
        assert_eq!(left["userId"], user.as_str());
        client.close();
    }

    // Not a meeting: NOT_FOUND, with the id as sent.
    let (client, _events) = connect(&server, "zoe").await;
    let ack = client
        .request("join-meeting", &json!({ "roomId": "2222 222 222" }), WAIT)
        .await
        .unwrap();
    assert_eq!(ack["error"]["code"], "NOT_FOUND", "{ack}");
    server.stop().await;
    db.cleanup().await;
}

/// The page's route sends other spellings to the canonical address (the query, which
/// may carry a link token, kept), and serves the page there.
#[tokio::test]
async fn the_page_route_redirects_to_the_canonical_code() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[])).await;
    let room = create(&server, &server.token("alice")).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for s in spellings(&room).iter().skip(1) {
        let url = server.url(&format!("/m/{}?token=t1", s.replace(' ', "%20")));
        let resp = http.get(&url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 308, "{url}");
        assert_eq!(
            resp.headers()["location"].to_str().unwrap(),
            format!("/m/{room}?token=t1"),
            "{url}"
        );
    }
    let resp = http
        .get(server.url(&format!("/m/{room}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("<html"));
    server.stop().await;
    db.cleanup().await;
}
