//! Configuration: every setting comes from the environment (and an optional `.env`),
//! with the names and meanings of the Node.js service's deployment guide.
//!
//! [`Config::from_vars`] takes the variables as a list so that tests can feed values
//! without touching the process environment. Every bad value is a [`ConfigError`] that
//! names the variable, the value and what was expected; `docs/configuration.md` is the
//! prose version of this file.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Used when `JWT_SECRET` is unset outside production. Public, hence refused in production.
pub const DEV_JWT_SECRET: &str = "meeting-service-development-secret-do-not-use-in-production";

/// Where meetings live when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/meetings.db";

/// Default of `TURN_CREDENTIAL_TTL`: one day, the lifetime the TURN REST API draft
/// suggests. A browser keeps the credentials it got at join for every refresh of its
/// TURN allocation, so they must outlive the longest call; a leaked pair is still
/// bounded to one day and one user id.
pub const DEFAULT_TURN_CREDENTIAL_TTL: Duration = Duration::from_secs(86_400);

/// Every variable the service reads (`STUN_SERVER_<n>` stands for `STUN_SERVER_1`, `_2`, …;
/// `RUST_LOG` is read by the logger). Deploy files are checked against this list.
pub const KNOWN_VARS: &[&str] = &[
    "NODE_ENV",
    "HOST",
    "PORT",
    "JWT_SECRET",
    "MEETING_TTL",
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
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "CORS_ORIGINS",
    "DATABASE_URL",
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
];

/// Whether `name` is one of [`KNOWN_VARS`] (`STUN_SERVER_1`, `STUN_SERVER_2`, … included).
pub fn is_known_var(name: &str) -> bool {
    KNOWN_VARS.contains(&name)
        || name
            .strip_prefix("STUN_SERVER_")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The whole configuration, validated.
#[derive(Clone, Debug)]
pub struct Config {
    /// `NODE_ENV`; production removes the guest-token endpoint and requires `JWT_SECRET`.
    pub node_env: NodeEnv,
    pub listen: SocketAddr,
    pub jwt_secret: String,
    /// True when `JWT_SECRET` was unset and the public development secret is in use.
    pub jwt_secret_is_default: bool,
    /// How long an active meeting may stay empty before it ends by itself.
    pub meeting_ttl: Duration,
    /// Default and upper bound of a meeting's `maxParticipants`.
    pub max_participants: u32,
    /// `MESH_MAX_PARTICIPANTS`: the cap of mesh meetings (each browser uploads its camera
    /// once per peer, so a full mesh of 50 is not a working meeting).
    pub mesh_max_participants: u32,
    pub ice: IceConfig,
    pub sfu: SfuSettings,
    /// Default topology of new meetings: SFU when true, mesh otherwise.
    pub sfu_mode_enabled: bool,
    pub redis_url: Option<String>,
    /// `REDIS_KEY_PREFIX`: namespace of every key and channel in Redis, so that several
    /// deployments can share one Redis.
    pub redis_prefix: String,
    pub cors: CorsOrigins,
    pub database_url: String,
    /// `RATE_LIMIT_*`: how fast one socket, user or address may go.
    pub limits: RateLimits,
    /// `TRUST_PROXY`: how many reverse proxies in front of the service append to
    /// `X-Forwarded-For`; 0 (the default) uses the peer address of the connection.
    pub trust_proxy: u8,
}

/// STUN/TURN servers handed to clients.
#[derive(Clone, Debug, Default)]
pub struct IceConfig {
    /// `STUN_SERVER_1`, `STUN_SERVER_2`, … in numeric order.
    pub stun_servers: Vec<String>,
    pub turn: Option<TurnConfig>,
}

#[derive(Clone, Debug)]
pub struct TurnConfig {
    pub urls: Vec<String>,
    pub username: Option<String>,
    pub credential: Option<String>,
    /// Shared secret for time-limited credentials (coturn `use-auth-secret`).
    pub secret: Option<String>,
    /// `TURN_CREDENTIAL_TTL`: lifetime of the credentials minted with `secret`.
    pub credential_ttl: Duration,
}

/// The `MEDIASOUP_*` settings, resolved (worker count known, announced IP chosen).
#[derive(Clone, Debug)]
pub struct SfuSettings {
    pub min_port: u16,
    pub max_port: u16,
    /// Resolved: `MEDIASOUP_WORKERS=0` becomes the number of cores.
    pub workers: usize,
    pub listen_ip: IpAddr,
    pub announced_ip: IpAddr,
    /// Where `announced_ip` came from, for the start-up log.
    pub announced_ip_source: AnnouncedIpSource,
    /// `MEDIASOUP_ALLOW_LOOPBACK`: a loopback announced IP was explicitly allowed (tests).
    pub allow_loopback: bool,
    /// `MEDIASOUP_LOG_LEVEL`, a tracing level for target `meeting_sfu`.
    pub log_level: String,
    /// `MEDIASOUP_ENABLE_TCP`: each worker also listens on TCP at its UDP port and offers
    /// a passive ICE-TCP candidate, for browsers whose network blocks UDP.
    pub enable_tcp: bool,
    /// `MEDIASOUP_SINGLE_PORT`: one-port mode, every worker shares this UDP (and TCP)
    /// port; `min_port`/`max_port` are then unused.
    pub single_port: Option<u16>,
}

impl SfuSettings {
    /// The ports the workers bind (UDP, and TCP too with `enable_tcp`): `min_port + i`
    /// for each worker, or the one shared port in one-port mode.
    pub fn media_ports(&self) -> Vec<u16> {
        match self.single_port {
            Some(p) => vec![p],
            None => (0..self.workers)
                .filter_map(|i| u16::try_from(usize::from(self.min_port) + i).ok())
                .collect(),
        }
    }

    /// The media ports as an operator reads them: `10000-10003`, or `10000` in one-port mode.
    pub fn media_ports_text(&self) -> String {
        match (self.single_port, self.workers) {
            (Some(p), _) => p.to_string(),
            (None, 0 | 1) => self.min_port.to_string(),
            (None, n) => format!("{}-{}", self.min_port, usize::from(self.min_port) + n - 1),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnouncedIpSource {
    Configured,
    Detected,
    /// Nothing but loopback was found: only clients on this machine can connect.
    LoopbackFallback,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `CORS_ORIGINS` unset: same-origin only (the built-in web client needs no CORS).
    None,
    /// `CORS_ORIGINS=*`.
    Any,
    List(Vec<String>),
}

/// A configuration that cannot be used. The messages are shown to operators as is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var}={value:?} is invalid: expected {expected}")]
    Invalid {
        var: String,
        value: String,
        expected: String,
    },
    #[error(
        "{var} is set, but this service does not use MongoDB: meetings are stored in SQLite \
         (the default, {DEFAULT_DATABASE_URL}) or PostgreSQL. Remove {var} and set \
         DATABASE_URL instead (e.g. DATABASE_URL=postgres://user:pass@host/db), or leave it \
         unset for SQLite."
    )]
    MongoConfigured { var: &'static str },
    #[error(
        "NODE_ENV={value} is production, but JWT_SECRET is not set: refusing to start with the public \
         development secret. Set JWT_SECRET to a long random string (e.g. `openssl rand -hex 32`)."
    )]
    ProductionWithoutJwtSecret { value: String },
    #[error(
        "MEDIASOUP_ANNOUNCED_IP=127.0.0.1 (loopback): DO NOT use 127.0.0.1, it causes WebRTC \
         connection failures, because remote browsers would send their media to themselves. \
         Set it to this machine's LAN or public IP (Linux/Mac: `hostname -I | awk '{{print $1}}'`), \
         or unset it to detect the first non-loopback IPv4. For tests on one machine only, \
         set MEDIASOUP_ALLOW_LOOPBACK=true."
    )]
    LoopbackAnnouncedIp,
}

fn invalid(var: &str, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var: var.to_owned(),
        value: value.to_owned(),
        expected: expected.into(),
    }
}

/// Variables keyed by name; empty values count as unset (as `.env` templates leave them).
struct Vars(BTreeMap<String, String>);

impl Vars {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn parse<T: std::str::FromStr>(
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

    fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
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

impl Config {
    /// Reads the process environment, after loading `.env` from the working directory
    /// if there is one (variables already set win over the file).
    pub fn from_env() -> Result<Config, ConfigError> {
        // A missing .env is the normal case; a malformed one is worth a warning.
        match dotenvy::dotenv() {
            Ok(path) => tracing::info!(path = %path.display(), "loaded .env"),
            Err(e) if e.not_found() => {}
            Err(e) => tracing::warn!(error = %e, "ignoring unreadable .env"),
        }
        Config::from_vars(std::env::vars())
    }

    /// Builds and validates the configuration from `(name, value)` pairs.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let vars = Vars(vars.into_iter().collect());

        for var in ["MONGO_URI", "MONGODB_URI"] {
            if vars.get(var).is_some() {
                return Err(ConfigError::MongoConfigured { var });
            }
        }

        let node_env = match vars.get("NODE_ENV") {
            None => NodeEnv::Development,
            Some(v) => NodeEnv::parse(v).ok_or_else(|| {
                invalid(
                    "NODE_ENV",
                    v,
                    "production (or prod), development (or dev), or test; any case",
                )
            })?,
        };
        let production = node_env == NodeEnv::Production;

        let port: u16 = vars.parse("PORT", 3009, "a TCP port number (0-65535)")?;
        let host: IpAddr = vars.parse(
            "HOST",
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            "an IP address to listen on, e.g. 0.0.0.0",
        )?;

        let (jwt_secret, jwt_secret_is_default) = match vars.get("JWT_SECRET") {
            Some(s) if s.len() < 16 => {
                return Err(invalid("JWT_SECRET", "<hidden>", "at least 16 characters"));
            }
            Some(s) => (s.to_owned(), false),
            None if production => {
                return Err(ConfigError::ProductionWithoutJwtSecret {
                    value: vars.get("NODE_ENV").unwrap_or_default().to_owned(),
                });
            }
            None => (DEV_JWT_SECRET.to_owned(), true),
        };

        let ttl_secs: u64 = vars.parse(
            "MEETING_TTL",
            14_400,
            "a whole number of seconds, e.g. 14400",
        )?;
        if ttl_secs == 0 {
            return Err(invalid(
                "MEETING_TTL",
                "0",
                "a whole number of seconds greater than 0",
            ));
        }
        let max_participants: u32 =
            vars.parse("MAX_PARTICIPANTS", 50, "a whole number from 2 to 1000")?;
        if !(2..=1000).contains(&max_participants) {
            return Err(invalid(
                "MAX_PARTICIPANTS",
                &max_participants.to_string(),
                "a whole number from 2 to 1000",
            ));
        }
        let mesh_max_participants: u32 =
            vars.parse("MESH_MAX_PARTICIPANTS", 6, "a whole number from 2 to 16")?;
        if !(2..=16).contains(&mesh_max_participants) {
            return Err(invalid(
                "MESH_MAX_PARTICIPANTS",
                &mesh_max_participants.to_string(),
                "a whole number from 2 to 16",
            ));
        }

        let ice = ice_config(&vars)?;
        let sfu_mode_enabled = vars.bool("SFU_MODE_ENABLED", true)?;
        let sfu = sfu_settings(&vars, sfu_mode_enabled)?;
        // With ICE-TCP the workers listen on TCP at their media ports: the HTTP port must
        // not be one of them (on an address both bind).
        let same_address =
            host == sfu.listen_ip || host.is_unspecified() || sfu.listen_ip.is_unspecified();
        if sfu.enable_tcp && same_address && port != 0 && sfu.media_ports().contains(&port) {
            return Err(invalid(
                "PORT",
                &port.to_string(),
                format!(
                    "a TCP port other than the SFU's media ports ({}): with MEDIASOUP_ENABLE_TCP=true (the default) the workers \
                     listen on TCP there too; choose another PORT or other media ports, or set MEDIASOUP_ENABLE_TCP=false",
                    sfu.media_ports_text()
                ),
            ));
        }

        let redis_url = match vars.get("REDIS_URL") {
            None => None,
            Some(u)
                if u.starts_with("redis://")
                    || u.starts_with("rediss://")
                    || u.starts_with("redis+unix://")
                    || u.starts_with("unix://") =>
            {
                Some(u.to_owned())
            }
            Some(u) => {
                return Err(invalid(
                    "REDIS_URL",
                    u,
                    "a URL starting with redis:// or rediss://",
                ));
            }
        };
        let redis_prefix = vars
            .get("REDIS_KEY_PREFIX")
            .unwrap_or("meeting-service:")
            .to_owned();
        if redis_prefix.is_empty()
            || redis_prefix.len() > 64
            || redis_prefix
                .chars()
                .any(|c| c.is_whitespace() || c == '{' || c == '}')
        {
            return Err(invalid(
                "REDIS_KEY_PREFIX",
                &redis_prefix,
                "1 to 64 characters without spaces or braces",
            ));
        }

        let cors = match vars.get("CORS_ORIGINS") {
            None => CorsOrigins::None,
            Some("*") => CorsOrigins::Any,
            Some(list) => {
                let mut origins = Vec::new();
                for o in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                    let ok = (o.starts_with("http://") || o.starts_with("https://"))
                        && !o.ends_with('/');
                    if !ok {
                        return Err(invalid(
                            "CORS_ORIGINS",
                            o,
                            "a comma-separated list of origins like https://app.example.com (no trailing slash), or *",
                        ));
                    }
                    origins.push(o.to_owned());
                }
                CorsOrigins::List(origins)
            }
        };

        let database_url = match vars.get("DATABASE_URL") {
            None => DEFAULT_DATABASE_URL.to_owned(),
            Some(u)
                if u.starts_with("sqlite:")
                    || u.starts_with("postgres://")
                    || u.starts_with("postgresql://") =>
            {
                u.to_owned()
            }
            Some(u) => {
                return Err(invalid(
                    "DATABASE_URL",
                    &redact_url(u),
                    "sqlite://<file> or postgres://user:password@host/database",
                ));
            }
        };

        Ok(Config {
            node_env,
            listen: SocketAddr::new(host, port),
            jwt_secret,
            jwt_secret_is_default,
            meeting_ttl: Duration::from_secs(ttl_secs),
            max_participants,
            mesh_max_participants,
            ice,
            sfu,
            sfu_mode_enabled,
            redis_url,
            redis_prefix,
            cors,
            database_url,
            limits: rate_limits(&vars)?,
            trust_proxy: trust_proxy(&vars)?,
        })
    }

    pub fn is_production(&self) -> bool {
        self.node_env == NodeEnv::Production
    }
}

/// `NODE_ENV`, read case-insensitively. Only an explicit development value runs with the
/// public development secret and the guest endpoint; a value we do not know is refused
/// rather than guessed (`Production` or `prod` used to start as development).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeEnv {
    /// `development` or `dev`, and the default when `NODE_ENV` is unset.
    Development,
    /// `test`: as development (what test runners set).
    Test,
    /// `production` or `prod`.
    Production,
}

impl NodeEnv {
    pub fn parse(value: &str) -> Option<NodeEnv> {
        match value.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Some(NodeEnv::Development),
            "test" => Some(NodeEnv::Test),
            "production" | "prod" => Some(NodeEnv::Production),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NodeEnv::Development => "development",
            NodeEnv::Test => "test",
            NodeEnv::Production => "production",
        }
    }
}

impl std::fmt::Display for NodeEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

fn rate_limits(vars: &Vars) -> Result<RateLimits, ConfigError> {
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

fn trust_proxy(vars: &Vars) -> Result<u8, ConfigError> {
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

fn ice_config(vars: &Vars) -> Result<IceConfig, ConfigError> {
    // Numbered variables in numeric order, any count: STUN_SERVER_1, _2, … _10.
    let mut numbered: Vec<(u32, &str, &str)> = Vec::new();
    for (name, _) in vars.0.iter() {
        let Some(n) = name.strip_prefix("STUN_SERVER_") else {
            continue;
        };
        let Some(value) = vars.get(name) else {
            continue;
        };
        let Ok(n) = n.parse::<u32>() else {
            return Err(invalid(
                "STUN_SERVER_<n>",
                name,
                "STUN servers numbered STUN_SERVER_1, STUN_SERVER_2, …",
            ));
        };
        numbered.push((n, name.as_str(), value));
    }
    numbered.sort_by_key(|(n, _, _)| *n);
    let mut stun_servers = Vec::new();
    for (_, var, value) in numbered {
        if !(value.starts_with("stun:") || value.starts_with("stuns:")) || value.len() < 6 {
            return Err(invalid(
                var,
                value,
                "a STUN URL like stun:stun.l.google.com:19302",
            ));
        }
        stun_servers.push(value.to_owned());
    }

    let turn = match vars.get("TURN_SERVER_URL") {
        None => None,
        Some(list) => {
            let mut urls = Vec::new();
            for u in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
                let host = u.strip_prefix("turns:").or_else(|| u.strip_prefix("turn:"));
                if host.is_none_or(|h| h.is_empty() || h.starts_with("//")) {
                    return Err(invalid(
                        "TURN_SERVER_URL",
                        u,
                        "turn:host:port or turns:host:port (comma-separated for several)",
                    ));
                }
                urls.push(u.to_owned());
            }
            Some(TurnConfig {
                urls,
                username: vars.get("TURN_USERNAME").map(str::to_owned),
                credential: vars.get("TURN_CREDENTIAL").map(str::to_owned),
                secret: vars.get("TURN_SECRET").map(str::to_owned),
                credential_ttl: turn_credential_ttl(vars)?,
            })
        }
    };
    if let Some(t) = &turn
        && t.secret.is_none()
        && (t.username.is_none() || t.credential.is_none())
    {
        let missing = if t.username.is_none() {
            "TURN_USERNAME"
        } else {
            "TURN_CREDENTIAL"
        };
        return Err(invalid(
            missing,
            "",
            "set together with TURN_SERVER_URL (or set TURN_SECRET for time-limited credentials)",
        ));
    }
    Ok(IceConfig { stun_servers, turn })
}

fn turn_credential_ttl(vars: &Vars) -> Result<Duration, ConfigError> {
    const EXPECTED: &str = "a whole number of seconds from 60 to 604800 (7 days), e.g. 86400";
    let secs: u64 = vars.parse(
        "TURN_CREDENTIAL_TTL",
        DEFAULT_TURN_CREDENTIAL_TTL.as_secs(),
        EXPECTED,
    )?;
    if !(60..=604_800).contains(&secs) {
        return Err(invalid("TURN_CREDENTIAL_TTL", &secs.to_string(), EXPECTED));
    }
    Ok(Duration::from_secs(secs))
}

fn sfu_settings(vars: &Vars, sfu_mode_enabled: bool) -> Result<SfuSettings, ConfigError> {
    let min_port: u16 = vars.parse(
        "MEDIASOUP_MIN_PORT",
        10_000,
        "a UDP port number (1024-65535)",
    )?;
    let max_port: u16 = vars.parse(
        "MEDIASOUP_MAX_PORT",
        10_100,
        "a UDP port number (1024-65535)",
    )?;
    if min_port < 1024 {
        return Err(invalid(
            "MEDIASOUP_MIN_PORT",
            &min_port.to_string(),
            "a UDP port number from 1024 to 65535",
        ));
    }
    if max_port < min_port {
        return Err(invalid(
            "MEDIASOUP_MAX_PORT",
            &max_port.to_string(),
            format!("a port not below MEDIASOUP_MIN_PORT ({min_port}); the range is inverted"),
        ));
    }
    let requested: usize = vars.parse(
        "MEDIASOUP_WORKERS",
        0,
        "a whole number of worker threads (0 = one per CPU core)",
    )?;
    let workers = if requested == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        requested
    };
    let enable_tcp = vars.bool("MEDIASOUP_ENABLE_TCP", true)?;
    let single_port = match vars.get("MEDIASOUP_SINGLE_PORT") {
        None => None,
        Some(v) => match v.parse::<u16>() {
            Ok(p) if p >= 1024 => Some(p),
            _ => {
                return Err(invalid(
                    "MEDIASOUP_SINGLE_PORT",
                    v,
                    "a port number from 1024 to 65535 that every worker shares (UDP, and TCP with MEDIASOUP_ENABLE_TCP), e.g. 10000; \
                     unset for one port per worker from MEDIASOUP_MIN_PORT",
                ));
            }
        },
    };
    let available = usize::from(max_port - min_port) + 1;
    // One-port mode: the workers share one port, the range is not used.
    if single_port.is_none() && workers > available {
        return Err(invalid(
            "MEDIASOUP_MAX_PORT",
            &max_port.to_string(),
            format!(
                "a port range holding at least one port per worker: {min_port}-{max_port} holds {available} \
                 but MEDIASOUP_WORKERS gives {workers} workers (raise MEDIASOUP_MAX_PORT to at least {}, lower MEDIASOUP_WORKERS, \
                 or set MEDIASOUP_SINGLE_PORT for one port shared by every worker)",
                usize::from(min_port) + workers - 1
            ),
        ));
    }
    let listen_ip: IpAddr = vars.parse(
        "MEDIASOUP_LISTEN_IP",
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "an IP address, e.g. 0.0.0.0",
    )?;
    let allow_loopback = vars.bool("MEDIASOUP_ALLOW_LOOPBACK", false)?;
    let (announced_ip, announced_ip_source) = match vars.get("MEDIASOUP_ANNOUNCED_IP") {
        Some(v) => {
            let ip: IpAddr = v.parse().map_err(|_| {
                invalid("MEDIASOUP_ANNOUNCED_IP", v, "an IP address (not a host name), e.g. 203.0.113.7; find yours with `hostname -I`")
            })?;
            if ip.is_unspecified() {
                return Err(invalid(
                    "MEDIASOUP_ANNOUNCED_IP",
                    v,
                    "the address clients can reach, not 0.0.0.0",
                ));
            }
            if ip.is_loopback() && sfu_mode_enabled && !allow_loopback {
                return Err(ConfigError::LoopbackAnnouncedIp);
            }
            (ip, AnnouncedIpSource::Configured)
        }
        None => match meeting_sfu::detect_announced_ip() {
            Some(ip) => (ip, AnnouncedIpSource::Detected),
            None => (
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                AnnouncedIpSource::LoopbackFallback,
            ),
        },
    };
    let log_level = match vars.get("MEDIASOUP_LOG_LEVEL") {
        None => "warn".to_owned(),
        Some(v) => {
            let l = v.to_ascii_lowercase();
            // mediasoup's own level names, mapped onto tracing's.
            match l.as_str() {
                "trace" | "debug" | "info" | "warn" | "error" | "off" => l,
                "none" => "off".to_owned(),
                _ => {
                    return Err(invalid(
                        "MEDIASOUP_LOG_LEVEL",
                        v,
                        "one of debug, warn, error, none (or trace, info, off)",
                    ));
                }
            }
        }
    };
    Ok(SfuSettings {
        min_port,
        max_port,
        workers,
        listen_ip,
        announced_ip,
        announced_ip_source,
        allow_loopback,
        log_level,
        enable_tcp,
        single_port,
    })
}

/// This host's non-loopback IPv4 addresses: the SFU's function (one detector for both).
pub use meeting_sfu::local_ipv4_addresses;

/// Hides the password of a URL before it goes into a message.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_match_the_seed() {
        let c = cfg(&[]).expect("defaults are valid");
        assert_eq!(c.listen.port(), 3009);
        assert_eq!(c.meeting_ttl, Duration::from_secs(14_400));
        assert_eq!(c.max_participants, 50);
        assert_eq!((c.sfu.min_port, c.sfu.max_port), (10_000, 10_100));
        assert!(c.sfu.workers >= 1);
        assert_eq!(c.sfu.log_level, "warn");
        assert!(c.sfu_mode_enabled);
        assert!(c.jwt_secret_is_default);
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert!(c.ice.stun_servers.is_empty());
    }

    #[test]
    fn stun_servers_in_numeric_order() {
        let c = cfg(&[
            ("STUN_SERVER_10", "stun:c:3"),
            ("STUN_SERVER_2", "stun:b:2"),
            ("STUN_SERVER_1", "stun:a:1"),
        ])
        .expect("valid");
        assert_eq!(c.ice.stun_servers, ["stun:a:1", "stun:b:2", "stun:c:3"]);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("MEETING_TTL", "4h")], "MEETING_TTL=\"4h\""),
            (&[("PORT", "http")], "PORT=\"http\""),
            (
                &[
                    ("MEDIASOUP_MIN_PORT", "10100"),
                    ("MEDIASOUP_MAX_PORT", "10000"),
                ],
                "inverted",
            ),
            (
                &[
                    ("MEDIASOUP_WORKERS", "4"),
                    ("MEDIASOUP_MIN_PORT", "10000"),
                    ("MEDIASOUP_MAX_PORT", "10001"),
                ],
                "MEDIASOUP_WORKERS gives 4",
            ),
            (
                &[("MEDIASOUP_ANNOUNCED_IP", "my.host")],
                "MEDIASOUP_ANNOUNCED_IP=\"my.host\"",
            ),
            (
                &[("MEDIASOUP_ANNOUNCED_IP", "127.0.0.1")],
                "DO NOT use 127.0.0.1",
            ),
            (
                &[("TURN_SERVER_URL", "http://turn.example.com")],
                "TURN_SERVER_URL",
            ),
            (&[("TURN_SERVER_URL", "turn:t:3478")], "TURN_USERNAME"),
            (&[("STUN_SERVER_1", "stun.l.google.com")], "STUN_SERVER_1"),
            (&[("MONGO_URI", "mongodb://x")], "DATABASE_URL"),
            (&[("NODE_ENV", "production")], "JWT_SECRET is not set"),
            (&[("NODE_ENV", "Production")], "JWT_SECRET is not set"),
            (&[("NODE_ENV", "prod")], "JWT_SECRET is not set"),
            (
                &[("NODE_ENV", "staging")],
                "NODE_ENV=\"staging\" is invalid",
            ),
            (&[("NODE_ENV", "produciton")], "NODE_ENV=\"produciton\""),
            (
                &[("RATE_LIMIT_SOCKET_CHAT", "10")],
                "RATE_LIMIT_SOCKET_CHAT=\"10\" is invalid: expected COUNT/PERIOD",
            ),
            (
                &[("RATE_LIMIT_IP_REST", "0/s")],
                "RATE_LIMIT_IP_REST=\"0/s\"",
            ),
            (
                &[("RATE_LIMIT_USER_JOIN", "5/week")],
                "RATE_LIMIT_USER_JOIN",
            ),
            (&[("TRUST_PROXY", "maybe")], "TRUST_PROXY=\"maybe\""),
            (&[("SFU_MODE_ENABLED", "maybe")], "SFU_MODE_ENABLED"),
            (
                &[
                    ("TURN_SERVER_URL", "turn:t:3478"),
                    ("TURN_SECRET", "s"),
                    ("TURN_CREDENTIAL_TTL", "10"),
                ],
                "TURN_CREDENTIAL_TTL=\"10\"",
            ),
            (&[("DATABASE_URL", "mysql://u:secret@h/db")], "u:***@h"),
            (
                &[("MEDIASOUP_ENABLE_TCP", "udp-only")],
                "MEDIASOUP_ENABLE_TCP=\"udp-only\" is invalid: expected true or false",
            ),
            (
                &[("MEDIASOUP_SINGLE_PORT", "ten-thousand")],
                "MEDIASOUP_SINGLE_PORT=\"ten-thousand\" is invalid: expected a port number from 1024 to 65535",
            ),
            (
                &[("MEDIASOUP_SINGLE_PORT", "80")],
                "MEDIASOUP_SINGLE_PORT=\"80\"",
            ),
            (
                &[("MEDIASOUP_SINGLE_PORT", "70000")],
                "MEDIASOUP_SINGLE_PORT=\"70000\"",
            ),
            (
                &[("MEDIASOUP_SINGLE_PORT", "0")],
                "MEDIASOUP_SINGLE_PORT=\"0\"",
            ),
            (
                &[("MEDIASOUP_SINGLE_PORT", "10000"), ("PORT", "10000")],
                "PORT=\"10000\" is invalid: expected a TCP port other than the SFU's media ports (10000)",
            ),
            (
                &[("MEDIASOUP_WORKERS", "2"), ("PORT", "10001")],
                "PORT=\"10001\"",
            ),
        ];
        for (pairs, needle) in cases {
            let err = cfg(pairs).expect_err("should be refused").to_string();
            assert!(err.contains(needle), "{pairs:?}: {err:?} lacks {needle:?}");
            assert!(!err.contains("secret@"), "password leaked: {err}");
        }
    }

    #[test]
    fn ice_tcp_on_by_default_and_one_port_mode_ignores_the_range() {
        let c = cfg(&[]).expect("defaults");
        assert!(c.sfu.enable_tcp);
        assert_eq!(c.sfu.single_port, None);
        for off in ["false", "0", "no", "OFF"] {
            assert!(
                !cfg(&[("MEDIASOUP_ENABLE_TCP", off)])
                    .expect("valid")
                    .sfu
                    .enable_tcp,
                "{off}"
            );
        }
        // Eight workers on one port: a range holding two ports is no longer too small.
        let c = cfg(&[
            ("MEDIASOUP_WORKERS", "8"),
            ("MEDIASOUP_MIN_PORT", "10000"),
            ("MEDIASOUP_MAX_PORT", "10001"),
            ("MEDIASOUP_SINGLE_PORT", "40000"),
        ])
        .expect("one-port mode needs no range");
        assert_eq!((c.sfu.workers, c.sfu.single_port), (8, Some(40_000)));
        assert_eq!(c.sfu.media_ports(), [40_000]);
        assert_eq!(c.sfu.media_ports_text(), "40000");
        let c = cfg(&[("MEDIASOUP_WORKERS", "4")]).expect("valid");
        assert_eq!(c.sfu.media_ports(), [10_000, 10_001, 10_002, 10_003]);
        assert_eq!(c.sfu.media_ports_text(), "10000-10003");
        // The HTTP port may equal a media port when ICE-TCP is off, or on another address.
        assert!(
            cfg(&[
                ("MEDIASOUP_SINGLE_PORT", "10000"),
                ("PORT", "10000"),
                ("MEDIASOUP_ENABLE_TCP", "false")
            ])
            .is_ok()
        );
        assert!(
            cfg(&[
                ("PORT", "10000"),
                ("HOST", "127.0.0.1"),
                ("MEDIASOUP_LISTEN_IP", "127.0.0.2")
            ])
            .is_ok()
        );
    }

    #[test]
    fn node_env_values() {
        for (v, env) in [
            ("development", NodeEnv::Development),
            ("DEV", NodeEnv::Development),
            ("test", NodeEnv::Test),
            ("Production", NodeEnv::Production),
            ("PROD", NodeEnv::Production),
        ] {
            let c = cfg(&[("NODE_ENV", v), ("JWT_SECRET", "0123456789abcdef0123")]).expect("valid");
            assert_eq!(c.node_env, env, "{v}");
            assert_eq!(c.is_production(), env == NodeEnv::Production, "{v}");
        }
        assert_eq!(cfg(&[]).expect("defaults").node_env, NodeEnv::Development);
    }

    #[test]
    fn rates_parse() {
        let r = |t| Rate::parse(t).expect(t).expect("a rate");
        assert_eq!(r("20/10s").count.get(), 20);
        assert_eq!(r("20/10s").per, Duration::from_secs(10));
        assert_eq!(r("30/min").per, Duration::from_secs(60));
        assert_eq!(r("5/s").per, Duration::from_secs(1));
        assert_eq!(r("100/2h").per, Duration::from_secs(7200));
        assert_eq!(Rate::parse("OFF"), Ok(None));
        for bad in [
            "", "10", "/s", "0/s", "x/s", "10/", "10/0s", "10/2d", "10/s/s", "-1/s",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad:?}");
        }
        let c = cfg(&[]).expect("defaults");
        assert_eq!(c.limits.socket_chat, Some(r("10/10s")));
        assert_eq!(c.trust_proxy, 0);
        let c = cfg(&[("RATE_LIMIT_IP_REST", "off"), ("TRUST_PROXY", "true")]).expect("valid");
        assert_eq!((c.limits.ip_rest, c.trust_proxy), (None, 1));
    }

    #[test]
    fn loopback_allowed_when_asked() {
        let c = cfg(&[
            ("MEDIASOUP_ANNOUNCED_IP", "127.0.0.1"),
            ("MEDIASOUP_ALLOW_LOOPBACK", "true"),
        ])
        .expect("allowed");
        assert_eq!(c.sfu.announced_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}
