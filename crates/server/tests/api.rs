//! The REST API over real HTTP, run against SQLite and (ignored without it) PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Db, TestServer, config, error_of};
use meeting_service::state::{EndReason, MeetingEvent};
use meeting_service::store::JoinRecord;
use proto::{PeerId, RoomId, UserId};
use serde_json::{Value, json};

#[tokio::test]
async fn api_suite_sqlite() {
    let db = Db::sqlite();
    api_suite(&db).await;
    db.cleanup().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn api_suite_postgres() {
    let db = Db::postgres().await;
    api_suite(&db).await;
    db.cleanup().await;
}

async fn api_suite(db: &Db) {
    let server = TestServer::start(config(&db.url(), &[("MAX_PARTICIPANTS", "20")])).await;
    let alice = server.token("alice");
    let bob = server.token("bob");
    let mut events = server.state.events.subscribe();

    // Create, with the original service's setting names.
    let (status, body) = server
        .post(
            "/api/meetings/create",
            Some(&alice),
            json!({ "title": "  Standup ", "description": "daily", "settings": { "maxParticipants": 8, "isChatEnabled": false, "requireApproval": true } }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["success"], true);
    let m = &body["meeting"];
    let room = m["roomId"].as_str().unwrap().to_owned();
    assert!(
        meeting_service::room_code::parse(&room).is_some_and(|r| r.as_str() == room),
        "{room}"
    );
    assert_eq!(m["title"], "Standup");
    assert_eq!(m["hostId"], "alice");
    assert_eq!(m["status"], "scheduled");
    assert_eq!(m["maxParticipants"], 8);
    assert_eq!(m["topology"], "mesh");
    assert_eq!(
        m["settings"],
        json!({ "allowChat": false, "allowScreenShare": true, "allowRecording": false, "requireApproval": true, "lockRoom": false })
    );
    assert!(m["createdAt"].as_str().is_some());

    // Get: anyone with a token; the ID is accepted as typed (case, dashes).
    let (status, body) = server
        .get(&format!("/api/meetings/{room}"), Some(&bob))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meeting"]["roomId"], room.as_str());
    let typed = room.replace('-', "").to_lowercase();
    let (status, body) = server
        .get(&format!("/api/meetings/{typed}"), Some(&bob))
        .await;
    assert_eq!(
        (status, body["meeting"]["roomId"].as_str()),
        (200, Some(room.as_str()))
    );

    // Participants: what the signaling records.
    let (status, body) = server
        .get(&format!("/api/meetings/{room}/participants"), Some(&bob))
        .await;
    assert_eq!((status, body["count"].clone()), (200, json!(0)), "{body}");
    let room_id = RoomId::new(room.clone());
    let store = &server.state.store;
    // `admitted`: how many the live registry held with this connection in it.
    let join = |user: &str, peer: &str, host: bool, admitted: u32| JoinRecord {
        user_id: UserId::new(user),
        peer_id: PeerId::new(peer),
        user_name: format!("User {user}"),
        user_picture: None,
        is_host: host,
        admitted,
    };
    assert_eq!(
        store
            .record_join(&room_id, join("alice", "p_a1", true, 1), Utc::now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .record_join(&room_id, join("bob", "p_b1", false, 2), Utc::now())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .record_leave(&room_id, &PeerId::new("p_b1"), Utc::now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .record_join(&room_id, join("bob", "p_b2", false, 2), Utc::now())
            .await
            .unwrap(),
        2
    );
    let (status, body) = server
        .get(&format!("/api/meetings/{room}/participants"), Some(&bob))
        .await;
    assert_eq!(status, 200, "{body}");
    let peers: Vec<&str> = body["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["peerId"].as_str().unwrap())
        .collect();
    assert_eq!(peers, ["p_a1", "p_b2"]);
    assert_eq!(body["participants"][0]["isHost"], true);
    assert_eq!(body["participants"][0]["userName"], "User alice");
    let (_, body) = server
        .get(&format!("/api/meetings/{room}"), Some(&bob))
        .await;
    assert_eq!(
        body["meeting"]["status"], "active",
        "first join starts it: {body}"
    );
    assert_eq!(body["participantCount"], 2);
    assert_eq!(
        body["meeting"]["participants"][1]["peerId"], "p_b2",
        "{body}"
    );
    assert!(body["meeting"]["startedAt"].as_str().is_some());

    // Stats.
    let (status, body) = server
        .get(&format!("/api/meetings/{room}/stats"), Some(&bob))
        .await;
    assert_eq!(status, 200, "{body}");
    let s = &body["stats"];
    assert_eq!(
        (
            s["peakParticipants"].clone(),
            s["totalParticipants"].clone(),
            s["totalJoins"].clone(),
            s["currentParticipants"].clone()
        ),
        (json!(2), json!(2), json!(3), json!(2)),
        "{s}"
    );
    assert!(s["duration"].as_i64().is_some_and(|d| d >= 0), "{s}");

    // Update: host only, partial settings.
    let path = format!("/api/meetings/{room}");
    let (status, body) = server
        .put(&path, Some(&bob), json!({ "title": "Hijacked" }))
        .await;
    assert_eq!((status, error_of(&body).0.as_str()), (403, "FORBIDDEN"));
    let (status, body) = server
        .put(
            &path,
            Some(&alice),
            json!({ "title": "Standup (moved)", "settings": { "lockRoom": true } }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meeting"]["title"], "Standup (moved)");
    assert_eq!(body["meeting"]["settings"]["lockRoom"], true);
    assert_eq!(
        body["meeting"]["settings"]["allowChat"], false,
        "unnamed settings keep their value"
    );
    assert_eq!(body["meeting"]["settings"]["requireApproval"], true);
    match events.try_recv() {
        Ok(MeetingEvent::Updated(m)) => assert_eq!(m.title, "Standup (moved)"),
        other => panic!("expected an Updated event, got {other:?}"),
    }

    // Validation errors name the field.
    for (body, field) in [
        (json!({ "title": "" }), "title"),
        (json!({}), "title"),
        (json!({ "title": 5 }), "title"),
        (json!({ "title": "x".repeat(201) }), "title"),
        (
            json!({ "title": "t", "description": "d".repeat(2001) }),
            "description",
        ),
        (
            json!({ "title": "t", "settings": { "maxParticipants": 21 } }),
            "settings.maxParticipants",
        ),
        (
            json!({ "title": "t", "settings": { "maxParticipants": "ten" } }),
            "settings.maxParticipants",
        ),
        (
            json!({ "title": "t", "settings": { "allowChat": "yes" } }),
            "settings.allowChat",
        ),
        (
            json!({ "title": "t", "maxParticipants": 1 }),
            "maxParticipants",
        ),
        (
            json!({ "title": "t", "scheduledAt": "tomorrow" }),
            "scheduledAt",
        ),
        (
            json!({ "title": "t", "scheduledAt": "2001-01-01T00:00:00Z" }),
            "scheduledAt",
        ),
        (json!({ "title": "t", "topology": "star" }), "topology"),
        (json!({ "title": "t", "topology": "sfu" }), "topology"),
    ] {
        let (status, resp) = server
            .post("/api/meetings/create", Some(&alice), body.clone())
            .await;
        let (code, got_field) = error_of(&resp);
        assert_eq!(
            (status, code.as_str(), got_field.as_deref()),
            (422, "VALIDATION_ERROR", Some(field)),
            "{body} → {resp}"
        );
    }
    // Not JSON at all: 400.
    let req = server
        .http
        .post(server.url("/api/meetings/create"))
        .header("content-type", "application/json")
        .body("{ title: ");
    let (status, resp) = server.send(req, Some(&alice)).await;
    assert_eq!(
        (status, error_of(&resp).0.as_str()),
        (400, "BAD_REQUEST"),
        "{resp}"
    );
    let req = server
        .http
        .post(server.url("/api/meetings/create"))
        .body("title=x");
    let (status, resp) = server.send(req, Some(&alice)).await;
    assert_eq!(
        (status, error_of(&resp).0.as_str()),
        (400, "BAD_REQUEST"),
        "{resp}"
    );
    // Oversized body: 413.
    let (status, resp) = server
        .post(
            "/api/meetings/create",
            Some(&alice),
            json!({ "title": "x".repeat(100 * 1024) }),
        )
        .await;
    assert_eq!(
        (status, error_of(&resp).0.as_str()),
        (413, "PAYLOAD_TOO_LARGE"),
        "{resp}"
    );

    // A user's meetings: status filter and paging, newest first.
    let mut created = vec![room.clone()];
    for i in 0..3 {
        let (status, body) = server
            .post(
                "/api/meetings/create",
                Some(&alice),
                json!({ "title": format!("m{i}") }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        created.push(body["meeting"]["roomId"].as_str().unwrap().to_owned());
        // Distinct creation times keep the order deterministic.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let (status, body) = server.get("/api/meetings/user/alice", Some(&alice)).await;
    assert_eq!((status, body["total"].clone()), (200, json!(4)), "{body}");
    let ids = |b: &Value| -> Vec<String> {
        b["meetings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["roomId"].as_str().unwrap().to_owned())
            .collect()
    };
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(ids(&body), newest_first);
    let (_, body) = server
        .get("/api/meetings/user/alice?limit=2&skip=1", Some(&alice))
        .await;
    assert_eq!(ids(&body), newest_first[1..3].to_vec());
    assert_eq!(
        (
            body["total"].clone(),
            body["limit"].clone(),
            body["skip"].clone()
        ),
        (json!(4), json!(2), json!(1))
    );
    let (_, body) = server
        .get("/api/meetings/user/alice?status=active", Some(&alice))
        .await;
    assert_eq!(ids(&body), vec![room.clone()]);
    let (_, body) = server
        .get("/api/meetings/user/bob?status=active", Some(&bob))
        .await;
    assert_eq!(
        ids(&body),
        vec![room.clone()],
        "joined meetings are listed too"
    );
    let (status, resp) = server.get("/api/meetings/user/alice", Some(&bob)).await;
    assert_eq!((status, error_of(&resp).0.as_str()), (403, "FORBIDDEN"));
    for (query, field) in [
        ("status=done", "status"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("skip=-1", "skip"),
    ] {
        let (status, resp) = server
            .get(&format!("/api/meetings/user/alice?{query}"), Some(&alice))
            .await;
        assert_eq!(
            (status, error_of(&resp).1.as_deref()),
            (422, Some(field)),
            "{query} → {resp}"
        );
    }

    // End: host only, once.
    let end = format!("/api/meetings/{room}/end");
    let (status, resp) = server.post(&end, Some(&bob), json!({})).await;
    assert_eq!((status, error_of(&resp).0.as_str()), (403, "FORBIDDEN"));
    let (status, body) = server.post(&end, Some(&alice), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meeting"]["status"], "ended");
    assert_eq!(body["meeting"]["endReason"], "host-ended");
    assert!(body["meeting"]["endedAt"].as_str().is_some());
    match events.try_recv() {
        Ok(MeetingEvent::Ended { room_id, reason }) => assert_eq!(
            (room_id.as_str(), reason),
            (room.as_str(), EndReason::HostEnded)
        ),
        other => panic!("expected an Ended event, got {other:?}"),
    }
    let (_, body) = server
        .get(&format!("/api/meetings/{room}/participants"), Some(&bob))
        .await;
    assert_eq!(
        body["count"], 0,
        "ending closes every participant record: {body}"
    );
    let (status, resp) = server.post(&end, Some(&alice), json!({})).await;
    assert_eq!((status, error_of(&resp).0.as_str()), (409, "MEETING_ENDED"));
    let (status, resp) = server
        .put(&path, Some(&alice), json!({ "title": "again" }))
        .await;
    assert_eq!((status, error_of(&resp).0.as_str()), (409, "MEETING_ENDED"));
    let (_, body) = server
        .get("/api/meetings/user/alice?status=ended", Some(&alice))
        .await;
    assert_eq!(ids(&body), vec![room.clone()]);

    // Delete: host only.
    let (status, resp) = server.delete(&path, Some(&bob)).await;
    assert_eq!((status, error_of(&resp).0.as_str()), (403, "FORBIDDEN"));
    let (status, body) = server.delete(&path, Some(&alice)).await;
    assert_eq!(
        (status, body["roomId"].as_str()),
        (200, Some(room.as_str())),
        "{body}"
    );
    let (status, resp) = server.get(&path, Some(&alice)).await;
    assert_eq!((status, error_of(&resp).0.as_str()), (404, "NOT_FOUND"));
    match events.try_recv() {
        Ok(MeetingEvent::Ended { reason, .. }) => assert_eq!(reason, EndReason::Deleted),
        other => panic!("expected an Ended(deleted) event, got {other:?}"),
    }

    // 404s: well-formed but unknown, malformed, unknown route.
    for p in [
        "/api/meetings/ABCD-EFG-HJK",
        "/api/meetings/not-a-code",
        "/api/meetings/ABCD-EFG-HJK/stats",
        "/api/meetings/ABCD-EFG-HJK/participants",
        "/api/nothing",
    ] {
        let (status, resp) = server.get(p, Some(&alice)).await;
        assert_eq!(
            (status, error_of(&resp).0.as_str()),
            (404, "NOT_FOUND"),
            "{p}"
        );
    }
    let (status, resp) = server
        .post("/api/meetings/ABCD-EFG-HJK/end", Some(&alice), json!({}))
        .await;
    assert_eq!((status, error_of(&resp).0.as_str()), (404, "NOT_FOUND"));

    // 401: missing, expired, forged, malformed.
    let forged = {
        let other = meeting_service::auth::JwtKeys::new("some-other-secret-0123456789abcdef");
        other
            .mint("alice", "Alice", None, Duration::from_secs(600))
            .unwrap()
    };
    let expired = server.expired_token("alice");
    let target = format!("/api/meetings/{}", created[1]);
    for (token, code) in [
        (None, "TOKEN_MISSING"),
        (Some(expired.as_str()), "TOKEN_EXPIRED"),
        (Some(forged.as_str()), "TOKEN_INVALID"),
        (Some("not.a.jwt"), "TOKEN_INVALID"),
    ] {
        let (status, resp) = server.get(&target, token).await;
        assert_eq!(
            (status, error_of(&resp).0.as_str()),
            (401, code),
            "{token:?}"
        );
        let (status, _) = server
            .post("/api/meetings/create", token, json!({ "title": "x" }))
            .await;
        assert_eq!(status, 401);
    }
    let req = server
        .http
        .get(server.url(&target))
        .header("authorization", format!("Token {alice}"));
    let (status, resp) = server.send(req, None).await;
    assert_eq!((status, error_of(&resp).0.as_str()), (401, "TOKEN_INVALID"));

    server.stop().await;
}

#[tokio::test]
async fn ice_servers_guest_tokens_and_health() {
    let db = Db::sqlite();
    let server = TestServer::start(config(
        &db.url(),
        &[
            ("STUN_SERVER_1", "stun:stun.example.org:3478"),
            ("STUN_SERVER_2", "stun:stun2.example.org:3478"),
            (
                "TURN_SERVER_URL",
                "turn:turn.example.org:3478,turns:turn.example.org:5349",
            ),
            ("TURN_USERNAME", "u"),
            ("TURN_CREDENTIAL", "c"),
        ],
    ))
    .await;

    let (status, resp) = server.get("/api/ice-servers", None).await;
    assert_eq!((status, error_of(&resp).0.as_str()), (401, "TOKEN_MISSING"));
    let (status, body) = server
        .get("/api/ice-servers", Some(&server.token("alice")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["iceServers"],
        json!([
            { "urls": ["stun:stun.example.org:3478"] },
            { "urls": ["stun:stun2.example.org:3478"] },
            { "urls": ["turn:turn.example.org:3478", "turns:turn.example.org:5349"], "username": "u", "credential": "c" },
        ])
    );

    // Development: a guest token that the API accepts.
    let (status, body) = server
        .post("/api/auth/guest", None, json!({ "name": "Visitor" }))
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    let claims = server.state.jwt.verify(token).unwrap();
    assert!(claims.sub.starts_with("guest_"));
    assert_eq!(claims.name, "Visitor");
    let (status, _) = server
        .post(
            "/api/meetings/create",
            Some(token),
            json!({ "title": "guest's" }),
        )
        .await;
    assert_eq!(status, 201);
    let (status, resp) = server
        .post("/api/auth/guest", None, json!({ "name": "n".repeat(65) }))
        .await;
    assert_eq!((status, error_of(&resp).1.as_deref()), (422, Some("name")));

    let (status, body) = server.get("/health", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = server.get("/health/ready", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["database"]["ok"], true);
    assert_eq!(
        body["checks"]["redis"],
        json!({ "ok": true, "configured": false })
    );
    assert_eq!(body["checks"]["sfu"]["enabled"], false);
    server.stop().await;

    // Production: no guest endpoint; SFU mode without a running engine is not ready.
    let server = TestServer::start(config(
        &db.url(),
        &[("NODE_ENV", "production"), ("SFU_MODE_ENABLED", "true")],
    ))
    .await;
    let (status, resp) = server
        .post("/api/auth/guest", None, json!({ "name": "Visitor" }))
        .await;
    assert_eq!((status, error_of(&resp).0.as_str()), (404, "NOT_FOUND"));
    let (status, body) = server.get("/health/ready", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["database"]["ok"], true);
    assert_eq!(body["checks"]["sfu"]["ok"], false);
    let (status, body) = server
        .post(
            "/api/meetings/create",
            Some(&server.token("alice")),
            json!({ "title": "t" }),
        )
        .await;
    assert_eq!(
        (status, body["meeting"]["topology"].as_str()),
        (201, Some("sfu")),
        "SFU_MODE_ENABLED sets the default topology"
    );
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
#[ignore = "needs Redis"]
async fn readiness_reports_redis() {
    let db = Db::sqlite();
    let server = TestServer::start(config(
        &db.url(),
        &[("REDIS_URL", "redis://127.0.0.1:6379")],
    ))
    .await;
    let (status, body) = server.get("/health/ready", None).await;
    assert_eq!(
        (status, body["checks"]["redis"].clone()),
        (200, json!({ "ok": true, "configured": true })),
        "{body}"
    );
    server.stop().await;
    // Nothing listens on port 1: the check fails and readiness says so.
    let server =
        TestServer::start(config(&db.url(), &[("REDIS_URL", "redis://127.0.0.1:1")])).await;
    let (status, body) = server.get("/health/ready", None).await;
    assert_eq!(
        (status, body["checks"]["redis"]["ok"].clone()),
        (503, json!(false)),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn concurrent_joins_and_leaves_sqlite() {
    let db = Db::sqlite();
    concurrent_joins_and_leaves(&db).await;
    db.cleanup().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn concurrent_joins_and_leaves_postgres() {
    let db = Db::postgres().await;
    concurrent_joins_and_leaves(&db).await;
    db.cleanup().await;
}

/// Many connections joining and leaving one meeting at once: the peak counts them all
/// and the idle clock starts when the last one leaves, whatever the interleaving.
async fn concurrent_joins_and_leaves(db: &Db) {
    const N: usize = 30;
    let server = TestServer::start(config(&db.url(), &[])).await;
    let (_, body) = server
        .post(
            "/api/meetings/create",
            Some(&server.token("alice")),
            json!({ "title": "rush hour" }),
        )
        .await;
    let room = RoomId::new(body["meeting"]["roomId"].as_str().unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let (store, room) = (server.state.store.clone(), room.clone());
        tasks.spawn(async move {
            let rec = JoinRecord {
                user_id: UserId::new(format!("u{i}")),
                peer_id: PeerId::new(format!("p_{i}")),
                user_name: format!("U{i}"),
                user_picture: None,
                is_host: false,
                // The registry admits them one at a time, the i-th into i others.
                admitted: i as u32 + 1,
            };
            store.record_join(&room, rec, Utc::now()).await
        });
    }
    let mut counts: Vec<u32> = tasks
        .join_all()
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=N as u32).collect::<Vec<_>>(),
        "each join saw the ones before it"
    );
    let stats = server.state.store.stats(&room).await.unwrap().unwrap();
    assert_eq!(
        (
            stats.peak_participants,
            stats.current_participants,
            stats.total_participants
        ),
        (N as u32, N as u32, N as u32)
    );

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let (store, room) = (server.state.store.clone(), room.clone());
        tasks.spawn(async move {
            store
                .record_leave(&room, &PeerId::new(format!("p_{i}")), Utc::now())
                .await
        });
    }
    let mut remaining: Vec<u32> = tasks
        .join_all()
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..N as u32).collect::<Vec<_>>());
    let m = server
        .state
        .store
        .get_meeting(&room)
        .await
        .unwrap()
        .unwrap();
    assert!(
        m.empty_since.is_some(),
        "the last leave starts the idle clock"
    );
    assert_eq!(m.peak_participants, N as u32);
    server.stop().await;
}

/// A broken database: requests fail with a generic 500 (details only in the log) and
/// readiness turns 503, while liveness stays 200.
#[tokio::test]
async fn database_failure_is_a_generic_500() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[])).await;
    let alice = server.token("alice");
    server.state.store.close().await;
    let (status, resp) = server
        .post(
            "/api/meetings/create",
            Some(&alice),
            json!({ "title": "t" }),
        )
        .await;
    assert_eq!(
        (status, error_of(&resp).0.as_str()),
        (500, "INTERNAL"),
        "{resp}"
    );
    let text = resp.to_string().to_lowercase();
    assert!(
        !text.contains("pool") && !text.contains("sqlite") && !text.contains("closed"),
        "internals leaked: {resp}"
    );
    let (status, body) = server.get("/health/ready", None).await;
    assert_eq!(
        (status, body["checks"]["database"]["ok"].clone()),
        (503, json!(false)),
        "{body}"
    );
    let (status, _) = server.get("/health", None).await;
    assert_eq!(status, 200);
    server.stop().await;
}
