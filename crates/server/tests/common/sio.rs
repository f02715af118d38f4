//! Signaling over real WebSockets with the load tool's Socket.IO client: what the
//! resume and drain tests (and any test that joins and watches events) share.

use std::time::Duration;

use meeting_load::sio::{ServerEvent, SioClient};
use proto::RoomId;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use super::TestServer;

/// Bound on a connection, an acknowledgement or an awaited event.
pub const WAIT: Duration = Duration::from_secs(20);

pub type Events = UnboundedReceiver<ServerEvent>;

/// A socket of `user` (a token the server signs), and the events it receives.
pub async fn connect(server: &TestServer, user: &str) -> (SioClient, Events) {
    let token = server.token(user);
    SioClient::connect(&format!("http://{}", server.addr), &token, WAIT)
        .await
        .expect("Socket.IO connect")
}

/// The raw acknowledgement of `name`.
pub async fn call(client: &SioClient, name: &str, data: Value) -> Value {
    client.request(name, &data, WAIT).await.expect(name)
}

/// `user` joins `room` on `server`: the socket, its events and the join's answer.
pub async fn joined(server: &TestServer, user: &str, room: &str) -> (SioClient, Events, Value) {
    let (client, events) = connect(server, user).await;
    let ack = call(&client, "join-meeting", json!({ "roomId": room })).await;
    assert_eq!(ack["ok"], true, "{user} joins: {ack}");
    (client, events, ack["data"].clone())
}

/// A meeting `host` creates, titled `title`: its room id.
pub async fn create(server: &TestServer, host: &str, title: &str) -> String {
    let token = server.token(host);
    let (status, body) = server
        .post(
            "/api/meetings/create",
            Some(&token),
            json!({ "title": title }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["meeting"]["roomId"].as_str().unwrap().to_owned()
}

/// The next `name` event's first argument.
pub async fn next_named(events: &mut Events, name: &str) -> Value {
    next_named_after(events, name, &mut Vec::new()).await
}

/// The next `name` event, noting the names of those skipped in `skipped`.
pub async fn next_named_after(events: &mut Events, name: &str, skipped: &mut Vec<String>) -> Value {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events.recv().await.expect("the socket stays open");
            if e.name == name {
                return e.args.into_iter().next().unwrap_or(Value::Null);
            }
            skipped.push(e.name);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {name} within {WAIT:?}"))
}

/// The names of the events received so far.
pub fn names(events: &mut Events) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        out.push(e.name);
    }
    out
}

/// The meeting's participant history as (user, still open) rows, by user.
pub async fn history_rows(server: &TestServer, room: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = server
        .state
        .store
        .participant_history(&RoomId::new(room))
        .await
        .unwrap()
        .iter()
        .map(|r| (r.user_id.to_string(), r.left_at.is_none()))
        .collect();
    out.sort();
    out
}
