//! The host's changes to a live meeting over REST (`PUT /api/meetings/:roomId`) reach
//! every socket in that meeting as `meeting:updated`, and no socket of another meeting,
//! over real WebSockets (the load tool's Socket.IO client) against a server in this
//! process, on SQLite and (ignored without it) PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Db, TestServer, config};
use meeting_load::sio::{ServerEvent, SioClient};
use proto::RoomId;
use proto::events::MeetingUpdated;
use proto::signaling::JoinMeetingData;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(20);

async fn create(server: &TestServer, token: &str, title: &str) -> String {
    let (status, body) = server
        .post(
            "/api/meetings/create",
            Some(token),
            json!({ "title": title }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["meeting"]["roomId"].as_str().unwrap().to_owned()
}

/// `user` connects and joins `room`; the join's ack data and the socket's events.
async fn join(
    server: &TestServer,
    user: &str,
    room: &str,
) -> (SioClient, UnboundedReceiver<ServerEvent>, JoinMeetingData) {
    let (client, events) = SioClient::connect(&server.url(""), &server.token(user), WAIT)
        .await
        .expect("Socket.IO connect");
    let joined: JoinMeetingData = client
        .call("join-meeting", &json!({ "roomId": room }), WAIT)
        .await
        .expect("join-meeting");
    (client, events, joined)
}

/// The next `meeting:updated` this socket receives (other events are skipped), within
/// `WAIT`.
async fn next_update(events: &mut UnboundedReceiver<ServerEvent>) -> MeetingUpdated {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("the socket stays open");
            if let Some(update) = event.decode::<MeetingUpdated>() {
                return update.expect("a well-formed meeting:updated");
            }
        }
    })
    .await
    .expect("meeting:updated in time")
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn rest_updates_reach_the_meetings_sockets_sqlite() {
    let db = Db::sqlite();
    rest_updates_reach_the_meetings_sockets(&db).await;
    db.cleanup().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn rest_updates_reach_the_meetings_sockets_postgres() {
    let db = Db::postgres().await;
    rest_updates_reach_the_meetings_sockets(&db).await;
    db.cleanup().await;
}

/// Alice (host) and Bob are in one meeting, Carol hosts another. Alice changes her
/// meeting's title, cap and lock over REST: both her socket and Bob's get
/// `meeting:updated` with the meeting as the REST answer shows it, in the shape of the
/// join ack's `meeting`. Carol then changes hers: the first `meeting:updated` her socket
/// gets is her own meeting's, so Alice's never reached it (the server emits the two in
/// the order of the updates, and one socket receives in order).
async fn rest_updates_reach_the_meetings_sockets(db: &Db) {
    let server = TestServer::start(config(&db.url(), &[])).await;
    let alice = server.token("alice");
    let carol = server.token("carol");
    let room = create(&server, &alice, "Retro").await;
    let other = create(&server, &carol, "Elsewhere").await;

    let (_alice_socket, mut alice_events, alice_joined) = join(&server, "alice", &room).await;
    let (_bob_socket, mut bob_events, _) = join(&server, "bob", &room).await;
    let (_carol_socket, mut carol_events, _) = join(&server, "carol", &other).await;
    assert_eq!(alice_joined.meeting["title"], "Retro");

    let (status, body) = server
        .put(
            &format!("/api/meetings/{room}"),
            Some(&alice),
            json!({ "title": "Retro (moved)", "maxParticipants": 8, "settings": { "lockRoom": true } }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let answered = &body["meeting"];

    for (who, events) in [("alice", &mut alice_events), ("bob", &mut bob_events)] {
        let update = next_update(events).await;
        assert_eq!(update.room_id, RoomId::new(room.clone()), "{who}");
        let m = &update.meeting;
        assert_eq!(
            (
                m["title"].as_str(),
                m["maxParticipants"].as_u64(),
                m["settings"]["lockRoom"].as_bool()
            ),
            (Some("Retro (moved)"), Some(8), Some(true)),
            "{who}: {m}"
        );
        assert_eq!(
            m, answered,
            "{who}: the meeting as the REST answer shows it"
        );
        assert_eq!(
            keys(m),
            keys(&alice_joined.meeting),
            "{who}: the fields of the join ack's meeting"
        );
    }

    let (status, body) = server
        .put(
            &format!("/api/meetings/{other}"),
            Some(&carol),
            json!({ "title": "Elsewhere (moved)" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let update = next_update(&mut carol_events).await;
    assert_eq!(
        (update.room_id, update.meeting["title"].as_str()),
        (RoomId::new(other.clone()), Some("Elsewhere (moved)")),
        "another meeting's update reached carol first"
    );
    server.stop().await;
}
