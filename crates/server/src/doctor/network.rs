//! Checks of this host's network: the announced address is one browsers can reach, the
//! media ports (UDP, and TCP for ICE-TCP) and the HTTP port are free.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};

use super::Check;
use crate::config::{AnnouncedIpSource, Config};

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
