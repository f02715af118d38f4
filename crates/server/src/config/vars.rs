//! The environment as the configuration reads it: every known variable's name, and
//! lookups that treat empty values as unset and name the variable in their errors.

use std::collections::BTreeMap;

use super::ConfigError;

/// Every variable the service reads (`STUN_SERVER_<n>` stands for `STUN_SERVER_1`, `_2`, …;
/// `RUST_LOG` is read by the logger). Deploy files are checked against this list.
pub const KNOWN_VARS: &[&str] = &[
    "NODE_ENV",
    "HOST",
    "PORT",
    "JWT_SECRET",
    "JWT_USER_CLAIM",
    "JWT_NAME_CLAIM",
    "MEETING_TTL",
    "RECONNECT_GRACE_SECONDS",
    "DRAIN_TIMEOUT_SECONDS",
    "MAX_PARTICIPANTS",
    "MESH_MAX_PARTICIPANTS",
    "STUN_SERVER_<n>",
    "TURN_SERVER_URL",
    "TURN_USERNAME",
    "TURN_CREDENTIAL",
    "TURN_SECRET",
    "TURN_CREDENTIAL_TTL",
    "SFU_MODE_ENABLED",
    "MEDIASOUP_MIN_PORT",
    "MEDIASOUP_MAX_PORT",
    "MEDIASOUP_ENABLE_TCP",
    "MEDIASOUP_SINGLE_PORT",
    "MEDIASOUP_WORKERS",
    "MEDIASOUP_LISTEN_IP",
    "MEDIASOUP_ANNOUNCED_IP",
    "MEDIASOUP_ALLOW_LOOPBACK",
    "MEDIASOUP_LOG_LEVEL",
    "MEDIASOUP_BANDWIDTH_ESTIMATION",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "CORS_ORIGINS",
    "DATABASE_URL",
    "RECORDINGS_DIR",
    "RECORDING_AUTO_COMPOSE",
    "RUST_LOG",
    "TRUST_PROXY",
    "RATE_LIMIT_SOCKET_JOIN",
    "RATE_LIMIT_SOCKET_CHAT",
    "RATE_LIMIT_SOCKET_MEDIA",
    "RATE_LIMIT_SOCKET_CONTROL",
    "RATE_LIMIT_USER_JOIN",
    "RATE_LIMIT_USER_CREATE",
    "RATE_LIMIT_IP_HANDSHAKE",
    "RATE_LIMIT_IP_REST",
    "RATE_LIMIT_IP_GUEST",
    "METRICS_ENABLED",
    "METRICS_PORT",
    "LOG_FORMAT",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
];

/// Whether `name` is one of [`KNOWN_VARS`] (`STUN_SERVER_1`, `STUN_SERVER_2`, … included).
pub fn is_known_var(name: &str) -> bool {
    KNOWN_VARS.contains(&name)
        || name
            .strip_prefix("STUN_SERVER_")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn invalid(var: &str, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var: var.to_owned(),
        value: value.to_owned(),
        expected: expected.into(),
    }
}

/// Variables keyed by name; empty values count as unset (as `.env` templates leave them).
pub(super) struct Vars(pub(super) BTreeMap<String, String>);

impl Vars {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    pub(super) fn parse<T: std::str::FromStr>(
        &self,
        var: &'static str,
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| invalid(var, v, expected)),
        }
    }

    pub(super) fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(invalid(var, v, "true or false")),
            },
        }
    }
}
