//! Checks of TURN: a relay is configured where the host has no UDP path, its URLs are
//! well formed, and (with [`super::turn_probe`]) the credentials get an allocation.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Check, Options, turn_probe};
use crate::config::{AnnouncedIpSource, Config};

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
