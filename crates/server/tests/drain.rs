//! Issue #15, item 3: a node that gets SIGTERM drains (`AppState::draining`, which the
//! signal handler cancels): it refuses new sockets, joins and meetings, reports not
//! ready, tells its participants `server-draining`, gives up its media leases (Redis),
//! and stops once they are gone or after `DRAIN_TIMEOUT_SECONDS`. With one node and no
//! Redis, the pages resume into the restarted process, whose empty registry re-creates
//! them from the resume token and their history rows. Over real WebSockets (the load
//! tool's client); the cluster cases need Redis and PostgreSQL (ignored without them).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::sio::{
    Events, WAIT, call, connect, create, history_rows, joined, names, next_named, next_named_after,
};
use common::{Db, TestServer, config, wait_for};
use meeting_load::sio::SioClient;
use meeting_service::cluster::placement::{Owner, Placement, ROOM_LEASE};
use proto::RoomId;
use serde_json::{Value, json};

/// Resume a join's connection (`data`: its ack) on a new socket of `user`.
async fn resume(server: &TestServer, user: &str, data: &Value) -> (SioClient, Events, Value) {
    let (client, events) = connect(server, user).await;
    let ack = call(
        &client,
        "resume-meeting",
        json!({
            "roomId": data["roomId"],
            "peerId": data["peerId"],
            "resumeToken": data["resumeToken"],
            "hasMedia": true,
            "isAudioEnabled": false,
            "isVideoEnabled": true,
        }),
    )
    .await;
    (client, events, ack)
}

#[tokio::test]
async fn a_draining_node_refuses_new_work_tells_its_participants_and_stops_once_they_left() {
    let db = Db::sqlite();
    let vars = [("DRAIN_TIMEOUT_SECONDS", "10")];
    let server = TestServer::start(config(&db.url(), &vars)).await;
    let room = create(&server, "ann", "drain").await;
    let (ann, mut ann_events, _) = joined(&server, "ann", &room).await;
    let (bob, mut bob_events, _) = joined(&server, "bob", &room).await;
    // Connected, not joined yet: its join comes too late.
    let (carol, _carol_events) = connect(&server, "carol").await;
    let (status, _) = server.get("/health/ready", None).await;
    assert_eq!(status, 200);

    server.state.draining.cancel();
    for events in [&mut ann_events, &mut bob_events] {
        let note = next_named(events, "server-draining").await;
        assert_eq!(
            note,
            json!({ "reconnectInMs": 500, "signaling": true, "media": true }),
            "one node: socket and media both go"
        );
    }
    let (status, body) = server.get("/health/ready", None).await;
    assert_eq!(
        (status, &body["status"]),
        (503, &json!("draining")),
        "{body}"
    );
    let join = call(&carol, "join-meeting", json!({ "roomId": room })).await;
    assert_eq!(join["error"]["code"], "UNAVAILABLE", "{join}");
    let (status, body) = server
        .post(
            "/api/meetings/create",
            Some(&server.token("dan")),
            json!({ "title": "too late" }),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &json!("UNAVAILABLE"))
    );
    let token = server.token("erin");
    let refused = SioClient::connect(&format!("http://{}", server.addr), &token, WAIT).await;
    assert!(refused.is_err(), "a new socket is refused while draining");

    // The pages close their sockets to move (not a leave: nobody is told).
    bob.close();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = names(&mut ann_events);
    assert!(!seen.iter().any(|n| n == "participant-left"), "{seen:?}");
    ann.close();
    carol.close();
    let state = server.state.clone();
    let took = server.stopped_within(Duration::from_secs(5)).await;
    assert!(
        took < Duration::from_secs(3),
        "stopped {took:?} after the last socket left, well before the 10 s timeout"
    );
    // Closed by the drain; a resume into the next process opens them again.
    assert_eq!(
        rows_of(&state, &room).await,
        [("ann".to_owned(), false), ("bob".to_owned(), false)]
    );
    db.cleanup().await;
}

async fn rows_of(state: &meeting_service::state::AppState, room: &str) -> Vec<(String, bool)> {
    let store = meeting_service::store::Store::connect(&state.config.database_url)
        .await
        .unwrap();
    let mut out: Vec<(String, bool)> = store
        .participant_history(&RoomId::new(room))
        .await
        .unwrap()
        .iter()
        .map(|r| (r.user_id.to_string(), r.left_at.is_none()))
        .collect();
    store.close().await;
    out.sort();
    out
}

#[tokio::test]
async fn a_drain_ends_after_its_timeout_when_a_page_stays() {
    let db = Db::sqlite();
    let vars = [("DRAIN_TIMEOUT_SECONDS", "2")];
    let server = TestServer::start(config(&db.url(), &vars)).await;
    let room = create(&server, "ann", "drain").await;
    // A page that ignores `server-draining` (a frontend that does not know it).
    let (_ann, mut ann_events, _) = joined(&server, "ann", &room).await;
    server.state.draining.cancel();
    next_named(&mut ann_events, "server-draining").await;
    let state = server.state.clone();
    let took = server.stopped_within(Duration::from_secs(8)).await;
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "stopped after {took:?}: the 2 s drain timeout, not before, and not much later"
    );
    assert_eq!(
        rows_of(&state, &room).await,
        [("ann".to_owned(), false)],
        "left when the drain ended: its row is closed"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn pages_resume_into_a_restarted_process_with_the_same_ids() {
    let db = Db::sqlite();
    let vars = [
        ("DRAIN_TIMEOUT_SECONDS", "10"),
        ("RECONNECT_GRACE_SECONDS", "3"),
    ];
    let first = TestServer::start(config(&db.url(), &vars)).await;
    let room = create(&first, "ann", "drain").await;
    let (ann, mut ann_events, ann_data) = joined(&first, "ann", &room).await;
    let (bob, _, bob_data) = joined(&first, "bob", &room).await;
    let (carl, _, carl_data) = joined(&first, "carl", &room).await;
    first.state.draining.cancel();
    next_named(&mut ann_events, "server-draining").await;
    for c in [&ann, &bob, &carl] {
        c.close();
    }
    first.stopped_within(Duration::from_secs(5)).await;

    let second = TestServer::start(config(&db.url(), &vars)).await;
    assert!(
        history_rows(&second, &room)
            .await
            .iter()
            .all(|(_, open)| !open),
        "closed by the drain"
    );
    // Somebody else cannot take a place, even with its ids and token.
    let (_eve, _, stolen) = resume(&second, "eve", &bob_data).await;
    assert_eq!(stolen["error"]["code"], "NOT_IN_MEETING", "{stolen}");

    let (_ann2, mut ann2_events, ack) = resume(&second, "ann", &ann_data).await;
    assert_eq!(ack["ok"], true, "{ack}");
    let d = &ack["data"];
    assert_eq!(d["peerId"], ann_data["peerId"], "the same connection");
    // From the history row, which the join wrote a moment after admitting it.
    let at = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let moved = at(&d["self"]["joinedAt"]) - at(&ann_data["self"]["joinedAt"]);
    assert!(
        (0..1000).contains(&moved),
        "joinedAt kept: {moved} ms apart"
    );
    assert_eq!(d["isHost"], true);
    assert_eq!(d["mediaReset"], true, "no media in the new process");
    assert_eq!(d["self"]["audioEnabled"], false, "as the page said");
    assert_eq!(d["participants"], json!([]), "Bob has not resumed yet");

    let (_bob2, _, ack) = resume(&second, "bob", &bob_data).await;
    assert_eq!(ack["ok"], true, "{ack}");
    let others: Vec<&Value> = ack["data"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(others.len(), 1);
    assert_eq!(others[0]["peerId"], ann_data["peerId"]);
    // Ann's page did not find Bob in its ack: it is told he is there (never that he left).
    let mut before = Vec::new();
    let joined_note = next_named_after(&mut ann2_events, "participant-joined", &mut before).await;
    assert_eq!(joined_note["peerId"], bob_data["peerId"]);
    assert!(
        !before.iter().any(|n| n == "participant-left"),
        "{before:?}"
    );
    assert_eq!(
        history_rows(&second, &room).await,
        [
            ("ann".to_owned(), true),
            ("bob".to_owned(), true),
            ("carl".to_owned(), false)
        ],
        "the resumed rows are open again"
    );

    // Carl comes back after the grace period: too late.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (_carl2, _, late) = resume(&second, "carl", &carl_data).await;
    assert_eq!(late["error"]["code"], "NOT_IN_MEETING", "{late}");
    let seen = names(&mut ann2_events);
    assert!(!seen.iter().any(|n| n == "participant-left"), "{seen:?}");
    second.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn a_resume_into_a_restarted_process_respects_the_end_and_the_removal() {
    let db = Db::sqlite();
    let vars = [("RECONNECT_GRACE_SECONDS", "20")];
    let first = TestServer::start(config(&db.url(), &vars)).await;
    let room = create(&first, "ann", "drain").await;
    let (ann, _, ann_data) = joined(&first, "ann", &room).await;
    let (bob, _, bob_data) = joined(&first, "bob", &room).await;
    let removed = call(
        &ann,
        "host-remove",
        json!({ "roomId": room, "targetUserId": "bob" }),
    )
    .await;
    assert_eq!(removed["ok"], true, "{removed}");
    first.state.draining.cancel();
    ann.close();
    bob.close();
    first.stopped_within(Duration::from_secs(5)).await;

    let second = TestServer::start(config(&db.url(), &vars)).await;
    let (_bob2, _, refused) = resume(&second, "bob", &bob_data).await;
    assert_ne!(refused["ok"], true, "a removed user stays out: {refused}");
    let token = second.token("ann");
    let (status, _) = second
        .post(
            &format!("/api/meetings/{room}/end"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (_ann2, _, ended) = resume(&second, "ann", &ann_data).await;
    assert_eq!(ended["error"]["code"], "MEETING_ENDED", "{ended}");
    second.stop().await;
    db.cleanup().await;
}

fn cluster_vars(redis: &str, prefix: &str) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_URL", redis.to_owned()),
        ("REDIS_KEY_PREFIX", prefix.to_owned()),
        ("RECONNECT_GRACE_SECONDS", "20".to_owned()),
        ("DRAIN_TIMEOUT_SECONDS", "10".to_owned()),
    ]
}

#[tokio::test]
#[ignore = "needs Redis and PostgreSQL"]
async fn a_draining_cluster_node_hands_its_participants_to_another_node() {
    let db = Db::postgres().await;
    let prefix = format!(
        "ms-drain-{}-{}:",
        std::process::id(),
        common::random_suffix()
    );
    let redis = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let owned = cluster_vars(&redis, &prefix);
    let vars: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = TestServer::start_in_cluster(config(&db.url(), &vars)).await;
    let b = TestServer::start_in_cluster(config(&db.url(), &vars)).await;
    let room = create(&a, "ann", "drain").await;
    let (ann, mut ann_events, ann_data) = joined(&a, "ann", &room).await;
    let (bob, mut bob_events, bob_data) = joined(&a, "bob", &room).await;
    // Carol's socket is on the node that stays.
    let (_carol, mut carol_events, _) = joined(&b, "carol", &room).await;

    a.state.draining.cancel();
    for events in [&mut ann_events, &mut bob_events] {
        let note = next_named(events, "server-draining").await;
        assert_eq!(note["signaling"], true, "{note}");
    }
    let (status, _) = b.get("/health/ready", None).await;
    assert_eq!(status, 200, "the other node stays ready");
    ann.close();
    bob.close();
    let (_ann2, _, ack) = resume(&b, "ann", &ann_data).await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["data"]["mediaReset"], false, "the registry kept it");
    let (_bob2, _, ack) = resume(&b, "bob", &bob_data).await;
    assert_eq!(ack["ok"], true, "{ack}");

    // Node A carries nobody any more: it stops well before its timeout.
    let took = a.stopped_within(Duration::from_secs(8)).await;
    assert!(
        took < Duration::from_secs(5),
        "node A stopped after {took:?}"
    );
    let seen = names(&mut carol_events);
    assert!(
        !seen
            .iter()
            .any(|n| n == "participant-left" || n == "participant-joined"),
        "nobody left or joined for the others: {seen:?}"
    );
    assert_eq!(
        history_rows(&b, &room).await,
        [
            ("ann".to_owned(), true),
            ("bob".to_owned(), true),
            ("carol".to_owned(), true)
        ],
        "the history carries the moved connections over"
    );
    b.stop().await;
    db.cleanup().await;
}

#[tokio::test]
#[ignore = "needs Redis"]
async fn a_draining_node_gives_its_media_leases_up_at_once() {
    let prefix = format!(
        "ms-lease-{}-{}:",
        std::process::id(),
        common::random_suffix()
    );
    let redis = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let connect = || meeting_service::cluster::Cluster::connect(&redis, &prefix);
    let (a, b) = (connect().await.unwrap(), connect().await.unwrap());
    let (pa, pb) = (Placement::new(a.clone(), true), Placement::new(b, true));
    let room = RoomId::new("LEASE-TEST");
    assert_eq!(pa.owner(&room).await.unwrap(), Owner::Here);
    assert!(
        matches!(pb.owner(&room).await.unwrap(), Owner::Node(_)),
        "A holds it"
    );
    let started = std::time::Instant::now();
    assert_eq!(
        pa.stop_hosting().await.unwrap(),
        std::slice::from_ref(&room)
    );
    assert_eq!(
        pb.owner(&room).await.unwrap(),
        Owner::Here,
        "B takes the meeting's media at once"
    );
    assert!(started.elapsed() < ROOM_LEASE / 10);
    // A claims nothing while it drains, and the lease it gave up stays B's.
    assert!(matches!(
        pa.owner(&RoomId::new("ANOTHER")).await,
        Err(meeting_service::cluster::placement::PlacementError::NoHost)
    ));
    assert!(pa.hosted().is_empty());
    wait_for("B still holds it", Duration::from_secs(2), || async {
        matches!(pb.current(&room).await, Ok(Some(Owner::Here))).then_some(())
    })
    .await;
    common::drop_redis_keys(&a).await;
}
