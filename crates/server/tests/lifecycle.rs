//! Persistence across restarts and the MEETING_TTL sweeper.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Db, TestServer, config, wait_for};
use meeting_service::state::{EndReason, MeetingEvent};
use meeting_service::store::JoinRecord;
use proto::{PeerId, RoomId, UserId};
use serde_json::json;

fn join(user: &str, peer: &str) -> JoinRecord {
    JoinRecord {
        user_id: UserId::new(user),
        peer_id: PeerId::new(peer),
        user_name: user.to_owned(),
        user_picture: None,
        is_host: user == "alice",
        // Alone in the meeting (these tests have one participant per meeting).
        admitted: 1,
    }
}

#[tokio::test]
async fn meetings_and_history_survive_a_restart() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[])).await;
    let alice = server.token("alice");
    let (status, body) = server
        .post(
            "/api/meetings/create",
            Some(&alice),
            json!({ "title": "Persistent", "settings": { "allowRecording": true } }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let room = body["meeting"]["roomId"].as_str().unwrap().to_owned();
    let room_id = RoomId::new(room.clone());
    server
        .state
        .store
        .record_join(&room_id, join("alice", "p_1"), Utc::now())
        .await
        .unwrap();
    server
        .state
        .store
        .record_leave(&room_id, &PeerId::new("p_1"), Utc::now())
        .await
        .unwrap();
    server.stop().await;

    let server = TestServer::start(config(&db.url(), &[])).await;
    let (status, body) = server
        .get(&format!("/api/meetings/{room}"), Some(&server.token("bob")))
        .await;
    assert_eq!(status, 200, "{body}");
    let m = &body["meeting"];
    assert_eq!(
        (
            m["title"].as_str(),
            m["hostId"].as_str(),
            m["status"].as_str()
        ),
        (Some("Persistent"), Some("alice"), Some("active"))
    );
    assert_eq!(m["settings"]["allowRecording"], true);
    let (_, body) = server
        .get(&format!("/api/meetings/{room}/stats"), Some(&alice))
        .await;
    assert_eq!(
        (
            body["stats"]["totalJoins"].clone(),
            body["stats"]["peakParticipants"].clone()
        ),
        (json!(1), json!(1)),
        "{body}"
    );
    let history = server
        .state
        .store
        .participant_history(&room_id)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0].left_at.is_some());
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn orphaned_participants_are_closed_on_start() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[])).await;
    let (_, body) = server
        .post(
            "/api/meetings/create",
            Some(&server.token("alice")),
            json!({ "title": "crash" }),
        )
        .await;
    let room_id = RoomId::new(body["meeting"]["roomId"].as_str().unwrap());
    server
        .state
        .store
        .record_join(&room_id, join("alice", "p_1"), Utc::now())
        .await
        .unwrap();
    // The process "dies" with alice connected; the next start closes her record.
    let closed = server
        .state
        .store
        .close_orphaned_participants(Utc::now())
        .await
        .unwrap();
    assert_eq!(closed, 1);
    assert!(
        server
            .state
            .store
            .present_participants(&room_id)
            .await
            .unwrap()
            .is_empty()
    );
    let m = server
        .state
        .store
        .get_meeting(&room_id)
        .await
        .unwrap()
        .unwrap();
    assert!(m.empty_since.is_some(), "the idle clock runs again");
    server.stop().await;
}

#[tokio::test]
async fn empty_meetings_end_after_the_ttl() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[("MEETING_TTL", "1")])).await;
    let alice = server.token("alice");
    let mut events = server.state.events.subscribe();
    let mut rooms = Vec::new();
    for title in ["left empty", "still in use"] {
        let (status, body) = server
            .post(
                "/api/meetings/create",
                Some(&alice),
                json!({ "title": title }),
            )
            .await;
        assert_eq!(status, 201);
        rooms.push(RoomId::new(body["meeting"]["roomId"].as_str().unwrap()));
    }
    let store = &server.state.store;
    store
        .record_join(&rooms[0], join("alice", "p_1"), Utc::now())
        .await
        .unwrap();
    store
        .record_leave(&rooms[0], &PeerId::new("p_1"), Utc::now())
        .await
        .unwrap();
    store
        .record_join(&rooms[1], join("bob", "p_2"), Utc::now())
        .await
        .unwrap();

    let path = format!("/api/meetings/{}", rooms[0]);
    let ended = wait_for(
        "the empty meeting to end",
        Duration::from_secs(10),
        || async {
            let (_, body) = server.get(&path, Some(&alice)).await;
            (body["meeting"]["status"] == "ended").then_some(body)
        },
    )
    .await;
    assert_eq!(ended["meeting"]["endReason"], "ttl");
    assert!(ended["meeting"]["endedAt"].as_str().is_some());
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("event in time")
        .expect("event");
    match event {
        MeetingEvent::Ended { room_id, reason } => {
            assert_eq!((room_id, reason), (rooms[0].clone(), EndReason::Ttl))
        }
        other => panic!("unexpected {other:?}"),
    }
    // An occupied meeting never idles, however late the sweep looks.
    let swept = store
        .end_idle_meetings(
            Utc::now() + chrono::Duration::days(1),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert!(swept.is_empty(), "{swept:?}");
    let m = store.get_meeting(&rooms[1]).await.unwrap().unwrap();
    assert_eq!(m.status, meeting_service::store::MeetingStatus::Active);
    assert!(m.ended_at.is_none());
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn process_counts_follow_open_history_rows() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[])).await;
    let alice = server.token("alice");
    let (status, body) = server
        .post(
            "/api/meetings/create",
            Some(&alice),
            json!({ "title": "Counted" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let room = RoomId::new(body["meeting"]["roomId"].as_str().unwrap().to_owned());
    let counts = |body: &serde_json::Value| {
        (
            body["openParticipantRows"].as_u64(),
            body["liveParticipants"].as_u64(),
        )
    };

    let (status, body) = server.get("/health/process", None).await;
    assert_eq!((status, counts(&body)), (200, (Some(0), Some(0))), "{body}");
    assert!(body["tokioTasks"].as_u64().unwrap() > 0, "{body}");
    // The allocator's figures (glibc): this process has handed out memory, and what it
    // holds free is counted apart.
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        let in_use = body.pointer("/heap/inUse").and_then(|v| v.as_u64());
        assert!(in_use.is_some_and(|b| b > 1 << 20), "{body}");
        assert!(
            body.pointer("/heap/freeHeld").is_some_and(|v| v.is_u64()),
            "{body}"
        );
    }

    let store = &server.state.store;
    store
        .record_join(&room, join("alice", "p_1"), Utc::now())
        .await
        .unwrap();
    store
        .record_join(&room, join("bob", "p_2"), Utc::now())
        .await
        .unwrap();
    let (_, body) = server.get("/health/process", None).await;
    // History rows written without a socket: open rows, but nobody in the live registry.
    assert_eq!(counts(&body), (Some(2), Some(0)), "{body}");

    store
        .record_leave(&room, &PeerId::new("p_1"), Utc::now())
        .await
        .unwrap();
    let (_, body) = server.get("/health/process", None).await;
    assert_eq!(counts(&body), (Some(1), Some(0)), "{body}");
    store
        .record_leave(&room, &PeerId::new("p_2"), Utc::now())
        .await
        .unwrap();
    let (_, body) = server.get("/health/process", None).await;
    assert_eq!(counts(&body), (Some(0), Some(0)), "{body}");
    server.stop().await;
    db.cleanup().await;
}
