//! Configuration: every setting comes from the environment (and an optional `.env`),
//! with the names and meanings of the Node.js service's deployment guide.
//!
//! [`Config::from_vars`] takes the variables as a list so that tests can feed values
//! without touching the process environment. Every bad value is a [`ConfigError`] that
//! names the variable, the value and what was expected; `docs/configuration.md` is the
//! prose version of this file.

//!
//! - this file: [`Config`] and the settings of the process itself (environment, listen
//!   address, token secret, meetings, Redis, CORS, database);
//! - `vars.rs`: the variables as read, the list of known names, the error helper;
//! - `media.rs`: the SFU's `MEDIASOUP_*` settings and the STUN/TURN list;
//! - `limits.rs`: `RATE_LIMIT_*` and `TRUST_PROXY`.

mod limits;
mod media;
mod observe;
mod vars;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::auth::ClaimNames;
pub use limits::{RATE_LIMIT_DEFAULTS, Rate, RateLimits};
use limits::{rate_limits, trust_proxy};
pub use media::{
    AnnouncedIpSource, DEFAULT_TURN_CREDENTIAL_TTL, IceConfig, SfuSettings, TurnConfig,
    local_ipv4_addresses,
};
use media::{ice_config, sfu_settings};
use observe::observe_settings;
pub use observe::{LogFormat, ObserveSettings};
pub use vars::{KNOWN_VARS, is_known_var};
use vars::{Vars, invalid};

/// Used when `JWT_SECRET` is unset outside production. Public, hence refused in production.
pub const DEV_JWT_SECRET: &str = "meeting-service-development-secret-do-not-use-in-production";

/// Where recordings go when `RECORDINGS_DIR` is unset.
pub const DEFAULT_RECORDINGS_DIR: &str = "./data/recordings";

/// Where meetings live when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/meetings.db";

/// The whole configuration, validated.
#[derive(Clone, Debug)]
pub struct Config {
    /// `NODE_ENV`; production removes the guest-token endpoint and requires `JWT_SECRET`.
    pub node_env: NodeEnv,
    pub listen: SocketAddr,
    pub jwt_secret: String,
    /// True when `JWT_SECRET` was unset and the public development secret is in use.
    pub jwt_secret_is_default: bool,
    /// `JWT_USER_CLAIM`, `JWT_NAME_CLAIM`: where tokens carry the user id and name.
    pub jwt_claims: ClaimNames,
    /// How long an active meeting may stay empty before it ends by itself.
    pub meeting_ttl: Duration,
    /// `RECONNECT_GRACE_SECONDS`: how long a connection that dropped (no close from the
    /// client) keeps its place for `resume-meeting` before it leaves as today.
    pub reconnect_grace: Duration,
    /// `DRAIN_TIMEOUT_SECONDS`: after SIGTERM, how long the node waits for its
    /// participants to move (to another node, or to the restarted process) before it
    /// exits anyway.
    pub drain_timeout: Duration,
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
    /// Metrics, log format and webhooks (`METRICS_*`, `LOG_FORMAT`, `WEBHOOK_*`).
    pub observe: ObserveSettings,
    /// Values accepted as they are in the seed's `.env` but worth the operator's
    /// attention; logged at start (and shown by `doctor`).
    pub warnings: Vec<ConfigWarning>,
    /// `RECORDINGS_DIR`: where recordings are written (`recording`); created and checked
    /// for writing at start-up.
    pub recordings_dir: std::path::PathBuf,
    /// `RECORDING_AUTO_COMPOSE`: compose every recording into one file when it stops
    /// (the system's ffmpeg, checked at start-up).
    pub recording_auto_compose: bool,
}

/// A value the service accepts, with a warning, because the seed's `.env` and its Render
/// values use it: refusing them would stop an existing deployment from starting.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigWarning {
    #[error(
        "TURN_SERVER_URL={given:?}: browsers want no `//` after the scheme (RFC 7065); using {used:?}"
    )]
    TurnUrlNormalised { given: String, used: String },
    #[error(
        "JWT_SECRET is {len} characters long: fine for development, refused in production \
         (at least {MIN_PRODUCTION_SECRET} there; e.g. `openssl rand -hex 32`)"
    )]
    ShortJwtSecret { len: usize },
    #[error(
        "{var}={value:?} is the deployment guide's placeholder, not an address: ignored \
         (refused in production). Set it to a real URL or remove the line."
    )]
    PlaceholderIgnored { var: &'static str, value: String },
}

/// Shortest `JWT_SECRET` accepted in production (a guessable HS256 secret lets anyone
/// mint tokens). Shorter ones, like the seed's `your-secret-key`, only warn in
/// development, where the platform's auth service signs with that same secret.
pub const MIN_PRODUCTION_SECRET: usize = 16;

/// A value copied from the deployment guide's templates (`redis://...`,
/// `<redis-cloud-uri>`) rather than an address.
fn is_placeholder(value: &str) -> bool {
    value.contains("...") || (value.starts_with('<') && value.ends_with('>'))
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

/// `RECONNECT_GRACE_SECONDS` when unset: long enough for a page to notice a dead
/// connection (Engine.IO heartbeat, 8 s) and reconnect with backoff.
pub const DEFAULT_RECONNECT_GRACE_SECS: u64 = 20;

/// `DRAIN_TIMEOUT_SECONDS` when unset: the pages reconnect at once on `server-draining`
/// (within a second), so a node is usually empty in a few seconds; this bounds a page
/// that never answers. Below the 30 s most orchestrators wait before a SIGKILL.
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 15;

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

        let mut warnings = Vec::new();
        let (jwt_secret, jwt_secret_is_default) = match vars.get("JWT_SECRET") {
            Some(s) if production && (s.len() < MIN_PRODUCTION_SECRET || is_placeholder(s)) => {
                return Err(invalid(
                    "JWT_SECRET",
                    "<hidden>",
                    format!(
                        "in production, a secret of at least {MIN_PRODUCTION_SECRET} characters that is not a template's placeholder \
                         (e.g. `openssl rand -hex 32`)"
                    ),
                ));
            }
            Some(s) => {
                if s.len() < MIN_PRODUCTION_SECRET {
                    warnings.push(ConfigWarning::ShortJwtSecret { len: s.len() });
                }
                (s.to_owned(), false)
            }
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
        let grace_secs: u64 = vars.parse(
            "RECONNECT_GRACE_SECONDS",
            DEFAULT_RECONNECT_GRACE_SECS,
            "a whole number of seconds from 0 to 3600, e.g. 20",
        )?;
        if grace_secs > 3600 {
            return Err(invalid(
                "RECONNECT_GRACE_SECONDS",
                &grace_secs.to_string(),
                "a whole number of seconds from 0 to 3600, e.g. 20",
            ));
        }
        let drain_secs: u64 = vars.parse(
            "DRAIN_TIMEOUT_SECONDS",
            DEFAULT_DRAIN_TIMEOUT_SECS,
            "a whole number of seconds from 1 to 600, e.g. 15",
        )?;
        if !(1..=600).contains(&drain_secs) {
            return Err(invalid(
                "DRAIN_TIMEOUT_SECONDS",
                &drain_secs.to_string(),
                "a whole number of seconds from 1 to 600, e.g. 15",
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

        let jwt_claims = ClaimNames::new(
            claim_name("JWT_USER_CLAIM", vars.get("JWT_USER_CLAIM"))?,
            claim_name("JWT_NAME_CLAIM", vars.get("JWT_NAME_CLAIM"))?,
        );

        let ice = ice_config(&vars, &mut warnings)?;
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
            Some(u) if is_placeholder(u) && !production => {
                warnings.push(ConfigWarning::PlaceholderIgnored {
                    var: "REDIS_URL",
                    value: u.to_owned(),
                });
                None
            }
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

        let observe = observe_settings(&vars, port)?;
        let recordings_dir = vars.get("RECORDINGS_DIR").unwrap_or(DEFAULT_RECORDINGS_DIR);
        if recordings_dir.contains('\0') || recordings_dir.trim() != recordings_dir {
            return Err(invalid(
                "RECORDINGS_DIR",
                recordings_dir,
                "a directory path without leading or trailing spaces",
            ));
        }
        let recordings_dir = std::path::PathBuf::from(recordings_dir);
        let recording_auto_compose = vars.bool("RECORDING_AUTO_COMPOSE", false)?;

        Ok(Config {
            observe,
            node_env,
            listen: SocketAddr::new(host, port),
            jwt_secret,
            jwt_secret_is_default,
            jwt_claims,
            meeting_ttl: Duration::from_secs(ttl_secs),
            reconnect_grace: Duration::from_secs(grace_secs),
            drain_timeout: Duration::from_secs(drain_secs),
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
            warnings,
            recordings_dir,
            recording_auto_compose,
        })
    }

    pub fn is_production(&self) -> bool {
        self.node_env == NodeEnv::Production
    }
}

/// `JWT_USER_CLAIM` / `JWT_NAME_CLAIM`: the name of a top-level claim.
fn claim_name<'a>(var: &str, value: Option<&'a str>) -> Result<Option<&'a str>, ConfigError> {
    match value {
        None => Ok(None),
        Some(v) if v.len() <= 64 && !v.chars().any(|c| c.is_whitespace() || c == '.') => {
            Ok(Some(v))
        }
        Some(v) => Err(invalid(
            var,
            v,
            "the name of a top-level claim of the token, e.g. userId (at most 64 characters, no spaces or dots)",
        )),
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
mod tests;
