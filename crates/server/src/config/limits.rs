//! The rate limits' settings (`RATE_LIMIT_*`) and `TRUST_PROXY`, which decides the
//! client address the per-IP limits key on.

use std::time::Duration;

use super::ConfigError;
use super::vars::{Vars, invalid};

/// A rate: at most `count` at once (the burst), refilled evenly over `per`
/// (`RATE_LIMIT_…=20/10s`: 20 at once, then one every 500 ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: std::num::NonZeroU32,
    pub per: Duration,
}

impl Rate {
    /// `COUNT/PERIOD` (`10/s`, `30/min`, `20/10s`, `100/h`), or `off` for no limit.
    pub fn parse(text: &str) -> Result<Option<Rate>, &'static str> {
        const EXPECTED: &str =
            "COUNT/PERIOD with a period in s, min or h (e.g. 20/10s, 30/min), or off";
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (count, period) = text.split_once('/').ok_or(EXPECTED)?;
        let count: u32 = count.trim().parse().map_err(|_| EXPECTED)?;
        let count = std::num::NonZeroU32::new(count)
            .filter(|c| c.get() <= 1_000_000)
            .ok_or(EXPECTED)?;
        let period = period.trim();
        let digits = period.bytes().take_while(u8::is_ascii_digit).count();
        let (n, unit) = period.split_at(digits);
        let n: u64 = if n.is_empty() {
            1
        } else {
            n.parse().map_err(|_| EXPECTED)?
        };
        let unit_secs = match unit {
            "s" | "sec" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            _ => return Err(EXPECTED),
        };
        let secs = n.checked_mul(unit_secs).ok_or(EXPECTED)?;
        if !(1..=86_400).contains(&secs) {
            return Err(EXPECTED);
        }
        Ok(Some(Rate {
            count,
            per: Duration::from_secs(secs),
        }))
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}s", self.count, self.per.as_secs())
    }
}

/// The `RATE_LIMIT_*` settings; `None` is `off`. See `docs/security.md` for why the
/// defaults are what they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Per socket: `join-meeting` and `leave-meeting`.
    pub socket_join: Option<Rate>,
    /// Per socket: `meeting-chat-message`.
    pub socket_chat: Option<Rate>,
    /// Per socket: SDP and ICE (`sfu-offer`, `sfu-answer`, `webrtc-offer`,
    /// `webrtc-answer`, `ice-candidate`).
    pub socket_media: Option<Rate>,
    /// Per socket: toggles and host controls.
    pub socket_control: Option<Rate>,
    /// Per user id: joins, over all of the user's sockets on this node.
    pub user_join: Option<Rate>,
    /// Per user id: `POST /api/meetings/create`.
    pub user_create: Option<Rate>,
    /// Per client IP: Engine.IO handshakes (`/socket.io/` without `sid`).
    pub ip_handshake: Option<Rate>,
    /// Per client IP: every `/api/…` request.
    pub ip_rest: Option<Rate>,
    /// Per client IP: `POST /api/auth/guest`.
    pub ip_guest: Option<Rate>,
}

/// `(variable, default)` of every `RATE_LIMIT_*`, in [`RateLimits`] field order.
pub const RATE_LIMIT_DEFAULTS: &[(&str, &str)] = &[
    ("RATE_LIMIT_SOCKET_JOIN", "10/10s"),
    ("RATE_LIMIT_SOCKET_CHAT", "10/10s"),
    ("RATE_LIMIT_SOCKET_MEDIA", "200/10s"),
    ("RATE_LIMIT_SOCKET_CONTROL", "30/10s"),
    ("RATE_LIMIT_USER_JOIN", "60/min"),
    ("RATE_LIMIT_USER_CREATE", "30/min"),
    ("RATE_LIMIT_IP_HANDSHAKE", "300/min"),
    ("RATE_LIMIT_IP_REST", "600/min"),
    ("RATE_LIMIT_IP_GUEST", "120/min"),
];

pub(super) fn rate_limits(vars: &Vars) -> Result<RateLimits, ConfigError> {
    let mut rates = Vec::with_capacity(RATE_LIMIT_DEFAULTS.len());
    for (var, default) in RATE_LIMIT_DEFAULTS {
        let text = vars.get(var).unwrap_or(default);
        rates.push(Rate::parse(text).map_err(|expected| invalid(var, text, expected))?);
    }
    let [
        socket_join,
        socket_chat,
        socket_media,
        socket_control,
        user_join,
        user_create,
        ip_handshake,
        ip_rest,
        ip_guest,
    ] = rates[..]
    else {
        unreachable!("one rate per RATE_LIMIT_DEFAULTS entry")
    };
    Ok(RateLimits {
        socket_join,
        socket_chat,
        socket_media,
        socket_control,
        user_join,
        user_create,
        ip_handshake,
        ip_rest,
        ip_guest,
    })
}

pub(super) fn trust_proxy(vars: &Vars) -> Result<u8, ConfigError> {
    const EXPECTED: &str = "false, true (one proxy), or the number of proxies in front (0-10)";
    match vars.get("TRUST_PROXY") {
        None => Ok(0),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "false" | "no" | "off" => Ok(0),
            "true" | "yes" | "on" => Ok(1),
            n => n
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= 10)
                .ok_or_else(|| invalid("TRUST_PROXY", v, EXPECTED)),
        },
    }
}
