//! Rate limits: per socket (events by kind), per user (joins, meeting creation) and per
//! client IP (Engine.IO handshakes, REST, guest tokens), from `RATE_LIMIT_*`.
//!
//! Every limit is a GCRA cell from the `governor` crate: `COUNT/PERIOD` allows a burst
//! of COUNT and then one more every PERIOD/COUNT. A refused request costs a lookup and
//! a compare, and is answered at once (`RATE_LIMITED` ack, HTTP 429 with `Retry-After`)
//! before any database or media work, so a flood from one client is cut off where it
//! enters and never queues in front of other users' requests.
//!
//! Per-socket cells live with the socket ([`SocketLimits`], dropped with it). Keyed cells
//! (users, addresses) live in maps that [`Limits::housekeeping`] prunes on a timer:
//! a key whose cell is back to a full burst carries no information and is forgotten,
//! so the maps hold only the clients active in the last period, however many come by.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::Request;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use proto::UserId;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Rate, RateLimits};

/// How often the keyed maps are pruned.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(30);

/// Refused events a socket may send in `REFUSALS_PERIOD` before it is disconnected. A
/// client that honours `RATE_LIMITED` never comes near; one that keeps sending is
/// flooding, and even refused events cost parsing and an answer: the connection goes.
pub const REFUSALS_BEFORE_DISCONNECT: u32 = 100;
const REFUSALS_PERIOD: Duration = Duration::from_secs(10);

/// After one of a user's sockets was disconnected for flooding, that user's new
/// connections are refused (`RATE_LIMITED` at connect) this long. Without it a flooding
/// client reconnects at once and goes on: each new connection costs a handshake, an
/// authentication and another hundred refusals, which is what other users felt.
pub const CUT_OFF: Duration = Duration::from_secs(30);

/// What a socket event counts against (see `RATE_LIMIT_SOCKET_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `join-meeting`: the socket's join cell, and the user's.
    Join,
    /// `leave-meeting`: never limited, leaving must always work; it is bounded by joins
    /// (a socket not in a meeting has nothing to leave, which costs nothing).
    Leave,
    /// `meeting-chat-message`.
    Chat,
    /// SDP and ICE: `sfu-offer`, `sfu-answer`, `webrtc-offer`, `webrtc-answer`, `ice-candidate`;
    /// and `tile-views` (debounced by the page, a few a second at most).
    Media,
    /// Toggles and host controls.
    Control,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Join => "join",
            EventKind::Leave => "leave",
            EventKind::Chat => "chat",
            EventKind::Media => "media signaling",
            EventKind::Control => "control",
        }
    }
}

/// What a user id is limited on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAction {
    Join,
    CreateMeeting,
}

/// What a client address is limited on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpAction {
    /// A new Engine.IO session (`/socket.io/` without `sid`).
    Handshake,
    /// Any `/api/…` request.
    Rest,
    /// `POST /api/auth/guest`.
    Guest,
}

/// A refusal: which limit, and when the next request would pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many {what} requests; retry in {} ms", retry_after.as_millis())]
pub struct RateLimited {
    pub what: &'static str,
    pub retry_after: Duration,
}

impl RateLimited {
    /// Whole seconds for `Retry-After`, rounded up (never 0: "now" would invite a retry storm).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

fn quota(rate: Rate) -> Quota {
    let per_cell = rate.per / rate.count.get();
    // A period shorter than the clock can tell (a nanosecond) is not a limit anyone
    // configures; the smallest positive one stands in.
    Quota::with_period(per_cell.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(rate.count)
}

fn refused(
    what: &'static str,
    not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>,
) -> RateLimited {
    RateLimited {
        what,
        retry_after: not_until.wait_time_from(DefaultClock::default().now()),
    }
}

/// The per-socket cells, one per [`EventKind`] that is limited. Created at connect,
/// dropped with the socket: nothing to prune.
#[derive(Debug)]
pub struct SocketLimits {
    join: Option<DefaultDirectRateLimiter>,
    chat: Option<DefaultDirectRateLimiter>,
    media: Option<DefaultDirectRateLimiter>,
    control: Option<DefaultDirectRateLimiter>,
    refusals: DefaultDirectRateLimiter,
}

impl SocketLimits {
    pub fn new(rates: &RateLimits) -> SocketLimits {
        let cell = |r: Option<Rate>| r.map(|r| governor::RateLimiter::direct(quota(r)));
        SocketLimits {
            join: cell(rates.socket_join),
            chat: cell(rates.socket_chat),
            media: cell(rates.socket_media),
            control: cell(rates.socket_control),
            refusals: governor::RateLimiter::direct(quota(Rate {
                count: NonZeroU32::new(REFUSALS_BEFORE_DISCONNECT).unwrap_or(NonZeroU32::MIN),
                per: REFUSALS_PERIOD,
            })),
        }
    }

    /// Counts one refused event; false once the socket has had more than
    /// [`REFUSALS_BEFORE_DISCONNECT`] in the last 10 s (it ignores `RATE_LIMITED`).
    pub fn tolerate_refusal(&self) -> bool {
        self.refusals.check().is_ok()
    }

    /// Takes one event of `kind` from this socket's allowance.
    pub fn check(&self, kind: EventKind) -> Result<(), RateLimited> {
        let cell = match kind {
            EventKind::Join => &self.join,
            EventKind::Leave => return Ok(()),
            EventKind::Chat => &self.chat,
            EventKind::Media => &self.media,
            EventKind::Control => &self.control,
        };
        match cell {
            Some(cell) => cell.check().map_err(|n| refused(kind.as_str(), n)),
            None => Ok(()),
        }
    }
}

/// The process-wide limits: the keyed cells and the settings to make socket cells from.
#[derive(Debug)]
pub struct Limits {
    rates: RateLimits,
    trust_proxy: u8,
    user_join: Option<DefaultKeyedRateLimiter<UserId>>,
    user_create: Option<DefaultKeyedRateLimiter<UserId>>,
    ip_handshake: Option<DefaultKeyedRateLimiter<IpAddr>>,
    ip_rest: Option<DefaultKeyedRateLimiter<IpAddr>>,
    ip_guest: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Users cut off for flooding, until when ([`CUT_OFF`]).
    cut_off: Mutex<HashMap<UserId, Instant>>,
}

impl Limits {
    pub fn new(config: &Config) -> Limits {
        let r = &config.limits;
        fn keyed<K: std::hash::Hash + Eq + Clone>(
            rate: Option<Rate>,
        ) -> Option<DefaultKeyedRateLimiter<K>> {
            rate.map(|r| governor::RateLimiter::keyed(quota(r)))
        }
        Limits {
            rates: r.clone(),
            trust_proxy: config.trust_proxy,
            user_join: keyed(r.user_join),
            user_create: keyed(r.user_create),
            ip_handshake: keyed(r.ip_handshake),
            ip_rest: keyed(r.ip_rest),
            ip_guest: keyed(r.ip_guest),
            cut_off: Mutex::new(HashMap::new()),
        }
    }

    /// Fresh cells for a new socket.
    pub fn socket(&self) -> SocketLimits {
        SocketLimits::new(&self.rates)
    }

    pub fn check_user(&self, action: UserAction, user: &UserId) -> Result<(), RateLimited> {
        let (cell, what) = match action {
            UserAction::Join => (&self.user_join, "join"),
            UserAction::CreateMeeting => (&self.user_create, "meeting creation"),
        };
        match cell {
            Some(cell) => cell.check_key(user).map_err(|n| refused(what, n)),
            None => Ok(()),
        }
    }

    /// One of `user`'s sockets kept sending past its refusals and was disconnected:
    /// refuse the user's connections for [`CUT_OFF`].
    pub fn cut_off(&self, user: &UserId) {
        let mut cut = self.cut_off.lock().unwrap_or_else(|e| e.into_inner());
        cut.insert(user.clone(), Instant::now() + CUT_OFF);
    }

    /// Whether `user` may connect, i.e. is not cut off.
    pub fn check_connect(&self, user: &UserId) -> Result<(), RateLimited> {
        let cut = self.cut_off.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match cut.get(user) {
            Some(&until) if until > now => Err(RateLimited {
                what: "connection (cut off for flooding)",
                retry_after: until - now,
            }),
            _ => Ok(()),
        }
    }

    pub fn check_ip(&self, action: IpAction, ip: IpAddr) -> Result<(), RateLimited> {
        let (cell, what) = match action {
            IpAction::Handshake => (&self.ip_handshake, "connection"),
            IpAction::Rest => (&self.ip_rest, "API"),
            IpAction::Guest => (&self.ip_guest, "guest token"),
        };
        match cell {
            Some(cell) => cell
                .check_key(&client_key(ip))
                .map_err(|n| refused(what, n)),
            None => Ok(()),
        }
    }

    /// The client's address: the connection's peer, or with `TRUST_PROXY=n` the n-th
    /// address from the right of `X-Forwarded-For` (each proxy appends the address it
    /// got the request from, so the rightmost entries are the trusted ones and anything
    /// further left is whatever the client wrote). `None` when the server was not served
    /// with connect info (routers driven in-process by tests): nothing to key on.
    pub fn client_ip<B>(&self, req: &Request<B>) -> Option<IpAddr> {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if self.trust_proxy == 0 {
            return peer;
        }
        let forwarded: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        forwarded
            .len()
            .checked_sub(usize::from(self.trust_proxy))
            .and_then(|i| forwarded.get(i))
            .and_then(|a| a.parse().ok())
            .or(peer)
    }

    /// Keys tracked by the keyed cells (users and addresses), for tests and metrics.
    pub fn tracked_keys(&self) -> usize {
        let users = [&self.user_join, &self.user_create]
            .into_iter()
            .flatten()
            .map(|c| c.len())
            .sum::<usize>();
        let ips = [&self.ip_handshake, &self.ip_rest, &self.ip_guest]
            .into_iter()
            .flatten()
            .map(|c| c.len())
            .sum::<usize>();
        let cut = self.cut_off.lock().unwrap_or_else(|e| e.into_inner()).len();
        users + ips + cut
    }

    /// Forgets every key whose cell has refilled (it would pass a full burst anyway).
    pub fn prune(&self) {
        let now = Instant::now();
        self.cut_off
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
        for c in [&self.user_join, &self.user_create].into_iter().flatten() {
            c.retain_recent();
            c.shrink_to_fit();
        }
        for c in [&self.ip_handshake, &self.ip_rest, &self.ip_guest]
            .into_iter()
            .flatten()
        {
            c.retain_recent();
            c.shrink_to_fit();
        }
    }

    /// Prunes every `HOUSEKEEPING_EVERY` until `shutdown`.
    pub async fn housekeeping(self: std::sync::Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => self.prune(),
            }
        }
    }
}

/// The key of an address: IPv4 as is, IPv6 by its /64 (one subscriber's prefix: a
/// client picks any address in it for free). IPv4-mapped IPv6 is IPv4.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(t: &str) -> Option<Rate> {
        Rate::parse(t).expect("valid")
    }

    #[test]
    fn burst_then_refused_with_a_wait() {
        let mut rates = crate::config::Config::from_vars(Vec::new())
            .expect("defaults")
            .limits;
        rates.socket_chat = rate("3/10s");
        let s = SocketLimits::new(&rates);
        for _ in 0..3 {
            assert!(s.check(EventKind::Chat).is_ok());
        }
        let e = s.check(EventKind::Chat).expect_err("fourth refused");
        assert!(e.retry_after > Duration::from_secs(2) && e.retry_after <= Duration::from_secs(4));
        assert_eq!(e.retry_after_secs(), e.retry_after.as_secs() + 1);
        // Other kinds have their own cells, and leaving is never limited.
        assert!(s.check(EventKind::Control).is_ok());
        for _ in 0..1000 {
            assert!(s.check(EventKind::Leave).is_ok());
        }
    }

    #[test]
    fn a_cut_off_user_cannot_connect_until_it_ends() {
        let config = crate::config::Config::from_vars(Vec::new()).expect("defaults");
        let limits = Limits::new(&config);
        let (flooder, other) = (UserId::new("flooder"), UserId::new("other"));
        assert!(limits.check_connect(&flooder).is_ok());
        limits.cut_off(&flooder);
        let e = limits.check_connect(&flooder).expect_err("cut off");
        assert!(e.retry_after > CUT_OFF - Duration::from_secs(1) && e.retry_after <= CUT_OFF);
        assert!(limits.check_connect(&other).is_ok(), "only that user");
        // Pruning keeps a running cut-off, and forgets an ended one.
        limits.prune();
        assert!(limits.check_connect(&flooder).is_err());
        limits
            .cut_off
            .lock()
            .expect("lock")
            .insert(flooder.clone(), Instant::now());
        assert!(limits.check_connect(&flooder).is_ok(), "ended");
        limits.prune();
        assert_eq!(limits.tracked_keys(), 0);
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        let r = |ms| RateLimited {
            what: "x",
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(r(0).retry_after_secs(), 1);
        assert_eq!(r(1).retry_after_secs(), 1);
        assert_eq!(r(1000).retry_after_secs(), 1);
        assert_eq!(r(1001).retry_after_secs(), 2);
        assert_eq!(r(59_999).retry_after_secs(), 60);
    }

    #[test]
    fn ipv6_keyed_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(
            client_key(mapped),
            "10.0.0.1".parse::<IpAddr>().expect("ip")
        );
    }
}
