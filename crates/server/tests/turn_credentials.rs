//! `GET /api/ice-servers` with `TURN_SECRET`: every user gets its own time-limited TURN
//! credentials (TURN REST API form), never the static password nor the secret.
//! (The join acknowledgement uses the same function; tests/browser/turn.test.js checks
//! that a real coturn accepts what the browsers receive there.)
#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer, config};
use meeting_service::ice::hmac_sha1_base64;

const SECRET: &str = "rest-test-shared-secret";

#[tokio::test]
async fn ice_servers_mint_per_user_turn_credentials() {
    let db = Db::sqlite();
    let server = TestServer::start(config(
        &db.url(),
        &[
            ("STUN_SERVER_1", "stun:stun.example.org:3478"),
            ("TURN_SERVER_URL", "turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349?transport=tcp"),
            ("TURN_SECRET", SECRET),
            ("TURN_USERNAME", "static-user"),
            ("TURN_CREDENTIAL", "static-password"),
            ("TURN_CREDENTIAL_TTL", "600"),
        ],
    ))
    .await;

    let mut seen = Vec::new();
    for user in ["alice", "bob"] {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let (status, body) = server
            .get("/api/ice-servers", Some(&server.token(user)))
            .await;
        assert_eq!(status, 200, "{body}");
        let text = body.to_string();
        assert!(
            !text.contains(SECRET)
                && !text.contains("static-password")
                && !text.contains("static-user"),
            "{text}"
        );
        let servers = body["iceServers"].as_array().unwrap();
        assert_eq!(servers.len(), 2, "{body}");
        assert_eq!(servers[0]["urls"][0], "stun:stun.example.org:3478");
        assert!(servers[0].get("username").is_none());
        let turn = &servers[1];
        assert_eq!(turn["urls"].as_array().unwrap().len(), 2);
        let username = turn["username"].as_str().unwrap();
        let (expiry, who) = username.split_once(':').unwrap();
        assert_eq!(who, user);
        let expiry: u64 = expiry.parse().unwrap();
        assert!(
            (before + 600..=before + 602).contains(&expiry),
            "expiry {expiry}, now {before}"
        );
        assert_eq!(
            turn["credential"].as_str().unwrap(),
            hmac_sha1_base64(SECRET, username)
        );
        seen.push(turn["credential"].as_str().unwrap().to_owned());
    }
    assert_ne!(seen[0], seen[1], "two users got the same credential");
    server.stop().await;
    db.cleanup().await;
}
