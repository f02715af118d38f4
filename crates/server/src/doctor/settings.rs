//! Checks of the variables themselves: names that have no effect (typos, leftovers,
//! TURN credentials without a server) and the token secret.

use super::Check;
use crate::config::{Config, DEV_JWT_SECRET};

/// Prefixes of this service's variables: a variable with one of them that the service
/// does not read is most likely a typo (`MEDIASOUP_ANOUNCED_IP`) or a leftover.
const OUR_PREFIXES: &[&str] = &[
    "MEDIASOUP_",
    "TURN_",
    "STUN_",
    "REDIS_",
    "JWT_",
    "MEETING_",
    "SFU_",
    "MAX_PARTICIPANTS",
    "MESH_",
    "DATABASE_",
    "CORS_",
];

/// Variables that have no effect: unknown names with our prefixes (typos), and TURN
/// credentials without `TURN_SERVER_URL` (no TURN server is handed to browsers then).
pub fn variables(config: &Config, env: impl IntoIterator<Item = (String, String)>) -> Check {
    const NAME: &str = "variables";
    let mut unknown = Vec::new();
    let mut orphan = Vec::new();
    for (name, value) in env {
        if value.trim().is_empty() {
            continue;
        }
        if OUR_PREFIXES.iter().any(|p| name.starts_with(p))
            && !crate::config::is_known_var(&name)
            && !name.starts_with("MONGO")
        {
            unknown.push(name.clone());
        }
        if config.ice.turn.is_none()
            && [
                "TURN_SECRET",
                "TURN_USERNAME",
                "TURN_CREDENTIAL",
                "TURN_CREDENTIAL_TTL",
            ]
            .contains(&name.as_str())
        {
            orphan.push(name);
        }
    }
    unknown.sort();
    orphan.sort();
    if !orphan.is_empty() {
        return Check::fail(
            NAME,
            format!(
                "{} set but TURN_SERVER_URL is not: browsers get no TURN server",
                orphan.join(", ")
            ),
            "Set TURN_SERVER_URL (e.g. turn:turn.example.com:3478?transport=udp,turns:turn.example.com:5349?transport=tcp), or remove the TURN variables.",
        );
    }
    if !unknown.is_empty() {
        return Check::warn(
            NAME,
            format!("not read by this service (a typo?): {}", unknown.join(", ")),
            "Compare with docs/configuration.md; misspelled variables are ignored, so their defaults apply.",
        );
    }
    Check::pass(NAME, "every meeting-service variable set is known")
}

/// Values copied from examples and templates (the seed's own `your-secret-key` first).
const PLACEHOLDER_SECRETS: &[&str] = &[
    "your-secret-key",
    "your-secret",
    "secret",
    "changeme",
    "change-me",
    "password",
    "jwt-secret",
    "jwt_secret",
    "<strong-random-secret>",
];

/// Minimum length of a production JWT secret (HS256 wants ≥ 256 bits of key).
pub const MIN_PRODUCTION_SECRET_LEN: usize = 32;

/// "JWT secret strong enough in production": long, not a template value, not repetitive.
pub fn jwt_secret(config: &Config) -> Check {
    const NAME: &str = "JWT secret (JWT_SECRET)";
    const FIX: &str = "Set JWT_SECRET to a long random value: `openssl rand -hex 32`.";
    let s = config.jwt_secret.as_str();
    let weakness = if config.jwt_secret_is_default || s == DEV_JWT_SECRET {
        Some("the public development secret".to_owned())
    } else if PLACEHOLDER_SECRETS
        .iter()
        .any(|p| s.eq_ignore_ascii_case(p) || s.to_ascii_lowercase().starts_with(&format!("{p}-")))
    {
        Some("a template placeholder".to_owned())
    } else if s.len() < MIN_PRODUCTION_SECRET_LEN {
        Some(format!(
            "{} characters, fewer than {MIN_PRODUCTION_SECRET_LEN}",
            s.len()
        ))
    } else {
        let mut distinct: Vec<char> = s.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        (distinct.len() < 10).then(|| format!("only {} distinct characters", distinct.len()))
    };
    match (weakness, config.is_production()) {
        (None, _) => Check::pass(NAME, format!("{} characters", s.len())),
        (Some(w), true) => Check::fail(
            NAME,
            format!("weak for production: {w}; anyone who guesses it can mint tokens for any user"),
            FIX,
        ),
        (Some(w), false) => Check::warn(
            NAME,
            format!(
                "{w}: acceptable in development, refused by this check when NODE_ENV=production"
            ),
            FIX,
        ),
    }
}
