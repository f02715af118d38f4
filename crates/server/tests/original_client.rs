//! A frontend and an auth service of the platform this service replaces, against a
//! server in this process (real WebSockets, SQLite): tokens whose user id is not in
//! `sub` (`JWT_USER_CLAIM` and the fallbacks, numeric and ObjectId ids), `meeting-error`
//! on a failed join, `meeting:leave`, and a client that connects without a token and
//! names itself with `userId` in `join-meeting`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Db, SECRET, TestServer, config};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use meeting_load::sio::{ServerEvent, SioClient};
use proto::signaling::JoinMeetingData;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(20);

/// A token as another service signs it: whatever claims, HS256 with the shared secret.
fn platform_token(mut claims: Value) -> String {
    let exp = meeting_service::auth::now_secs() + 600;
    claims["exp"] = json!(exp);
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn create(server: &TestServer, token: &str) -> (u16, Value) {
    server
        .post(
            "/api/meetings/create",
            Some(token),
            json!({ "title": "Platform" }),
        )
        .await
}

/// The next event called `name`, within `WAIT`; `None` if the socket closed first.
async fn next_named(events: &mut UnboundedReceiver<ServerEvent>, name: &str) -> Option<Value> {
    tokio::time::timeout(WAIT, async {
        while let Some(e) = events.recv().await {
            if e.name == name {
                return Some(e.args.into_iter().next().unwrap_or(Value::Null));
            }
        }
        None
    })
    .await
    .unwrap_or_else(|_| panic!("no {name} within {WAIT:?}"))
}

/// The platform's tokens, with the default claims: the id under `userId`, `id` (a
/// number) or `_id` (an ObjectId as text), the name under `username` or `displayName`;
/// they create meetings over REST and join over Socket.IO as that user.
#[tokio::test]
async fn platform_tokens_with_the_default_claims() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[])).await;
    let cases = [
        (
            json!({ "userId": "u-17", "username": "ann" }),
            "u-17",
            "ann",
        ),
        (json!({ "id": 4242, "displayName": "Bo" }), "4242", "Bo"),
        (
            json!({ "_id": "65a1f0c2e4b0a1b2c3d4e5f6", "name": "Cy" }),
            "65a1f0c2e4b0a1b2c3d4e5f6",
            "Cy",
        ),
    ];
    for (claims, id, name) in cases {
        let token = platform_token(claims.clone());
        let (status, body) = create(&server, &token).await;
        assert_eq!(status, 201, "{claims}: {body}");
        assert_eq!(body["meeting"]["hostId"], id, "{claims}");
        let room = body["meeting"]["roomId"].as_str().unwrap().to_owned();
        let (client, _events) = SioClient::connect(&server.url(""), &token, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{claims}: {e:#}"));
        let joined: JoinMeetingData = client
            .call("join-meeting", &json!({ "roomId": room }), WAIT)
            .await
            .unwrap();
        assert_eq!(joined.user_id.as_str(), id, "{claims}");
        assert!(joined.is_host, "{claims}: the token's user is the host");
        assert_eq!(joined.me.user_name, name, "{claims}");
        client.close();
    }
    // No id anywhere: refused, saying where it looked.
    let token = platform_token(json!({ "email": "x@example.com" }));
    let (status, body) = create(&server, &token).await;
    assert_eq!(status, 401, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("JWT_USER_CLAIM"), "{message}");
    let refused = SioClient::connect(&server.url(""), &token, WAIT).await;
    let e = refused.expect_err("refused at connect");
    assert!(e.to_string().contains("TOKEN_INVALID"), "{e:#}");
    server.stop().await;
    db.cleanup().await;
}

/// `JWT_USER_CLAIM` and `JWT_NAME_CLAIM` are looked at first.
#[tokio::test]
async fn configured_claims_come_first() {
    let db = Db::sqlite();
    let server = TestServer::start(config(
        &db.url(),
        &[
            ("JWT_USER_CLAIM", "accountId"),
            ("JWT_NAME_CLAIM", "fullName"),
        ],
    ))
    .await;
    let token = platform_token(
        json!({ "sub": "session-9", "accountId": 77, "fullName": "Dee Dee", "name": "dd" }),
    );
    let (status, body) = create(&server, &token).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["meeting"]["hostId"], "77");
    let room = body["meeting"]["roomId"].as_str().unwrap().to_owned();
    let (client, _events) = SioClient::connect(&server.url(""), &token, WAIT)
        .await
        .unwrap();
    let joined: JoinMeetingData = client
        .call("join-meeting", &json!({ "roomId": room }), WAIT)
        .await
        .unwrap();
    assert_eq!(
        (joined.user_id.as_str(), joined.me.user_name.as_str()),
        ("77", "Dee Dee")
    );
    server.stop().await;
    db.cleanup().await;
}

/// A failed join is told twice: in its ack, and as `meeting-error` with the same error.
#[tokio::test]
async fn a_failed_join_emits_meeting_error() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[])).await;
    let alice = server.token("alice");
    let (_, body) = create(&server, &alice).await;
    let room = body["meeting"]["roomId"].as_str().unwrap().to_owned();
    let (status, _) = server
        .post(
            &format!("/api/meetings/{room}/end"),
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);

    let (client, mut events) = SioClient::connect(&server.url(""), &server.token("bob"), WAIT)
        .await
        .unwrap();
    for (room_id, code) in [
        ("2222-222-222", "NOT_FOUND"),
        (room.as_str(), "MEETING_ENDED"),
    ] {
        let ack = client
            .request("join-meeting", &json!({ "roomId": room_id }), WAIT)
            .await
            .unwrap();
        assert_eq!(ack["error"]["code"], code, "{ack}");
        let note = next_named(&mut events, "meeting-error").await.unwrap();
        assert_eq!(
            note["error"], ack["error"],
            "meeting-error repeats the ack's error"
        );
    }
    // A join that succeeds emits no meeting-error: the next one seen is a later failure's.
    let (_, body) = create(&server, &alice).await;
    let open = body["meeting"]["roomId"].as_str().unwrap().to_owned();
    let ack = client
        .request("join-meeting", &json!({ "roomId": open }), WAIT)
        .await
        .unwrap();
    assert_eq!(ack["ok"], true, "{ack}");
    let ack = client
        .request("join-meeting", &json!({ "roomId": 12 }), WAIT)
        .await
        .unwrap();
    assert_eq!(ack["error"]["code"], "BAD_REQUEST");
    let note = next_named(&mut events, "meeting-error").await.unwrap();
    assert_eq!(note["error"]["code"], "BAD_REQUEST", "{note}");
    server.stop().await;
    db.cleanup().await;
}

/// `meeting:leave`, with the meeting named (in any spelling) or not named at all.
#[tokio::test]
async fn meeting_leave_leaves() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[])).await;
    let alice = server.token("alice");
    let (_, body) = create(&server, &alice).await;
    let room = body["meeting"]["roomId"].as_str().unwrap().to_owned();
    let (host, mut host_events) = SioClient::connect(&server.url(""), &alice, WAIT)
        .await
        .unwrap();
    let _: JoinMeetingData = host
        .call("join-meeting", &json!({ "roomId": room }), WAIT)
        .await
        .unwrap();
    for payload in [
        json!({}),
        json!({ "roomId": room.to_ascii_lowercase() }),
        Value::Null,
    ] {
        let (bob, _events) = SioClient::connect(&server.url(""), &server.token("bob"), WAIT)
            .await
            .unwrap();
        let _: JoinMeetingData = bob
            .call("join-meeting", &json!({ "roomId": room }), WAIT)
            .await
            .unwrap();
        let ack = bob.request("meeting:leave", &payload, WAIT).await.unwrap();
        assert_eq!(ack["ok"], true, "meeting:leave {payload}: {ack}");
        let left = next_named(&mut host_events, "participant-left")
            .await
            .unwrap();
        assert_eq!(left["userId"], "bob", "{payload}");
        // Out: a second leave finds no meeting.
        let again = bob.request("meeting:leave", &payload, WAIT).await.unwrap();
        assert_eq!(again["error"]["code"], "NOT_IN_MEETING", "{again}");
        bob.close();
    }
    let (status, body) = server
        .get(&format!("/api/meetings/{room}/participants"), Some(&alice))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["participants"].as_array().unwrap().len(), 1, "{body}");
    server.stop().await;
    db.cleanup().await;
}

/// The original frontend connects without `auth` and sends `join-meeting` with its own
/// `userId`: it is told `TOKEN_MISSING` in `meeting-error` (at once, and for the join,
/// whose ack says the same), is disconnected, and joined nothing.
#[tokio::test]
async fn a_client_without_a_token_gets_meeting_error() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[])).await;
    let alice = server.token("alice");
    let (_, body) = create(&server, &alice).await;
    let room = body["meeting"]["roomId"].as_str().unwrap().to_owned();

    let (client, mut events) = SioClient::connect_with_auth(&server.url(""), Value::Null, WAIT)
        .await
        .expect("connected, to be told");
    let first = next_named(&mut events, "meeting-error").await.unwrap();
    assert_eq!(first["error"]["code"], "TOKEN_MISSING", "{first}");
    assert!(
        first["error"]["message"]
            .as_str()
            .unwrap()
            .contains("auth: { token }"),
        "{first}"
    );
    let ack = client
        .request(
            "join-meeting",
            &json!({ "roomId": room, "userId": "alice", "userName": "Alice" }),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(ack["error"]["code"], "TOKEN_MISSING", "{ack}");
    let second = next_named(&mut events, "meeting-error").await.unwrap();
    assert_eq!(second["error"]["code"], "TOKEN_MISSING");
    // Then disconnected: the event stream ends (bounded by `WAIT`).
    assert!(next_named(&mut events, "never-sent").await.is_none());
    let (status, body) = server
        .get(&format!("/api/meetings/{room}/participants"), Some(&alice))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["participants"], json!([]), "nobody joined");

    // Sending nothing: disconnected after the grace period all the same.
    let (_idle, mut idle_events) = SioClient::connect_with_auth(&server.url(""), Value::Null, WAIT)
        .await
        .unwrap();
    assert!(
        next_named(&mut idle_events, "meeting-error")
            .await
            .is_some()
    );
    let started = std::time::Instant::now();
    assert!(next_named(&mut idle_events, "never-sent").await.is_none());
    assert!(
        started.elapsed()
            < meeting_service::signaling::original::TOKENLESS_GRACE + Duration::from_secs(5)
    );

    // `auth` without a token (what `io(url, { auth: {} })` sends) is the same.
    let (_empty, mut empty_events) = SioClient::connect_with_auth(&server.url(""), json!({}), WAIT)
        .await
        .unwrap();
    let note = next_named(&mut empty_events, "meeting-error")
        .await
        .unwrap();
    assert_eq!(note["error"]["code"], "TOKEN_MISSING");
    server.stop().await;
    db.cleanup().await;
}

/// `change-video-quality`: the meeting is told, in `participant-video-quality-changed`;
/// a quality that is not one of the four, or a meeting the socket is not in, is refused.
#[tokio::test]
async fn change_video_quality_is_announced() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[])).await;
    let alice = server.token("alice");
    let (_, body) = create(&server, &alice).await;
    let room = body["meeting"]["roomId"].as_str().unwrap().to_owned();
    let mut sockets = Vec::new();
    for user in ["alice", "bob"] {
        let (client, events) = SioClient::connect(&server.url(""), &server.token(user), WAIT)
            .await
            .unwrap();
        let _: JoinMeetingData = client
            .call("join-meeting", &json!({ "roomId": room }), WAIT)
            .await
            .unwrap();
        sockets.push((client, events));
    }
    let bob = sockets[1].0.clone();
    let alice_events = &mut sockets[0].1;
    // Before anything is announced: refusals.
    for (payload, code) in [
        (json!({ "roomId": room, "quality": "ultra" }), "BAD_REQUEST"),
        (json!({ "roomId": room }), "BAD_REQUEST"),
        (
            json!({ "roomId": "2222-222-222", "quality": "low" }),
            "NOT_IN_MEETING",
        ),
    ] {
        let ack = bob
            .request("change-video-quality", &payload, WAIT)
            .await
            .unwrap();
        assert_eq!(ack["error"]["code"], code, "{payload}: {ack}");
    }
    for quality in ["low", "high", "auto"] {
        let ack = bob
            .request(
                "change-video-quality",
                &json!({ "roomId": room.to_ascii_lowercase(), "quality": quality }),
                WAIT,
            )
            .await
            .unwrap();
        assert_eq!(ack["ok"], true, "{ack}");
        let note = next_named(alice_events, "participant-video-quality-changed")
            .await
            .unwrap();
        assert_eq!(
            (note["userId"].as_str(), note["quality"].as_str()),
            (Some("bob"), Some(quality)),
            "{note}"
        );
        assert!(note["peerId"].as_str().is_some_and(|p| p.starts_with("p_")));
    }
    server.stop().await;
    db.cleanup().await;
}
