//! The media settings: the SFU workers' `MEDIASOUP_*` (ports, announced address, ICE-TCP,
//! one-port mode) and the STUN/TURN servers handed to browsers.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::vars::{Vars, invalid};
use super::{ConfigError, ConfigWarning};

/// Default of `TURN_CREDENTIAL_TTL`: one day, the lifetime the TURN REST API draft
/// suggests. A browser keeps the credentials it got at join for every refresh of its
/// TURN allocation, so they must outlive the longest call; a leaked pair is still
/// bounded to one day and one user id.
pub const DEFAULT_TURN_CREDENTIAL_TTL: Duration = Duration::from_secs(86_400);

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
    /// `MEDIASOUP_BANDWIDTH_ESTIMATION`: str0m's bandwidth estimation on every
    /// connection, capping each subscriber's simulcast layers.
    pub bandwidth_estimation: bool,
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

pub(super) fn ice_config(
    vars: &Vars,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<IceConfig, ConfigError> {
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
            for given in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
                let u = turn_url(given).ok_or_else(|| {
                    invalid(
                        "TURN_SERVER_URL",
                        given,
                        "turn:host:port or turns:host:port (comma-separated for several)",
                    )
                })?;
                if u != given {
                    warnings.push(ConfigWarning::TurnUrlNormalised {
                        given: given.to_owned(),
                        used: u.clone(),
                    });
                }
                urls.push(u);
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

/// A TURN URL as browsers take it (`turn:host:port`, `turns:host:port`, RFC 7065), from
/// that or the seed's `turns://host:5349` spelling (whose `//` Chromium refuses: it throws
/// on the whole `RTCPeerConnection` configuration). `None` when it is neither.
fn turn_url(given: &str) -> Option<String> {
    let (scheme, rest) = given
        .split_once(':')
        .filter(|(s, _)| matches!(*s, "turn" | "turns"))?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.starts_with('/') || rest.contains('/') || rest.contains('@') {
        return None;
    }
    Some(format!("{scheme}:{rest}"))
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

pub(super) fn sfu_settings(
    vars: &Vars,
    sfu_mode_enabled: bool,
) -> Result<SfuSettings, ConfigError> {
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
    let bandwidth_estimation = vars.bool("MEDIASOUP_BANDWIDTH_ESTIMATION", true)?;
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
        bandwidth_estimation,
    })
}

/// This host's non-loopback IPv4 addresses: the SFU's function (one detector for both).
pub use meeting_sfu::local_ipv4_addresses;
