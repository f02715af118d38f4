//! Issue #12: the signaling under abrupt clients, over real WebSockets (the load tool's
//! Socket.IO client) against a server in this process, on SQLite and (ignored without
//! it) PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Db, TestServer, config, wait_for};
use meeting_load::sio::{ServerEvent, SioClient};
use proto::RoomId;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(20);
/// Bound on one acknowledgement; generous, because a socket's joins run one after the
/// other and the flood below queues a hundred of them on a machine shared with builds.
const ACK: Duration = Duration::from_secs(60);

async fn start(db: &Db) -> TestServer {
    // Mesh meetings (no engine in tests) up to 16, so that a meeting's own
    // `maxParticipants` is the cap under test. The join rate limits are off: these
    // floods check ordering and history, which must hold in a deployment that turns
    // the limits off too (tests/limits.rs covers the limits).
    TestServer::start(config(
        &db.url(),
        &[
            ("MESH_MAX_PARTICIPANTS", "16"),
            ("RATE_LIMIT_SOCKET_JOIN", "off"),
            ("RATE_LIMIT_USER_JOIN", "off"),
        ],
    ))
    .await
}

async fn create(server: &TestServer, token: &str, body: Value) -> String {
    let (status, body) = server.post("/api/meetings/create", Some(token), body).await;
    assert_eq!(status, 201, "{body}");
    body["meeting"]["roomId"].as_str().unwrap().to_owned()
}

async fn connect(server: &TestServer, token: &str) -> (SioClient, UnboundedReceiver<ServerEvent>) {
    SioClient::connect(&format!("http://{}", server.addr), token, WAIT)
        .await
        .expect("Socket.IO connect")
}

/// The raw acknowledgement of `name`.
async fn call(client: &SioClient, name: &str, data: Value) -> Value {
    client.request(name, &data, ACK).await.expect(name)
}

fn code(ack: &Value) -> &str {
    ack["error"]["code"].as_str().unwrap_or("")
}

/// Rows of the meeting's history without a leave time.
async fn open_rows(server: &TestServer, room: &str) -> usize {
    server
        .state
        .store
        .participant_history(&RoomId::new(room))
        .await
        .unwrap()
        .iter()
        .filter(|r| r.left_at.is_none())
        .count()
}

/// Join `room` as the host, retrying while ghosts (if any) still hold the seats, up to
/// `WAIT`: the meeting must have a free seat once every ghost's socket is gone.
async fn host_joins(host: &SioClient, room: &str) {
    wait_for("a seat for the host", WAIT, || async {
        let ack = call(host, "join-meeting", json!({ "roomId": room })).await;
        assert!(
            ack["ok"] == true || code(&ack) == "ROOM_FULL",
            "the host's join: {ack}"
        );
        (ack["ok"] == true).then_some(())
    })
    .await;
}

// ---- item 1: a socket that disconnects during its join leaves no ghost ----

#[tokio::test]
async fn disconnect_during_join_leaves_no_ghost_sqlite() {
    let db = Db::sqlite();
    disconnect_during_join_leaves_no_ghost(&db).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn disconnect_during_join_leaves_no_ghost_postgres() {
    let db = Db::postgres().await;
    disconnect_during_join_leaves_no_ghost(&db).await;
}

/// 50 sockets each authenticate, send `join-meeting` and close at once, on a meeting of
/// ten seats. Afterwards the host still gets a seat, REST lists nobody but the host, and
/// the idle clock starts once the host leaves.
async fn disconnect_during_join_leaves_no_ghost(db: &Db) {
    let server = start(db).await;
    let alice = server.token("alice");
    let room = create(
        &server,
        &alice,
        json!({ "title": "ghosts", "maxParticipants": 10 }),
    )
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let token = server.token(&format!("ghost{i}"));
        let url = format!("http://{}", server.addr);
        let room = room.clone();
        tasks.spawn(async move {
            let (client, _events) = SioClient::connect(&url, &token, WAIT).await.unwrap();
            client
                .emit("join-meeting", &json!({ "roomId": room }))
                .unwrap();
            client.close();
        });
    }
    tasks.join_all().await;

    let (host, _events) = connect(&server, &alice).await;
    host_joins(&host, &room).await;
    // No ghost row stays (each was closed or never written), only the host's.
    wait_for("only the host listed", WAIT, || async {
        let (_, body) = server
            .get(&format!("/api/meetings/{room}/participants"), Some(&alice))
            .await;
        let ids: Vec<String> = body["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["userId"].as_str().unwrap().to_owned())
            .collect();
        (ids == ["alice"]).then_some(())
    })
    .await;
    let ack = call(&host, "leave-meeting", json!({ "roomId": room })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    wait_for("emptySince set", WAIT, || async {
        let (_, body) = server
            .get(&format!("/api/meetings/{room}"), Some(&alice))
            .await;
        body["meeting"]["emptySince"].as_str().map(|_| ())
    })
    .await;
    assert_eq!(open_rows(&server, &room).await, 0);
    let peak = server
        .state
        .store
        .get_meeting(&RoomId::new(&room))
        .await
        .unwrap()
        .unwrap()
        .peak_participants;
    assert!(peak <= 10, "peak {peak} above the cap of 10");
    host.close();
    server.stop().await;
}

// ---- item 2: history rows and the peak ----

#[tokio::test]
async fn concurrent_joins_of_one_user_close_every_row_sqlite() {
    let db = Db::sqlite();
    concurrent_joins_of_one_user_close_every_row(&db).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn concurrent_joins_of_one_user_close_every_row_postgres() {
    let db = Db::postgres().await;
    concurrent_joins_of_one_user_close_every_row(&db).await;
}

/// 40 sockets of one user join one meeting (cap 5) at once; each join replaces the one
/// before; then one socket sends 100 more. After all close: no open row, and a peak of
/// one (one user holds one seat).
async fn concurrent_joins_of_one_user_close_every_row(db: &Db) {
    let server = start(db).await;
    let alice = server.token("alice");
    let room = create(
        &server,
        &alice,
        json!({ "title": "one user", "maxParticipants": 5 }),
    )
    .await;
    let bob = server.token("bob");
    let mut clients = Vec::new();
    for _ in 0..40 {
        clients.push(connect(&server, &bob).await);
    }
    let acks = futures_util::future::join_all(
        clients
            .iter()
            .map(|(c, _)| call(c, "join-meeting", json!({ "roomId": room }))),
    )
    .await;
    let ok = acks.iter().filter(|a| a["ok"] == true).count();
    assert!(ok >= 1, "at least one join succeeds: {acks:?}");
    // A second flood from one socket, without waiting for the acks, then close it.
    let (flooder, _events) = connect(&server, &bob).await;
    for _ in 0..100 {
        flooder
            .emit("join-meeting", &json!({ "roomId": room }))
            .unwrap();
    }
    let last = call(&flooder, "join-meeting", json!({ "roomId": room })).await;
    assert_eq!(last["ok"], true, "{last}");
    flooder.close();
    for (c, _) in &clients {
        c.close();
    }
    wait_for("every history row closed", WAIT, || async {
        (open_rows(&server, &room).await == 0).then_some(())
    })
    .await;
    let history = server
        .state
        .store
        .participant_history(&RoomId::new(&room))
        .await
        .unwrap();
    assert!(history.len() >= ok, "{} rows for {ok} joins", history.len());
    let m = server
        .state
        .store
        .get_meeting(&RoomId::new(&room))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.peak_participants, 1, "one user holds one seat");
    assert!(m.empty_since.is_some(), "the idle clock runs: {m:?}");
    server.stop().await;
}

#[tokio::test]
async fn joins_racing_the_end_leave_no_open_row_sqlite() {
    let db = Db::sqlite();
    joins_racing_the_end_leave_no_open_row(&db).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn joins_racing_the_end_leave_no_open_row_postgres() {
    let db = Db::postgres().await;
    joins_racing_the_end_leave_no_open_row(&db).await;
}

/// Ten meetings; in each, eight users join while the host ends it. Every join either
/// happened before the end (and the end closed its row) or is refused; no row stays
/// open, even after the sockets close, and nobody is left in the ended meeting.
async fn joins_racing_the_end_leave_no_open_row(db: &Db) {
    let server = start(db).await;
    let alice = server.token("alice");
    let (host, _events) = connect(&server, &alice).await;
    let mut guests = Vec::new();
    for i in 0..8 {
        guests.push(connect(&server, &server.token(&format!("guest{i}"))).await);
    }
    for round in 0..10 {
        let room = create(&server, &alice, json!({ "title": format!("end {round}") })).await;
        let ack = call(&host, "join-meeting", json!({ "roomId": room })).await;
        assert_eq!(ack["ok"], true, "{ack}");
        let joins = futures_util::future::join_all(
            guests
                .iter()
                .map(|(c, _)| call(c, "join-meeting", json!({ "roomId": room }))),
        );
        let end = call(&host, "end-meeting", json!({ "roomId": room }));
        let (joins, end) = tokio::join!(joins, end);
        assert_eq!(end["ok"], true, "{end}");
        for ack in &joins {
            assert!(
                ack["ok"] == true || code(ack) == "MEETING_ENDED",
                "a join racing the end: {ack}"
            );
        }
        assert_eq!(
            open_rows(&server, &room).await,
            0,
            "round {round}: open rows after the end"
        );
        // Whoever got in before the end is out: a request about the meeting is refused.
        for (c, _) in &guests {
            let ack = call(
                c,
                "meeting-chat-message",
                json!({ "roomId": room, "message": "still here?" }),
            )
            .await;
            assert_eq!(code(&ack), "NOT_IN_MEETING", "{ack}");
        }
    }
    for (c, _) in &guests {
        c.close();
    }
    host.close();
    server.stop().await;
}

// ---- item 5: removal holds, token expiry, unknown events, relay fields ----

#[tokio::test]
async fn a_removal_holds_until_the_host_allows_sqlite() {
    let db = Db::sqlite();
    a_removal_holds_until_the_host_allows(&db).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn a_removal_holds_until_the_host_allows_postgres() {
    let db = Db::postgres().await;
    a_removal_holds_until_the_host_allows(&db).await;
}

async fn a_removal_holds_until_the_host_allows(db: &Db) {
    let server = start(db).await;
    let alice = server.token("alice");
    let bob = server.token("bob");
    let room = create(&server, &alice, json!({ "title": "removal" })).await;
    let (host, _h) = connect(&server, &alice).await;
    let (guest, mut guest_events) = connect(&server, &bob).await;
    assert_eq!(
        call(&host, "join-meeting", json!({ "roomId": room })).await["ok"],
        true
    );
    assert_eq!(
        call(&guest, "join-meeting", json!({ "roomId": room })).await["ok"],
        true
    );
    let ack = call(
        &host,
        "host-remove",
        json!({ "roomId": room, "targetUserId": "bob" }),
    )
    .await;
    assert_eq!(ack["ok"], true, "{ack}");
    next_event(&mut guest_events, "control:removed").await;
    // At once, on the same socket and on a new one: refused.
    let again = call(&guest, "join-meeting", json!({ "roomId": room })).await;
    assert_eq!(code(&again), "REMOVED", "{again}");
    let (other, _o) = connect(&server, &bob).await;
    let again = call(&other, "join-meeting", json!({ "roomId": room })).await;
    assert_eq!(code(&again), "REMOVED", "{again}");
    // Only the host may let them back.
    let ack = call(
        &guest,
        "host-allow",
        json!({ "roomId": room, "targetUserId": "bob" }),
    )
    .await;
    assert_eq!(code(&ack), "NOT_IN_MEETING", "{ack}");
    let ack = call(
        &host,
        "host-allow",
        json!({ "roomId": room, "targetUserId": "bob" }),
    )
    .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let back = call(&guest, "join-meeting", json!({ "roomId": room })).await;
    assert_eq!(back["ok"], true, "{back}");
    for c in [&host, &guest, &other] {
        c.close();
    }
    server.stop().await;
}

/// The next event called `name` (others are skipped), within `WAIT`.
async fn next_event(events: &mut UnboundedReceiver<ServerEvent>, name: &str) -> Vec<Value> {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(ev) = events.recv().await {
            if ev.name == name {
                return Some(ev.args);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(args)) => args,
        Ok(None) => panic!("the connection closed before `{name}`"),
        Err(_) => panic!("no `{name}` within {WAIT:?}"),
    }
}

#[tokio::test]
async fn a_socket_ends_when_its_token_expires() {
    let db = Db::sqlite();
    let server = start(&db).await;
    let alice = server.token("alice");
    let room = create(&server, &alice, json!({ "title": "expiry" })).await;
    // Expired 28 s ago: still inside the 30 s leeway a connect gets, so the socket is
    // accepted and has about two seconds left.
    let now = meeting_service::auth::now_secs();
    let short = server
        .state
        .jwt
        .sign(&meeting_service::auth::Claims {
            sub: "bob".into(),
            name: "Bob".into(),
            picture: None,
            exp: now - 28,
            iat: now - 60,
            grants: Default::default(),
        })
        .unwrap();
    let (bob, mut events) = connect(&server, &short).await;
    let ack = call(&bob, "join-meeting", json!({ "roomId": room })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    let args = next_event(&mut events, "session:expired").await;
    assert_eq!(args[0]["error"]["code"], "TOKEN_EXPIRED", "{args:?}");
    // Disconnected: no more requests are answered, and the seat is free again.
    let chat = bob
        .request(
            "meeting-chat-message",
            &json!({ "roomId": room, "message": "late" }),
            Duration::from_secs(2),
        )
        .await;
    assert!(
        chat.is_err(),
        "a request after expiry was answered: {chat:?}"
    );
    wait_for("bob's row closed", WAIT, || async {
        (open_rows(&server, &room).await == 0).then_some(())
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_events_are_answered() {
    let db = Db::sqlite();
    let server = start(&db).await;
    let (c, _e) = connect(&server, &server.token("alice")).await;
    let ack = call(&c, "no-such-event", json!({ "x": 1 })).await;
    assert_eq!(code(&ack), "BAD_REQUEST", "{ack}");
    assert!(
        ack["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-event"),
        "{ack}"
    );
    c.close();
    server.stop().await;
}

#[tokio::test]
async fn the_mesh_relay_forwards_only_documented_fields() {
    let db = Db::sqlite();
    let server = start(&db).await;
    let alice = server.token("alice");
    let room = create(
        &server,
        &alice,
        json!({ "title": "relay", "topology": "mesh" }),
    )
    .await;
    let (ann, _a) = connect(&server, &alice).await;
    let (ben, mut ben_events) = connect(&server, &server.token("ben")).await;
    let a = call(&ann, "join-meeting", json!({ "roomId": room })).await;
    assert_eq!(a["ok"], true, "{a}");
    assert_eq!(
        call(&ben, "join-meeting", json!({ "roomId": room })).await["ok"],
        true
    );
    let offer = json!({ "type": "offer", "sdp": "v=0\r\n" });
    let ack = call(
        &ann,
        "webrtc-offer",
        json!({
            "roomId": room, "targetUserId": "ben", "offer": offer,
            "__proto__": { "isAdmin": true }, "extra": "x",
            "candidate": { "candidate": "not for an offer" }
        }),
    )
    .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let args = next_event(&mut ben_events, "webrtc-offer").await;
    assert_eq!(
        args[0],
        json!({ "fromUserId": "alice", "fromPeerId": a["data"]["peerId"], "offer": offer }),
    );
    let ack = call(
        &ann,
        "ice-candidate",
        json!({
            "roomId": room, "targetUserId": "ben",
            "candidate": { "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
                           "sdpMid": "0", "sdpMLineIndex": 0, "__proto__": { "x": 1 } }
        }),
    )
    .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let args = next_event(&mut ben_events, "ice-candidate").await;
    assert_eq!(
        args[0]["candidate"],
        json!({ "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0 }),
    );
    ann.close();
    ben.close();
    server.stop().await;
}

/// `tile-views`: a report is validated before anything else (count, sizes, source), with
/// a clear error; a valid one in a meeting whose media is not in the SFU (a mesh here)
/// is acknowledged as not applied.
#[tokio::test]
async fn tile_views_are_validated() {
    let db = Db::sqlite();
    let server = start(&db).await;
    let token = server.token("alice");
    let room = create(&server, &token, json!({ "title": "tiles" })).await;
    let (c, _e) = connect(&server, &token).await;
    host_joins(&c, &room).await;
    let tile = |w: u64, h: u64| json!({ "peerId": "p_x", "source": "camera", "visible": true, "width": w, "height": h });

    let ack = call(
        &c,
        "tile-views",
        json!({ "roomId": room, "views": [tile(320, 180)] }),
    )
    .await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["data"]["applied"], false, "{ack}");

    let ack = call(
        &c,
        "tile-views",
        json!({ "roomId": room, "views": [tile(320, 99_999)] }),
    )
    .await;
    assert_eq!(code(&ack), "BAD_REQUEST", "{ack}");
    assert!(
        ack["error"]["message"].as_str().unwrap().contains("16384"),
        "{ack}"
    );

    let many: Vec<Value> = (0..257).map(|_| tile(1, 1)).collect();
    let ack = call(&c, "tile-views", json!({ "roomId": room, "views": many })).await;
    assert_eq!(code(&ack), "BAD_REQUEST", "{ack}");
    assert!(
        ack["error"]["message"].as_str().unwrap().contains("256"),
        "{ack}"
    );

    for bad in [
        json!({ "roomId": room, "views": [{ "peerId": "p_x", "source": "microphone", "visible": true, "width": 1, "height": 1 }] }),
        json!({ "roomId": room, "views": [tile(1, 1), { "peerId": "p_y" }] }),
        json!({ "roomId": room, "views": "all" }),
    ] {
        let ack = call(&c, "tile-views", bad.clone()).await;
        assert_eq!(code(&ack), "BAD_REQUEST", "{bad} → {ack}");
    }
    c.close();
    server.stop().await;
}
