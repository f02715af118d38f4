//! Grants and roles over Socket.IO, directly (not through the page): a viewer's
//! publishing offers (SFU and mesh) and its unmuting are refused, a token without
//! `canChat` cannot chat, a token scoped to one meeting cannot join another; the host
//! makes a co-host, who then uses the host controls but not the host's own. Each
//! refusal is `FORBIDDEN` with the grant's name in `error.grant`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Db, TestServer, config};
use meeting_load::sio::{ServerEvent, SioClient};
use meeting_service::access::{Grants, Meetings};
use proto::Role;
use proto::events::ParticipantRoleChanged;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(20);

/// A server whose meetings may use the SFU (its engine is not started here: the grant
/// checks come before the engine).
async fn start(db: &Db) -> TestServer {
    TestServer::start(config(&db.url(), &[("SFU_MODE_ENABLED", "true")])).await
}

/// A browser-like offer sending a microphone and a camera.
const SENDING: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
    m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\na=rtpmap:96 VP8/90000\r\n";

async fn create(server: &TestServer, token: &str, topology: &str) -> String {
    let (status, body) = server
        .post(
            "/api/meetings/create",
            Some(token),
            json!({ "title": "Access", "topology": topology }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["meeting"]["roomId"].as_str().unwrap().to_owned()
}

fn token(server: &TestServer, user: &str, grants: Grants) -> String {
    server
        .state
        .jwt
        .mint_with(user, user, None, Duration::from_secs(3600), grants)
        .unwrap()
}

async fn connect(server: &TestServer, token: &str) -> (SioClient, UnboundedReceiver<ServerEvent>) {
    SioClient::connect(&server.url(""), token, WAIT)
        .await
        .expect("Socket.IO connect")
}

/// The raw acknowledgement of `name`.
async fn call(client: &SioClient, name: &str, data: Value) -> Value {
    client.request(name, &data, WAIT).await.expect(name)
}

/// The `FORBIDDEN` refusal's grant, asserting the code.
fn forbidden(ack: &Value) -> &str {
    assert_eq!(ack["ok"], false, "{ack}");
    assert_eq!(ack["error"]["code"], "FORBIDDEN", "{ack}");
    ack["error"]["grant"].as_str().unwrap_or("")
}

async fn join(client: &SioClient, room: &str) -> Value {
    let ack = call(client, "join-meeting", json!({ "roomId": room })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    ack
}

#[tokio::test]
async fn grants_are_enforced_on_every_event() {
    let db = Db::sqlite();
    let server = start(&db).await;
    let host = server.token("host");
    let room = create(&server, &host, "sfu").await;
    let mesh = create(&server, &host, "mesh").await;
    let other = create(&server, &host, "sfu").await;

    // A viewer: admitted as one, its publishing offer and unmuting refused; an offer
    // that only receives passes the grant check (and reaches the engine, off here).
    let viewer = token(
        &server,
        "vera",
        Grants::for_role(Role::Viewer, Meetings::All),
    );
    let (v, _v_events) = connect(&server, &viewer).await;
    let joined = join(&v, &room).await;
    assert_eq!(joined["data"]["self"]["role"], "viewer", "{joined}");
    let offer =
        json!({ "roomId": room, "sdp": SENDING, "sources": { "0": "microphone", "1": "camera" } });
    assert_eq!(
        forbidden(&call(&v, "sfu-offer", offer).await),
        "canPublishAudio"
    );
    let video_only = SENDING.replace("a=mid:0\r\na=sendrecv", "a=mid:0\r\na=recvonly");
    let offer = json!({ "roomId": room, "sdp": video_only });
    assert_eq!(
        forbidden(&call(&v, "sfu-offer", offer).await),
        "canPublishVideo"
    );
    let receiving = video_only.replace("a=mid:1\r\na=sendrecv", "a=mid:1\r\na=recvonly");
    let ack = call(&v, "sfu-offer", json!({ "roomId": room, "sdp": receiving })).await;
    assert!(
        ack["error"]["grant"].is_null(),
        "a receive-only offer is granted: {ack}"
    );
    for (event, grant) in [
        ("toggle-audio", "canPublishAudio"),
        ("toggle-video", "canPublishVideo"),
    ] {
        let ack = call(&v, event, json!({ "roomId": room, "isEnabled": true })).await;
        assert_eq!(forbidden(&ack), grant, "{event}");
        let ack = call(&v, event, json!({ "roomId": room, "isEnabled": false })).await;
        assert_eq!(ack["ok"], true, "turning off needs nothing: {ack}");
    }
    let ack = call(
        &v,
        "toggle-screen-share",
        json!({ "roomId": room, "isSharing": true }),
    )
    .await;
    assert_eq!(forbidden(&ack), "canPublishScreen");
    let ack = call(&v, "host-lock", json!({ "roomId": room, "locked": true })).await;
    assert_eq!(forbidden(&ack), "coHost");

    // In a mesh meeting the SDP it would relay is checked the same way.
    let (h, _h_events) = connect(&server, &host).await;
    join(&h, &mesh).await;
    join(&v, &mesh).await;
    let relay = json!({ "roomId": mesh, "targetUserId": "host", "offer": { "type": "offer", "sdp": SENDING } });
    assert_eq!(
        forbidden(&call(&v, "webrtc-offer", relay).await),
        "canPublishAudio"
    );
    let relay = json!({ "roomId": mesh, "targetUserId": "host", "offer": { "type": "offer", "sdp": receiving } });
    let ack = call(&v, "webrtc-offer", relay).await;
    assert_eq!(
        ack["ok"], true,
        "a receive-only mesh offer is relayed: {ack}"
    );

    // No chat.
    let quiet = Grants {
        can_chat: false,
        ..Grants::default()
    };
    let (q, _q_events) = connect(&server, &token(&server, "quinn", quiet)).await;
    join(&q, &room).await;
    let ack = call(
        &q,
        "meeting-chat-message",
        json!({ "roomId": room, "message": "hi" }),
    )
    .await;
    assert_eq!(forbidden(&ack), "canChat");
    let (p, _p_events) = connect(&server, &server.token("pat")).await;
    join(&p, &room).await;
    let ack = call(
        &p,
        "meeting-chat-message",
        json!({ "roomId": room, "message": "hi" }),
    )
    .await;
    assert_eq!(ack["ok"], true, "a token without grants chats: {ack}");

    // One meeting only.
    let scoped = Grants::for_role(
        Role::Participant,
        Meetings::Only(vec![proto::RoomId::new(room.clone())]),
    );
    let (s, _s_events) = connect(&server, &token(&server, "sam", scoped)).await;
    let ack = call(&s, "join-meeting", json!({ "roomId": other })).await;
    assert_eq!(forbidden(&ack), "meetings");
    join(&s, &room).await;

    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn the_host_makes_a_co_host_who_moderates() {
    let db = Db::sqlite();
    let server = start(&db).await;
    let host = server.token("host");
    let room = create(&server, &host, "sfu").await;
    let (h, _h_events) = connect(&server, &host).await;
    join(&h, &room).await;
    let (b, mut b_events) = connect(&server, &server.token("bob")).await;
    join(&b, &room).await;
    let (c, _c_events) = connect(&server, &server.token("carol")).await;
    join(&c, &room).await;

    let promote =
        |who: &str, on: bool| json!({ "roomId": room, "targetUserId": who, "coHost": on });
    let ack = call(&c, "host-set-co-host", promote("carol", true)).await;
    assert_eq!(forbidden(&ack), "host");
    let ack = call(
        &b,
        "host-mute",
        json!({ "roomId": room, "targetUserId": "carol", "kind": "audio" }),
    )
    .await;
    assert_eq!(forbidden(&ack), "coHost");

    let ack = call(&h, "host-set-co-host", promote("bob", true)).await;
    assert_eq!(ack["ok"], true, "{ack}");
    let changed: ParticipantRoleChanged = tokio::time::timeout(WAIT, async {
        loop {
            let e = b_events.recv().await.expect("open");
            if let Some(c) = e.decode::<ParticipantRoleChanged>() {
                return c.expect("well-formed");
            }
        }
    })
    .await
    .expect("participant:role-changed in time");
    assert_eq!(
        (changed.user_id.as_str(), changed.role),
        ("bob", Role::CoHost)
    );

    // The co-host's controls.
    let ack = call(
        &b,
        "host-mute",
        json!({ "roomId": room, "targetUserId": "carol", "kind": "audio" }),
    )
    .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let ack = call(&b, "host-lock", json!({ "roomId": room, "locked": true })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    let ack = call(&b, "end-meeting", json!({ "roomId": room })).await;
    assert_eq!(forbidden(&ack), "host");
    let ack = call(&b, "host-set-co-host", promote("carol", true)).await;
    assert_eq!(forbidden(&ack), "host");

    // Demoted: a participant again.
    let ack = call(&h, "host-set-co-host", promote("bob", false)).await;
    assert_eq!(ack["ok"], true, "{ack}");
    let ack = call(&b, "host-lock", json!({ "roomId": room, "locked": false })).await;
    assert_eq!(forbidden(&ack), "coHost");

    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn invite_links_over_rest_sqlite() {
    let db = Db::sqlite();
    invite_links_over_rest(&db).await;
    db.cleanup().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn invite_links_over_rest_postgres() {
    let db = Db::postgres().await;
    invite_links_over_rest(&db).await;
    db.cleanup().await;
}

async fn redeem(server: &TestServer, token: &str, name: &str, room: Option<&str>) -> (u16, Value) {
    server
        .post(
            "/api/invites/redeem",
            None,
            json!({ "token": token, "name": name, "roomId": room }),
        )
        .await
}

/// The host makes, lists and revokes invites; only the host may; a redeemed invite is a
/// sign-in for its meeting and role only; twenty concurrent redemptions of a three-use
/// invite admit exactly three; expired, revoked, wrong-meeting and locked-meeting
/// redemptions are refused with their codes and use nothing; an invite's token is no
/// sign-in.
async fn invite_links_over_rest(db: &Db) {
    let server = start(db).await;
    let host = server.token("host");
    let room = create(&server, &host, "sfu").await;
    let other = create(&server, &host, "sfu").await;
    let invites = format!("/api/meetings/{room}/invites");

    let (status, body) = server
        .post(&invites, Some(&server.token("bob")), json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN")),
        "{body}"
    );
    let (status, body) = server
        .post(&invites, Some(&host), json!({ "role": "host" }))
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("role")),
        "{body}"
    );
    let (status, body) = server
        .post(&invites, Some(&host), json!({ "maxUses": 0 }))
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("maxUses")),
        "{body}"
    );

    let (status, body) = server
        .post(
            &invites,
            Some(&host),
            json!({ "role": "viewer", "maxUses": 3 }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let invite = &body["invite"];
    let token = invite["token"].as_str().unwrap().to_owned();
    assert_eq!(invite["path"], format!("/m/{room}?invite={token}"));
    assert_eq!(
        (invite["role"].as_str(), invite["uses"].as_u64()),
        (Some("viewer"), Some(0))
    );

    // An invite's token is no sign-in.
    let (status, body) = server.get(&invites, Some(&token)).await;
    assert_eq!(status, 401, "{body}");

    // Twenty at once, three uses.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (server_url, token, room) = (
            server.url("/api/invites/redeem"),
            token.clone(),
            room.clone(),
        );
        tasks.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(server_url)
                .json(&json!({ "token": token, "name": format!("Guest {i}"), "roomId": room }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }));
    }
    let mut sign_ins = Vec::new();
    let mut used_up = 0;
    for t in tasks {
        let body = t.await.unwrap();
        match body["error"]["code"].as_str() {
            None => sign_ins.push(body["redeemed"]["token"].as_str().unwrap().to_owned()),
            Some("INVITE_USED_UP") => used_up += 1,
            Some(other) => panic!("unexpected refusal {other}: {body}"),
        }
    }
    assert_eq!((sign_ins.len(), used_up), (3, 17));
    let (_, body) = server.get(&invites, Some(&host)).await;
    assert_eq!(body["invites"][0]["uses"], 3, "{body}");

    // The sign-in: a viewer of this meeting only.
    let claims = server.state.jwt.verify(&sign_ins[0]).unwrap();
    assert!(claims.sub.starts_with("guest_"), "{}", claims.sub);
    assert_eq!(claims.grants.role, Role::Viewer);
    assert!(
        claims
            .grants
            .meetings
            .allows(&proto::RoomId::new(room.clone()))
    );
    assert!(
        !claims
            .grants
            .meetings
            .allows(&proto::RoomId::new(other.clone()))
    );

    // Refusals, each with its code; none uses the invite.
    let (_, body) = server.post(&invites, Some(&host), json!({})).await;
    let fresh = body["invite"]["token"].as_str().unwrap().to_owned();
    let fresh_id = body["invite"]["inviteId"].as_str().unwrap().to_owned();
    let (status, body) = redeem(&server, &fresh, "Wyn", Some(&other)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("INVITE_WRONG_MEETING")),
        "{body}"
    );
    let (status, body) = redeem(&server, "a.b.c", "Fay", Some(&room)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVITE_INVALID")),
        "{body}"
    );
    let (status, body) = redeem(&server, &fresh, "", Some(&room)).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("name")),
        "{body}"
    );
    let (status, _) = server
        .put(
            &format!("/api/meetings/{room}"),
            Some(&host),
            json!({ "settings": { "lockRoom": true } }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = redeem(&server, &fresh, "Lou", Some(&room)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("ROOM_LOCKED")),
        "{body}"
    );
    let (status, _) = server
        .put(
            &format!("/api/meetings/{room}"),
            Some(&host),
            json!({ "settings": { "lockRoom": false } }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = server
        .delete(&format!("{invites}/{fresh_id}"), Some(&host))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["invite"]["revokedAt"].is_string(), "{body}");
    let (status, body) = redeem(&server, &fresh, "Rae", Some(&room)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("INVITE_REVOKED")),
        "{body}"
    );
    let (_, body) = server.get(&invites, Some(&host)).await;
    let listed = body["invites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["inviteId"] == fresh_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        listed["uses"], 0,
        "refused redemptions used nothing: {listed}"
    );

    let (_, body) = server
        .post(&invites, Some(&host), json!({ "expiresIn": 1 }))
        .await;
    let short = body["invite"]["token"].as_str().unwrap().to_owned();
    let until = chrono::DateTime::parse_from_rfc3339(body["invite"]["expiresAt"].as_str().unwrap())
        .unwrap();
    common::wait_for("the invite's expiry", Duration::from_secs(5), || async {
        (chrono::Utc::now() > until).then_some(())
    })
    .await;
    let (status, body) = redeem(&server, &short, "Ed", Some(&room)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("INVITE_EXPIRED")),
        "{body}"
    );

    // A co-host makes invites over Socket.IO (REST knows no live co-host), but not
    // co-host ones.
    let (h, _h_events) = connect(&server, &host).await;
    join(&h, &room).await;
    let (b, _b_events) = connect(&server, &server.token("bob")).await;
    join(&b, &room).await;
    let ack = call(&b, "invite-create", json!({ "roomId": room })).await;
    assert_eq!(forbidden(&ack), "coHost");
    let ack = call(
        &h,
        "host-set-co-host",
        json!({ "roomId": room, "targetUserId": "bob", "coHost": true }),
    )
    .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let ack = call(
        &b,
        "invite-create",
        json!({ "roomId": room, "role": "participant", "maxUses": 2 }),
    )
    .await;
    assert_eq!(ack["data"]["invite"]["maxUses"], 2, "{ack}");
    let ack = call(
        &b,
        "invite-create",
        json!({ "roomId": room, "role": "coHost" }),
    )
    .await;
    assert_eq!(forbidden(&ack), "host");
    let ack = call(&b, "invite-list", json!({ "roomId": room })).await;
    assert!(
        ack["data"]["invites"].as_array().unwrap().len() >= 4,
        "{ack}"
    );
    server.stop().await;
}
