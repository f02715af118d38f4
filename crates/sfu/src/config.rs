//! [`SfuConfig`], how the engine runs, and the detection of the address to announce.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::time::Duration;

/// How the engine runs. Built by the server from `MEDIASOUP_*` variables; use
/// [`SfuConfig::new`] or `..SfuConfig::default()` so that added fields do not break you.
#[derive(Clone, Debug)]
pub struct SfuConfig {
    /// Worker threads (0: one per core); worker `i` binds `listen_ip:min_port + i` (UDP).
    pub workers: usize,
    pub min_port: u16,
    pub max_port: u16,
    /// Address the sockets bind to (0.0.0.0 in production, 127.0.0.1 in tests).
    pub listen_ip: IpAddr,
    /// Address put in ICE candidates (`MEDIASOUP_ANNOUNCED_IP`).
    pub announced_ip: IpAddr,
    /// Allow a loopback `announced_ip`. Off by default because browsers on other machines
    /// (and Firefox even on this one) cannot reach 127.0.0.1: only for local tests.
    pub allow_loopback_announced: bool,
    /// A participant without ICE + DTLS this long after joining is removed
    /// (`GoneReason::ConnectTimeout`).
    pub connect_timeout: Duration,
    /// A participant whose ICE stays disconnected this long is removed
    /// (`GoneReason::ConnectionLost`); shorter gaps (Wi-Fi roaming) are ridden out.
    pub reconnect_timeout: Duration,
    /// ICE-TCP: each worker also listens on TCP at its UDP port and offers a passive TCP
    /// candidate (RFC 6544, framed per RFC 4571), for clients whose UDP is blocked.
    pub tcp: bool,
    /// An ICE-TCP connection that has not completed ICE (delivered a STUN request with
    /// valid credentials for one of the worker's participants) this long after it was
    /// accepted is closed, whatever it sends: each worker keeps at most 1,024
    /// connections, and one that never authenticates must not hold a slot.
    pub tcp_handshake_timeout: Duration,
    /// One-port mode: every worker shares this one UDP port (and TCP port, with `tcp`)
    /// instead of `min_port + i`; a demultiplexer thread hands each datagram to the
    /// worker that owns its sender. `min_port`/`max_port` are then unused.
    pub single_port: Option<u16>,
    /// Per-stream statistics from str0m (NACKs, receiver reports' loss and RTT) for the
    /// metrics; off when the server's metrics are (`METRICS_ENABLED=false`).
    pub media_stats: bool,
    /// Bandwidth estimation (TWCC with padding probes) on every connection, which caps
    /// each subscriber's simulcast layers (docs/sfu.md, "Allocation"). Off: tile sizes
    /// and the gallery rule still choose layers, with no bandwidth limit.
    pub bandwidth_estimation: bool,
}

impl SfuConfig {
    pub fn new(
        workers: usize,
        min_port: u16,
        max_port: u16,
        listen_ip: IpAddr,
        announced_ip: IpAddr,
    ) -> Self {
        SfuConfig {
            workers,
            min_port,
            max_port,
            listen_ip,
            announced_ip,
            ..SfuConfig::default()
        }
    }
}

impl Default for SfuConfig {
    /// The seed's defaults: ports 10000-10100, one worker per core, all interfaces, and
    /// this host's first non-loopback IPv4 address announced ([`detect_announced_ip`]).
    fn default() -> Self {
        SfuConfig {
            workers: 0,
            min_port: 10000,
            max_port: 10100,
            listen_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            announced_ip: detect_announced_ip().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            allow_loopback_announced: false,
            connect_timeout: Duration::from_secs(30),
            reconnect_timeout: Duration::from_secs(15),
            tcp: true,
            tcp_handshake_timeout: Duration::from_secs(10),
            single_port: None,
            media_stats: true,
            bandwidth_estimation: true,
        }
    }
}

/// The address to announce when `MEDIASOUP_ANNOUNCED_IP` is unset: this host's first
/// non-loopback IPv4 address. On Linux it is read from the kernel's routing trie
/// ([`local_ipv4_addresses`], no traffic); elsewhere the OS is asked which source
/// address it would use for a public destination (a UDP `connect` sends nothing). The
/// server's configuration uses this one detector too.
pub fn detect_announced_ip() -> Option<IpAddr> {
    if std::path::Path::new("/proc/net/fib_trie").exists() {
        return local_ipv4_addresses().into_iter().next().map(IpAddr::V4);
    }
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// This host's non-loopback IPv4 addresses, read from the kernel's routing trie (Linux;
/// empty elsewhere). No traffic is sent.
pub fn local_ipv4_addresses() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let Ok(trie) = std::fs::read_to_string("/proc/net/fib_trie") else {
        return out;
    };
    let mut last: Option<Ipv4Addr> = None;
    for line in trie.lines() {
        let t = line.trim_start();
        if let Some(addr) = t.strip_prefix("|-- ") {
            last = addr.trim().parse().ok();
        } else if t.starts_with("/32 host LOCAL")
            && let Some(ip) = last
            && !ip.is_loopback()
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    }
    out
}
