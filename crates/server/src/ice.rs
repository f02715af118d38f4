//! The STUN/TURN list handed to browsers (REST `/api/ice-servers` and the signaling's join).
//!
//! With `TURN_SECRET` set, every participant gets its own time-limited TURN credentials
//! in the form of the TURN REST API (draft-uberti-behave-turn-rest), which coturn checks
//! with `use-auth-secret` + `static-auth-secret=<the same secret>`:
//!
//! - username: `<expiry as Unix seconds>:<user id>`
//! - credential: base64(HMAC-SHA1(secret, username))
//!
//! The TURN server recomputes the HMAC from the username and refuses it once the expiry
//! has passed, so no long-lived TURN password ever reaches a browser and the secret
//! itself never leaves the servers. Without a secret the static `TURN_USERNAME` /
//! `TURN_CREDENTIAL` of the seed are handed out as they are.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use proto::UserId;
use proto::signaling::IceServer;

use crate::config::{IceConfig, TurnConfig};

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// Time-limited TURN credentials for one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnCredentials {
    pub username: String,
    pub credential: String,
    /// Unix seconds after which the TURN server refuses them.
    pub expires_at: u64,
}

/// Mints TURN REST API credentials for `user`, valid for `ttl` from `now`.
pub fn turn_rest_credentials(
    secret: &str,
    user: &str,
    now: SystemTime,
    ttl: Duration,
) -> TurnCredentials {
    // A clock before 1970 is a broken host; treat it as the epoch rather than panic.
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let expires_at = now_secs.saturating_add(ttl.as_secs());
    let username = format!("{expires_at}:{user}");
    TurnCredentials {
        credential: hmac_sha1_base64(secret, &username),
        username,
        expires_at,
    }
}

/// base64(HMAC-SHA1(key, message)), the credential coturn expects for `use-auth-secret`.
pub fn hmac_sha1_base64(key: &str, message: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail; keep the fallback total anyway.
    let mut mac = match <HmacSha1 as KeyInit>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// STUN servers first (one entry each), then the TURN URLs as one entry with their
/// credentials: minted for `user` when `TURN_SECRET` is set, the static ones otherwise.
pub fn ice_servers(ice: &IceConfig, user: &UserId, now: SystemTime) -> Vec<IceServer> {
    let mut out: Vec<IceServer> = ice
        .stun_servers
        .iter()
        .map(|u| IceServer {
            urls: vec![u.clone()],
            username: None,
            credential: None,
        })
        .collect();
    if let Some(turn) = &ice.turn {
        out.push(turn_entry(turn, user, now));
    }
    out
}

fn turn_entry(turn: &TurnConfig, user: &UserId, now: SystemTime) -> IceServer {
    match &turn.secret {
        Some(secret) => {
            let c = turn_rest_credentials(secret, user.as_str(), now, turn.credential_ttl);
            IceServer {
                urls: turn.urls.clone(),
                username: Some(c.username),
                credential: Some(c.credential),
            }
        }
        None => IceServer {
            urls: turn.urls.clone(),
            username: turn.username.clone(),
            credential: turn.credential.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        Config::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .expect("valid configuration")
    }

    // Expected values computed independently:
    //   echo -n '1700003600:alice' | openssl dgst -sha1 -hmac coturn-shared-secret -binary | base64
    //   python3 -c "import hmac,hashlib,base64; print(base64.b64encode(hmac.new(b's3cr3t', b'86400:guest_abc', hashlib.sha1).digest()).decode())"
    #[test]
    fn hmac_matches_known_vectors() {
        assert_eq!(
            hmac_sha1_base64("coturn-shared-secret", "1700003600:alice"),
            "igdZ8kesMome7M9yvKcGWZZbLTc="
        );
        assert_eq!(
            hmac_sha1_base64("s3cr3t", "86400:guest_abc"),
            "7mEzH2WfZ6NQW2XeTupj/LAwIpw="
        );
    }

    #[test]
    fn rest_credentials_carry_expiry_and_user() {
        let c = turn_rest_credentials(
            "coturn-shared-secret",
            "alice",
            at(1_700_000_000),
            Duration::from_secs(3600),
        );
        assert_eq!(c.username, "1700003600:alice");
        assert_eq!(c.credential, "igdZ8kesMome7M9yvKcGWZZbLTc=");
        assert_eq!(c.expires_at, 1_700_003_600);
    }

    #[test]
    fn secret_mints_per_user_credentials_with_the_configured_ttl() {
        let c = cfg(&[
            ("STUN_SERVER_1", "stun:stun.example.com:3478"),
            (
                "TURN_SERVER_URL",
                "turn:127.0.0.1:3478?transport=udp,turn:127.0.0.1:3478?transport=tcp",
            ),
            ("TURN_SECRET", "s3cr3t"),
            ("TURN_USERNAME", "static-user"),
            ("TURN_CREDENTIAL", "static-password"),
            ("TURN_CREDENTIAL_TTL", "600"),
        ]);
        let alice = ice_servers(&c.ice, &UserId::new("alice"), at(1_000));
        assert_eq!(alice.len(), 2);
        assert_eq!(alice[0].urls, ["stun:stun.example.com:3478"]);
        assert!(alice[0].username.is_none() && alice[0].credential.is_none());
        let turn = &alice[1];
        assert_eq!(
            turn.urls,
            [
                "turn:127.0.0.1:3478?transport=udp",
                "turn:127.0.0.1:3478?transport=tcp"
            ]
        );
        assert_eq!(turn.username.as_deref(), Some("1600:alice"));
        assert_eq!(
            turn.credential.as_deref(),
            Some(hmac_sha1_base64("s3cr3t", "1600:alice").as_str())
        );
        // The static password never goes out when a secret is configured.
        assert_ne!(turn.credential.as_deref(), Some("static-password"));

        let bob = ice_servers(&c.ice, &UserId::new("bob"), at(1_000));
        assert_eq!(bob[1].username.as_deref(), Some("1600:bob"));
        assert_ne!(bob[1].credential, turn.credential);
    }

    #[test]
    fn default_ttl_is_one_day() {
        let c = cfg(&[
            ("TURN_SERVER_URL", "turns:turn.example.com:5349"),
            ("TURN_SECRET", "s3cr3t"),
        ]);
        let servers = ice_servers(&c.ice, &UserId::new("u1"), at(0));
        assert_eq!(servers[0].username.as_deref(), Some("86400:u1"));
    }

    #[test]
    fn static_credentials_without_a_secret() {
        let c = cfg(&[
            ("TURN_SERVER_URL", "turns:turn.example.com:5349"),
            ("TURN_USERNAME", "u"),
            ("TURN_CREDENTIAL", "p"),
        ]);
        let servers = ice_servers(&c.ice, &UserId::new("alice"), at(0));
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].username.as_deref(), Some("u"));
        assert_eq!(servers[0].credential.as_deref(), Some("p"));
    }

    #[test]
    fn no_turn_no_entry() {
        let c = cfg(&[]);
        assert!(ice_servers(&c.ice, &UserId::new("alice"), SystemTime::now()).is_empty());
    }
}
