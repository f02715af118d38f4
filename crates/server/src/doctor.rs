//! `meeting-service doctor`: the deployment guide's Troubleshooting section ("ICE
//! connection failed", "Transport state: failed", "Workers not starting") turned into
//! checks of the configuration and of this host, each printed with ✓ (pass), ! (pass,
//! with a note) or ✗ (fail) and, when something is wrong, the fix.
//!
//! Run it on the host (or in the container) that will run the service, before starting
//! it: a running service holds its own ports and would be reported as "port in use".
//! The exit code is 0 when nothing failed, 1 when a check failed and 2 when the
//! configuration itself is invalid.
//!
//! Each check is a plain function of a [`Config`], so tests build configurations with
//! [`Config::from_vars`] and call them one by one.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{AnnouncedIpSource, Config, DEV_JWT_SECRET, redact_url};

pub mod turn_probe;

/// How long a database or Redis round trip may take before it counts as unreachable.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    /// Passes, but the operator should read the note.
    Warn,
    Fail,
}

impl Status {
    pub fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        }
    }
}

/// One check's verdict.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about it (set for failures and warnings).
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }
    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn failed(&self) -> bool {
        self.status == Status::Fail
    }
}

/// What the operator tells the doctor about the host that the configuration cannot say.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The host cannot receive UDP from browsers (a PaaS such as Render, Heroku or
    /// Railway): media must be relayed by TURN over TCP or TLS. `--no-udp`, or detected
    /// from the platform's own variables (see [`platform_without_udp`]).
    pub no_udp: Option<String>,
}

/// The PaaS this process runs on, when that platform has no inbound UDP, from the
/// variables the platforms set themselves (`RENDER`, `DYNO`, `RAILWAY_ENVIRONMENT`).
pub fn platform_without_udp(get: impl Fn(&str) -> Option<String>) -> Option<&'static str> {
    [
        ("RENDER", "Render"),
        ("DYNO", "Heroku"),
        ("RAILWAY_ENVIRONMENT", "Railway"),
    ]
    .into_iter()
    .find(|(var, _)| get(var).is_some_and(|v| !v.trim().is_empty()))
    .map(|(_, name)| name)
}

#[derive(Debug)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.checks.iter().any(Check::failed)
    }

    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let _ = writeln!(out, "{} {}: {}", c.status.mark(), c.name, c.detail);
            if let Some(fix) = &c.fix {
                for (i, line) in fix.lines().enumerate() {
                    let _ = writeln!(out, "    {} {line}", if i == 0 { "fix:" } else { "    " });
                }
            }
        }
        let failed = self.checks.iter().filter(|c| c.failed()).count();
        let warned = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Warn)
            .count();
        let _ = writeln!(
            out,
            "\n{} checks: {} failed, {} with notes",
            self.checks.len(),
            failed,
            warned
        );
        out
    }
}

/// Every check, in the order of the guide's Troubleshooting section.
pub async fn run(config: &Config, opts: &Options) -> Report {
    let mut checks = vec![announced_ip(config), udp_ports(config)];
    let udp_ok = !checks.iter().any(Check::failed);
    checks.push(tcp_media_ports(config));
    checks.push(tcp_port(config));
    checks.push(turn(config, opts, udp_ok));
    if config.ice.turn.is_some() {
        let c = config.clone();
        let probe = tokio::task::spawn_blocking(move || turn_allocation(&c, NETWORK_TIMEOUT)).await;
        checks.push(probe.unwrap_or_else(|e| {
            Check::fail(
                "TURN credentials",
                format!("the probe crashed: {e}"),
                "Report this bug.",
            )
        }));
    }
    checks.push(database(config).await);
    checks.push(redis(config).await);
    checks.push(jwt_secret(config));
    Report { checks }
}

/// The `doctor` subcommand: reads the environment (and `.env`), prints the report.
pub fn main(no_udp_flag: bool) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            println!("✗ configuration: {e}");
            println!(
                "    fix: correct the variable named above (docs/configuration.md lists them all)"
            );
            return ExitCode::from(2);
        }
    };
    let no_udp = if no_udp_flag {
        Some("--no-udp was given".to_owned())
    } else {
        platform_without_udp(|v| std::env::var(v).ok())
            .map(|p| format!("running on {p}, which has no inbound UDP"))
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meeting-service doctor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("meeting-service doctor (NODE_ENV={})\n", config.node_env);
    let mut report = runtime.block_on(run(&config, &Options { no_udp }));
    // After Config::from_env, the process environment includes `.env`.
    report
        .checks
        .insert(0, variables(&config, std::env::vars()));
    print!("{}", report.render());
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

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

const ANNOUNCED_FIX: &str = "Set MEDIASOUP_ANNOUNCED_IP to this machine's LAN IP (`hostname -I | awk '{print $1}'`) \
or, behind NAT, its public IP; or configure TURN (TURN_SERVER_URL + TURN_SECRET) so media is relayed.";

/// "Check MEDIASOUP_ANNOUNCED_IP is correct public/LAN IP": present, not loopback, and
/// an address of this host, or a public address this host is NATed to.
pub fn announced_ip(config: &Config) -> Check {
    const NAME: &str = "announced IP (MEDIASOUP_ANNOUNCED_IP)";
    let ip = config.sfu.announced_ip;
    let source = match config.sfu.announced_ip_source {
        AnnouncedIpSource::Configured => "set",
        AnnouncedIpSource::Detected => "unset, detected",
        AnnouncedIpSource::LoopbackFallback => {
            return Check::fail(
                NAME,
                "unset, and this host has no non-loopback IPv4 address: only browsers on this machine can connect",
                ANNOUNCED_FIX,
            );
        }
    };
    if ip.is_loopback() {
        return Check::fail(
            NAME,
            format!(
                "{ip} ({source}) is loopback: remote browsers would send their media to themselves (allowed only by MEDIASOUP_ALLOW_LOOPBACK, for tests)"
            ),
            ANNOUNCED_FIX,
        );
    }
    if is_local_address(ip) {
        if is_private(ip) {
            return Check::pass(
                NAME,
                format!(
                    "{ip} ({source}) is an address of this host; it is private, so browsers outside this network need a public address or TURN"
                ),
            );
        }
        return Check::pass(
            NAME,
            format!("{ip} ({source}) is a public address of this host"),
        );
    }
    if is_private(ip) {
        return Check::fail(
            NAME,
            format!(
                "{ip} ({source}) is a private address but not one of this host's ({}): a typo or a stale LAN address",
                local_addresses_text()
            ),
            ANNOUNCED_FIX,
        );
    }
    Check::warn(
        NAME,
        format!(
            "{ip} ({source}) is not an address of this host: fine when it is the public IP of a 1:1 NAT in front of it (an AWS/GCP/Azure VM)"
        ),
        format!(
            "Make sure {ip} is this host's public IP and that the NAT forwards {} to it; otherwise set one of: {}",
            media_ports_forwarded(config),
            local_addresses_text()
        ),
    )
}

/// True when this host can bind `ip` (it is one of its interface addresses).
pub fn is_local_address(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local() || is_shared_v4(v4),
        IpAddr::V6(v6) => is_unique_local_v6(v6) || (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// 100.64.0.0/10, carrier-grade NAT.
fn is_shared_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    o[0] == 100 && (o[1] & 0xc0) == 64
}

fn is_unique_local_v6(ip: Ipv6Addr) -> bool {
    (ip.segments()[0] & 0xfe00) == 0xfc00
}

pub use crate::config::local_ipv4_addresses;

fn local_addresses_text() -> String {
    let ips = local_ipv4_addresses();
    if ips.is_empty() {
        "none found".to_owned()
    } else {
        ips.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The media ports as a NAT or firewall rule must let them in: `UDP 10000-10100 and TCP
/// 10000-10003`, or `UDP and TCP 10000` in one-port mode.
fn media_ports_forwarded(config: &Config) -> String {
    let s = &config.sfu;
    match (s.single_port, s.enable_tcp) {
        (Some(p), true) => format!("UDP and TCP {p}"),
        (Some(p), false) => format!("UDP {p}"),
        (None, true) => format!(
            "UDP {}-{} and TCP {}",
            s.min_port,
            s.max_port,
            s.media_ports_text()
        ),
        (None, false) => format!("UDP {}-{}", s.min_port, s.max_port),
    }
}

/// The ports of `config.sfu.media_ports()` that cannot be bound with `bind`, as
/// `port (error)` texts.
fn unbindable(config: &Config, bind: impl Fn(SocketAddr) -> std::io::Result<()>) -> Vec<String> {
    config
        .sfu
        .media_ports()
        .into_iter()
        .filter_map(|port| {
            bind(SocketAddr::new(config.sfu.listen_ip, port))
                .err()
                .map(|e| format!("{port} ({e})"))
        })
        .collect()
}

fn list_busy(busy: &[String]) -> String {
    let first: Vec<&str> = busy.iter().take(5).map(String::as_str).collect();
    format!(
        "{}{}",
        first.join(", "),
        if busy.len() > 5 { ", …" } else { "" }
    )
}

/// "Verify UDP ports are open": worker `i` binds `MEDIASOUP_LISTEN_IP:MEDIASOUP_MIN_PORT + i`;
/// every one of them must be free, and the range must hold one per worker. In one-port
/// mode (`MEDIASOUP_SINGLE_PORT`) every worker shares that one port, which must be free.
pub fn udp_ports(config: &Config) -> Check {
    const NAME: &str = "UDP media ports";
    let s = &config.sfu;
    if let Some(port) = s.single_port {
        let busy = unbindable(config, |a| UdpSocket::bind(a).map(drop));
        if !busy.is_empty() {
            return Check::fail(
                NAME,
                format!(
                    "the one port of MEDIASOUP_SINGLE_PORT cannot be bound on {}: {}",
                    s.listen_ip,
                    list_busy(&busy)
                ),
                format!(
                    "Another process holds it (is meeting-service already running? `ss -ulpn 'sport = :{port}'`), or MEDIASOUP_LISTEN_IP is not an address of this host; \
                     choose another MEDIASOUP_SINGLE_PORT."
                ),
            );
        }
        return Check::pass(
            NAME,
            format!(
                "one-port mode: {} workers share UDP {}:{port} (MEDIASOUP_SINGLE_PORT; MEDIASOUP_MIN_PORT/MAX_PORT unused); the firewall must let it in: `sudo ufw allow {port}/udp`",
                s.workers, s.listen_ip
            ),
        );
    }
    let available = usize::from(s.max_port.saturating_sub(s.min_port)) + 1;
    let last = u32::from(s.min_port) + s.workers as u32 - 1;
    if s.workers > available || last > u32::from(u16::MAX) {
        return Check::fail(
            NAME,
            format!(
                "{} workers need {} ports but {}-{} holds {available}",
                s.workers, s.workers, s.min_port, s.max_port
            ),
            "Raise MEDIASOUP_MAX_PORT or lower MEDIASOUP_WORKERS, or set MEDIASOUP_SINGLE_PORT (one port shared by every worker).",
        );
    }
    let busy = unbindable(config, |a| UdpSocket::bind(a).map(drop));
    if !busy.is_empty() {
        return Check::fail(
            NAME,
            format!(
                "{} of the {} worker ports on {} cannot be bound: {}",
                busy.len(),
                s.workers,
                s.listen_ip,
                list_busy(&busy)
            ),
            format!(
                "Another process holds them (is meeting-service already running? `ss -ulpn 'sport >= :{}'`), or MEDIASOUP_LISTEN_IP is not an address of this host; \
                 pick a free range with MEDIASOUP_MIN_PORT/MEDIASOUP_MAX_PORT.",
                s.min_port
            ),
        );
    }
    Check::pass(
        NAME,
        format!(
            "{} workers bind UDP {}:{}-{} (range {}-{} holds {available}); the firewall must let them in: `sudo ufw allow {}:{}/udp`",
            s.workers,
            s.listen_ip,
            s.min_port,
            last,
            s.min_port,
            s.max_port,
            s.min_port,
            s.max_port
        ),
    )
}

/// ICE-TCP (`MEDIASOUP_ENABLE_TCP`, on by default): every worker also listens on TCP at
/// its UDP port (or all share the one TCP port in one-port mode); each must be free.
pub fn tcp_media_ports(config: &Config) -> Check {
    const NAME: &str = "TCP media ports (ICE-TCP)";
    let s = &config.sfu;
    if !s.enable_tcp {
        return Check::pass(
            NAME,
            "off (MEDIASOUP_ENABLE_TCP=false): browsers on networks that block UDP need TURN",
        );
    }
    let ports = s.media_ports_text();
    let busy = unbindable(config, |a| TcpListener::bind(a).map(drop));
    if !busy.is_empty() {
        let what = if s.single_port.is_some() {
            "the one port of MEDIASOUP_SINGLE_PORT".to_owned()
        } else {
            format!("{} of the {} worker ports", busy.len(), s.workers)
        };
        let choose = if s.single_port.is_some() {
            "choose another MEDIASOUP_SINGLE_PORT"
        } else {
            "pick a free range with MEDIASOUP_MIN_PORT/MEDIASOUP_MAX_PORT"
        };
        return Check::fail(
            NAME,
            format!(
                "{what} cannot be bound on TCP {}: {}",
                s.listen_ip,
                list_busy(&busy)
            ),
            format!(
                "Another process listens there (`ss -tlpn 'sport >= :{}'`; is meeting-service already running?), or MEDIASOUP_LISTEN_IP is not an address of this host; \
                 {choose}, or set MEDIASOUP_ENABLE_TCP=false to offer UDP only.",
                s.media_ports()[0]
            ),
        );
    }
    let ufw = if s.single_port.is_some() {
        format!("{ports}/tcp")
    } else {
        format!("{}:{}/tcp", s.min_port, s.max_port)
    };
    Check::pass(
        NAME,
        format!(
            "{} workers listen on TCP {}:{ports} for browsers whose network blocks UDP; the firewall must let them in: `sudo ufw allow {ufw}`",
            s.workers, s.listen_ip
        ),
    )
}

/// The HTTP/Socket.IO port (`HOST:PORT`, TCP) is free.
pub fn tcp_port(config: &Config) -> Check {
    const NAME: &str = "HTTP port (HOST:PORT, TCP)";
    match TcpListener::bind(config.listen) {
        Ok(_) => Check::pass(NAME, format!("{} can be bound", config.listen)),
        Err(e) => Check::fail(
            NAME,
            format!("cannot bind {}: {e}", config.listen),
            format!(
                "Stop the process holding it (`ss -tlpn 'sport = :{}'`) or choose another PORT; HOST must be an address of this host or 0.0.0.0.",
                config.listen.port()
            ),
        ),
    }
}

/// "Check TURN server credentials" / "Enable TURN server for relay": when the host
/// declares no UDP path, TURN over TCP or TLS is required; any TURN URL must be well formed.
pub fn turn(config: &Config, opts: &Options, udp_checks_passed: bool) -> Check {
    const NAME: &str = "TURN relay";
    let no_udp_reason = if let Some(r) = &opts.no_udp {
        Some(r.clone())
    } else if config.sfu.announced_ip.is_loopback()
        || config.sfu.announced_ip_source == AnnouncedIpSource::LoopbackFallback
    {
        Some("the announced IP is loopback".to_owned())
    } else if !udp_checks_passed {
        Some("the announced IP or the UDP ports failed their checks".to_owned())
    } else {
        None
    };
    let Some(turn) = &config.ice.turn else {
        return match no_udp_reason {
            Some(why) => Check::fail(
                NAME,
                format!(
                    "no TURN server configured and no direct UDP path ({why}): browsers cannot reach the media"
                ),
                "Set TURN_SERVER_URL=turns:turn.example.com:5349,turn:turn.example.com:3478?transport=tcp and TURN_SECRET \
                 (the static-auth-secret of a coturn with use-auth-secret; see deploy/turnserver.conf), \
                 or TURN_USERNAME/TURN_CREDENTIAL of a managed TURN service.",
            ),
            None => Check::pass(
                NAME,
                "not configured; direct UDP is declared (browsers on networks that block UDP will still need TURN)",
            ),
        };
    };
    let mut bad = Vec::new();
    let mut tcp_capable = false;
    for url in &turn.urls {
        match parse_turn_url(url) {
            Ok(u) => tcp_capable |= u.secure || u.transport == Some("tcp"),
            Err(why) => bad.push(format!("{url}: {why}")),
        }
    }
    if !bad.is_empty() {
        return Check::fail(
            NAME,
            format!("malformed TURN_SERVER_URL: {}", bad.join("; ")),
            "Use turn:host:port[?transport=udp|tcp] or turns:host:port[?transport=tcp], comma-separated, e.g. \
             turn:turn.example.com:3478?transport=udp,turns:turn.example.com:5349",
        );
    }
    if let Some(why) = &no_udp_reason
        && !tcp_capable
    {
        return Check::fail(
            NAME,
            format!(
                "no direct UDP path ({why}) but every TURN URL is TURN over UDP: browsers behind the same UDP block cannot reach it"
            ),
            "Add a TURN URL over TCP or TLS: turn:host:3478?transport=tcp or turns:host:5349.",
        );
    }
    let creds = match (&turn.secret, &turn.username) {
        (Some(_), _) => format!(
            "ephemeral per-participant credentials (TURN_SECRET, valid {} s)",
            turn.credential_ttl.as_secs()
        ),
        (None, Some(_)) => "static TURN_USERNAME/TURN_CREDENTIAL".to_owned(),
        (None, None) => "no credentials".to_owned(),
    };
    let detail = format!(
        "{} ({creds}){}",
        turn.urls.join(", "),
        if no_udp_reason.is_some() {
            "; media will be relayed"
        } else {
            ""
        }
    );
    if let Some(why) = &no_udp_reason
        && config.sfu_mode_enabled
    {
        return Check::warn(
            NAME,
            format!("{detail}; but SFU_MODE_ENABLED=true and there is no direct UDP path ({why})"),
            format!(
                "A TURN server relays to the SFU over UDP: SFU meetings work only if it can reach UDP {} on {} (e.g. coturn in the same private network, with allowed-peer-ip). Otherwise set SFU_MODE_ENABLED=false: mesh meetings, relayed browser to browser by TURN.",
                config.sfu.media_ports_text(),
                config.sfu.announced_ip
            ),
        );
    }
    if turn.secret.is_none() {
        return Check::warn(
            NAME,
            detail,
            "The static TURN password reaches every browser; prefer TURN_SECRET with a coturn configured `use-auth-secret` (deploy/turnserver.conf).",
        );
    }
    Check::pass(NAME, detail)
}

/// "Check TURN server credentials": allocates a relay on every `turn:` URL with the
/// credentials a browser would get (minted from `TURN_SECRET`, or the static pair), and
/// releases it. Blocking; `turns:` (TLS) URLs are not probed.
pub fn turn_allocation(config: &Config, timeout: Duration) -> Check {
    const NAME: &str = "TURN credentials";
    let Some(turn) = &config.ice.turn else {
        return Check::pass(NAME, "no TURN server configured");
    };
    let (username, password) = match (&turn.secret, &turn.username, &turn.credential) {
        (Some(secret), _, _) => {
            let c = crate::ice::turn_rest_credentials(
                secret,
                "meeting-service-doctor",
                std::time::SystemTime::now(),
                turn.credential_ttl,
            );
            (c.username, c.credential)
        }
        (None, Some(u), Some(p)) => (u.clone(), p.clone()),
        _ => {
            return Check::fail(
                NAME,
                "TURN_SERVER_URL without credentials",
                "Set TURN_SECRET, or TURN_USERNAME and TURN_CREDENTIAL.",
            );
        }
    };
    let mut ok = Vec::new();
    let mut skipped = Vec::new();
    let mut refused = Vec::new();
    let mut failed = Vec::new();
    for url in &turn.urls {
        let Ok(u) = parse_turn_url(url) else { continue }; // reported by the TURN relay check
        if u.secure {
            skipped.push(url.as_str());
            continue;
        }
        let transport = if u.transport == Some("tcp") {
            turn_probe::Transport::Tcp
        } else {
            turn_probe::Transport::Udp
        };
        match turn_probe::probe(
            u.host,
            u.port.unwrap_or(3478),
            transport,
            &username,
            &password,
            timeout,
        ) {
            turn_probe::ProbeResult::Allocated { relayed } => {
                ok.push(format!(
                    "{url} (relay {})",
                    relayed.map_or_else(|| "?".to_owned(), |a| a.to_string())
                ));
            }
            turn_probe::ProbeResult::Refused { code, reason } => {
                refused.push(format!("{url}: {code} {reason}"))
            }
            turn_probe::ProbeResult::Failed(why) => failed.push(format!("{url}: {why}")),
        }
    }
    let mode = if turn.secret.is_some() {
        "ephemeral credentials minted with TURN_SECRET"
    } else {
        "TURN_USERNAME/TURN_CREDENTIAL"
    };
    if !refused.is_empty() {
        let fix = if turn.secret.is_some() {
            "The TURN server does not accept credentials minted with TURN_SECRET: give coturn `use-auth-secret` and `static-auth-secret=<TURN_SECRET>` (deploy/turnserver.conf), and keep both clocks in sync (the username carries an expiry)."
        } else {
            "The TURN server refuses TURN_USERNAME/TURN_CREDENTIAL: check them with your TURN provider."
        };
        return Check::fail(NAME, format!("refused {mode}: {}", refused.join("; ")), fix);
    }
    if !failed.is_empty() {
        return Check::fail(
            NAME,
            format!("no allocation: {}", failed.join("; ")),
            "Check the TURN host and port, and that its firewall lets in 3478/udp and 3478/tcp (5349/tcp for turns:) from this host.",
        );
    }
    if ok.is_empty() {
        return Check::warn(
            NAME,
            format!("not probed: only TLS URLs ({})", skipped.join(", ")),
            "Test TLS TURN from a browser (e.g. the Trickle ICE page).",
        );
    }
    let mut detail = format!("allocated a relay with {mode}: {}", ok.join(", "));
    if !skipped.is_empty() {
        let _ = write!(detail, "; not probed (TLS): {}", skipped.join(", "));
    }
    Check::pass(NAME, detail)
}

/// A TURN URL (RFC 7065), as far as the doctor needs it.
#[derive(Debug, PartialEq, Eq)]
pub struct TurnUrl<'a> {
    pub secure: bool,
    pub host: &'a str,
    pub port: Option<u16>,
    pub transport: Option<&'static str>,
}

/// Parses `turn:host[:port][?transport=udp|tcp]` / `turns:…`; the error says what is wrong.
pub fn parse_turn_url(url: &str) -> Result<TurnUrl<'_>, String> {
    let (secure, rest) = if let Some(r) = url.strip_prefix("turns:") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("turn:") {
        (false, r)
    } else {
        return Err("the scheme must be turn: or turns:".into());
    };
    if rest.starts_with("//") {
        return Err("no // after the scheme (turn:host:port, not turn://host:port)".into());
    }
    let (hostport, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed [ in an IPv6 host")?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(p.strip_prefix(':').ok_or("expected :port after ]")?),
            ),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(format!("bad host {host:?}"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("bad port {p:?}")),
        },
    };
    let transport = match query {
        None => None,
        Some("transport=udp") if secure => {
            return Err("turns: runs over TLS, i.e. TCP: transport=udp is impossible".into());
        }
        Some("transport=udp") => Some("udp"),
        Some("transport=tcp") => Some("tcp"),
        Some(q) => {
            return Err(format!(
                "unknown query {q:?} (only transport=udp or transport=tcp)"
            ));
        }
    };
    Ok(TurnUrl {
        secure,
        host,
        port,
        transport,
    })
}

/// The meeting store answers (PostgreSQL), or the SQLite file can be opened or created.
pub async fn database(config: &Config) -> Check {
    const NAME: &str = "database (DATABASE_URL)";
    let url = &config.database_url;
    let shown = redact_url(url);
    if url.starts_with("sqlite:") {
        return sqlite(NAME, url);
    }
    let attempt = async {
        use sqlx::Connection as _;
        let mut conn = sqlx::postgres::PgConnection::connect(url).await?;
        sqlx::query("SELECT 1").execute(&mut conn).await?;
        conn.close().await
    };
    let fix = "Start PostgreSQL or correct DATABASE_URL (host, port, user, password, database); \
               unset DATABASE_URL to use the built-in SQLite file instead.";
    match tokio::time::timeout(NETWORK_TIMEOUT, attempt).await {
        Ok(Ok(())) => Check::pass(NAME, format!("{shown} answers")),
        Ok(Err(e)) => Check::fail(
            NAME,
            format!("{shown}: {}", scrub(&e.to_string(), url)),
            fix,
        ),
        Err(_) => Check::fail(
            NAME,
            format!("{shown}: no answer within {} s", NETWORK_TIMEOUT.as_secs()),
            fix,
        ),
    }
}

fn sqlite(name: &'static str, url: &str) -> Check {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    if path.is_empty() || path == ":memory:" {
        return Check::warn(
            name,
            "in-memory SQLite: meetings are lost at every restart",
            "Set DATABASE_URL=sqlite://./data/meetings.db or a PostgreSQL URL.",
        );
    }
    let path = Path::new(path);
    let fix = format!(
        "Make {} writable by the service's user, or point DATABASE_URL elsewhere.",
        path.parent().map_or(path, |p| p).display()
    );
    if path.exists() {
        return match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
        {
            Ok(_) => Check::pass(
                name,
                format!("SQLite file {} exists and is writable", path.display()),
            ),
            Err(e) => Check::fail(name, format!("SQLite file {}: {e}", path.display()), fix),
        };
    }
    // Not there yet: the service creates it (and its directory). Probe the nearest
    // existing ancestor directory with a file of our own, removed at once.
    let mut dir: PathBuf = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.as_os_str().is_empty() {
        dir = PathBuf::from(".");
    }
    let mut guard = 0;
    while !dir.exists() && guard < 64 {
        dir = dir
            .parent()
            .map(Path::to_path_buf)
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        guard += 1;
    }
    let probe = dir.join(format!(".meeting-service-doctor-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Check::pass(
                name,
                format!(
                    "SQLite file {} will be created (in {}, which is writable)",
                    path.display(),
                    dir.display()
                ),
            )
        }
        Err(e) => Check::fail(
            name,
            format!(
                "SQLite file {} cannot be created: {} is not writable ({e})",
                path.display(),
                dir.display()
            ),
            fix,
        ),
    }
}

/// Removes the password of `url` from a driver's error text, should it quote it.
fn scrub(message: &str, url: &str) -> String {
    let mut out = message.to_owned();
    if let (Some(scheme), Some(at)) = (url.find("://"), url.rfind('@'))
        && at > scheme
        && let Some((_, password)) = url[scheme + 3..at].split_once(':')
        && !password.is_empty()
    {
        out = out.replace(password, "***");
    }
    out
}

/// Redis (multi-node live state) answers PING, when configured.
pub async fn redis(config: &Config) -> Check {
    const NAME: &str = "Redis (REDIS_URL)";
    let Some(url) = &config.redis_url else {
        return Check::pass(
            NAME,
            "not set: a single node, live state kept in this process",
        );
    };
    let shown = redact_url(url);
    let fix = "Start Redis or correct REDIS_URL (redis://[:password@]host:6379); unset it to run a single node.";
    let client = match redis::Client::open(url.as_str()) {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{shown}: {}", scrub(&e.to_string(), url)),
                fix,
            );
        }
    };
    let ping = async {
        let mut con = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut con).await
    };
    match tokio::time::timeout(NETWORK_TIMEOUT, ping).await {
        Ok(Ok(_)) => Check::pass(NAME, format!("{shown} answers PING")),
        Ok(Err(e)) => Check::fail(
            NAME,
            format!("{shown}: {}", scrub(&e.to_string(), url)),
            fix,
        ),
        Err(_) => Check::fail(
            NAME,
            format!("{shown}: no answer within {} s", NETWORK_TIMEOUT.as_secs()),
            fix,
        ),
    }
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
