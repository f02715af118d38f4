//! ICE-TCP connections of one worker (RFC 6544, passive side): browsers whose UDP is
//! blocked connect to the worker's TCP port and carry STUN, DTLS, RTP and RTCP in
//! RFC 4571 frames (a 2-byte big-endian length, then the packet).
//!
//! The engine sees a connection as its remote address with [`crate::Transport::Tcp`]; this
//! table turns frames into packets and packets into frames. Media over TCP must not
//! queue without bound (a stalled reader would otherwise eat memory while the video it
//! waits for grows stale), so each connection's write buffer is capped and packets
//! beyond it are dropped, as a full UDP socket would.
//!
//! Connections cost the worker a slot of [`MAX_CONNECTIONS`] each, so a connection must
//! earn its keep: one that has not delivered a packet to a participant (its first: a STUN
//! request with valid credentials, which the engine checks) within the handshake
//! deadline is closed whatever it sends, and a connection that stops delivering packets
//! is closed after [`IDLE_TIMEOUT`]. Frames the engine refuses (garbage, STUN for
//! nobody) and empty frames are not activity: only the worker's report that the engine
//! took a packet ([`TcpConns::delivered`]) is.

use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use tracing::debug;

/// Connections one worker keeps; more are refused at accept.
const MAX_CONNECTIONS: usize = 1024;
/// Unsent bytes kept per connection: about 1,000 video packets.
const MAX_WRITE_BUFFER: usize = 1 << 20;
/// Partial frame kept per connection: one maximal frame.
pub(crate) const MAX_READ_BUFFER: usize = 2 + u16::MAX as usize;
/// A connection whose packets stop reaching its participant for this long is closed.
/// Browsers send ICE consent checks every few seconds, so a live one never idles this
/// long.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// First token of connections; the ones below are the worker's own sources.
pub(crate) const FIRST_TOKEN: usize = 16;

struct Conn {
    token: Token,
    stream: TcpStream,
    peer: SocketAddr,
    read: Vec<u8>,
    write: Vec<u8>,
    /// Registered for WRITABLE too (the write buffer is not empty).
    want_write: bool,
    /// When it was accepted (or handed over by the demultiplexer).
    opened: Instant,
    /// The engine took a packet from it at least once: ICE succeeded on it (a STUN
    /// request with valid credentials for one of the worker's participants).
    authenticated: bool,
    /// When the engine last took a packet from it.
    last_delivered: Instant,
    /// At least one frame arrived; the first must be STUN (RFC 7983) or we hang up.
    framed: bool,
}

/// The ICE-TCP connections of one worker, by mio token and by peer address.
pub(crate) struct TcpConns {
    /// How long a connection may stay unauthenticated ([`Conn::authenticated`]).
    handshake_timeout: Duration,
    conns: HashMap<Token, Conn>,
    by_peer: HashMap<SocketAddr, Token>,
    next_token: usize,
    scratch: Vec<u8>,
    /// Frames dropped because a connection's write buffer was full, and connections
    /// refused or closed for bad input: for the worker's counters.
    pub dropped: u64,
}

impl TcpConns {
    pub(crate) fn new(handshake_timeout: Duration) -> TcpConns {
        TcpConns {
            handshake_timeout,
            conns: HashMap::new(),
            by_peer: HashMap::new(),
            next_token: FIRST_TOKEN,
            scratch: vec![0; 64 * 1024],
            dropped: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }

    /// Accept every pending connection of `listener`.
    pub(crate) fn accept(&mut self, listener: &TcpListener, registry: &Registry, now: Instant) {
        // Bounded by the accept queue, which the kernel bounds.
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    self.adopt(stream, peer, Vec::new(), registry, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ECONNABORTED, EMFILE …: this connection is lost, the listener is fine.
                Err(e) => {
                    debug!("accept: {e}");
                    return;
                }
            }
        }
    }

    /// Take over a connection, with bytes already read from it (one-port mode: the
    /// demultiplexer read the first frame to find the worker). Its frames are reported
    /// by the next [`TcpConns::readable`] for the returned token, which the caller runs
    /// at once when `already_read` is not empty.
    pub(crate) fn adopt(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        already_read: Vec<u8>,
        registry: &Registry,
        now: Instant,
    ) -> Option<Token> {
        if self.conns.len() >= MAX_CONNECTIONS || self.by_peer.contains_key(&peer) {
            self.dropped += 1;
            return None;
        }
        let token = Token(self.next_token);
        self.next_token += 1;
        if let Err(e) = registry.register(&mut stream, token, Interest::READABLE) {
            debug!("register TCP connection: {e}");
            return None;
        }
        let _ = stream.set_nodelay(true);
        self.by_peer.insert(peer, token);
        self.conns.insert(
            token,
            Conn {
                token,
                stream,
                peer,
                read: already_read,
                write: Vec::new(),
                want_write: false,
                opened: now,
                authenticated: false,
                last_delivered: now,
                framed: false,
            },
        );
        Some(token)
    }

    /// Read what `token`'s connection has and append its complete frames to `frames`.
    /// Closes the connection on end of stream, error, or a first frame that is not STUN.
    pub(crate) fn readable(
        &mut self,
        token: Token,
        registry: &Registry,
        frames: &mut Vec<(SocketAddr, Vec<u8>)>,
    ) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let mut open = true;
        // Edge-triggered: read until WouldBlock. Bounded by what the peer has sent,
        // and by the frame check below, which hangs up on a peer that sends junk.
        loop {
            match conn.stream.read(&mut self.scratch) {
                Ok(0) => {
                    open = false;
                    break;
                }
                Ok(n) => conn.read.extend_from_slice(&self.scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    open = false;
                    break;
                }
            }
            if !take_frames(conn, frames) {
                open = false;
                break;
            }
        }
        if open && !take_frames(conn, frames) {
            open = false;
        }
        if !open {
            self.close(token, registry);
        }
    }

    /// Write what is buffered for `token` now that it is writable.
    pub(crate) fn writable(&mut self, token: Token, registry: &Registry) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if flush(conn, registry).is_err() {
            self.close(token, registry);
        }
    }

    /// Send one packet to `peer` as an RFC 4571 frame. Dropped (and counted) when there
    /// is no such connection, the packet is too long for a frame, or the buffer is full.
    pub(crate) fn send(&mut self, peer: SocketAddr, packet: &[u8], registry: &Registry) {
        let Some(&token) = self.by_peer.get(&peer) else {
            // str0m also tries the browser's "active" candidates (port 9), which never
            // connect to us: nothing to send them on.
            self.dropped += 1;
            return;
        };
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let Ok(len) = u16::try_from(packet.len()) else {
            self.dropped += 1;
            return;
        };
        let header = len.to_be_bytes();
        let mut result = Ok(());
        if conn.write.is_empty() {
            // The common case: straight to the kernel, no copy.
            match conn
                .stream
                .write_vectored(&[IoSlice::new(&header), IoSlice::new(packet)])
            {
                Ok(n) if n == 2 + packet.len() => return,
                Ok(n) => {
                    let rest: Vec<u8> = header.iter().chain(packet).skip(n).copied().collect();
                    conn.write.extend_from_slice(&rest);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.write.extend_from_slice(&header);
                    conn.write.extend_from_slice(packet);
                }
                Err(e) => result = Err(e),
            }
            if result.is_ok() {
                result = want_write(conn, registry, true);
            }
        } else if conn.write.len() + 2 + packet.len() > MAX_WRITE_BUFFER {
            self.dropped += 1;
        } else {
            conn.write.extend_from_slice(&header);
            conn.write.extend_from_slice(packet);
        }
        if result.is_err() {
            self.close(token, registry);
        }
    }

    /// The engine took a packet that came on `token`'s connection (see the module
    /// documentation): it is authenticated, and active at `now`.
    pub(crate) fn delivered(&mut self, token: Token, now: Instant) {
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.authenticated = true;
            conn.last_delivered = conn.last_delivered.max(now);
        }
    }

    /// How often [`TcpConns::sweep`] should run so that no connection outlives its
    /// deadline by much: a quarter of the handshake deadline, between 10 ms and 1 s.
    pub(crate) fn sweep_period(&self) -> Duration {
        (self.handshake_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Close the connections not authenticated within the handshake deadline, and the
    /// authenticated ones idle for [`IDLE_TIMEOUT`].
    pub(crate) fn sweep(&mut self, now: Instant, registry: &Registry) {
        let expired: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                if c.authenticated {
                    now.saturating_duration_since(c.last_delivered) >= IDLE_TIMEOUT
                } else {
                    now.saturating_duration_since(c.opened) >= self.handshake_timeout
                }
            })
            .map(|(t, _)| *t)
            .collect();
        for t in expired {
            if let Some(c) = self.conns.get(&t)
                && !c.authenticated
            {
                debug!(peer = %c.peer, "ICE-TCP connection did not authenticate in time");
            }
            self.close(t, registry);
        }
    }

    fn close(&mut self, token: Token, registry: &Registry) {
        if let Some(mut conn) = self.conns.remove(&token) {
            let _ = registry.deregister(&mut conn.stream);
            if self.by_peer.get(&conn.peer) == Some(&token) {
                self.by_peer.remove(&conn.peer);
            }
            debug!(peer = %conn.peer, "ICE-TCP connection closed");
        }
    }
}

/// Move the complete frames of `conn.read` to `frames`. `false`: hang up (the first
/// frame is not STUN, or the buffer holds more than a frame can be). Frames are not
/// activity by themselves: see [`TcpConns::delivered`].
fn take_frames(conn: &mut Conn, frames: &mut Vec<(SocketAddr, Vec<u8>)>) -> bool {
    match deframe(&mut conn.read, &mut conn.framed, conn.peer, frames) {
        Deframed::Frames(_) => true,
        Deframed::HangUp => false,
    }
}

/// What [`deframe`] made of a connection's read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deframed {
    /// This many complete frames were taken (empty ones included, which carry nothing).
    Frames(usize),
    /// Not ICE-TCP (the first frame is not STUN), or more buffered than a frame can be.
    HangUp,
}

/// Move the complete RFC 4571 frames at the start of `read` (what a connection sent so
/// far) to `frames`, keeping a partial frame for later. `framed`: a first frame was
/// seen, so the STUN check is done. Plain bytes in, packets out: the I/O stays in
/// [`TcpConns::readable`], so this is what the `tcp_framing` fuzz target drives.
pub(crate) fn deframe(
    read: &mut Vec<u8>,
    framed: &mut bool,
    peer: SocketAddr,
    frames: &mut Vec<(SocketAddr, Vec<u8>)>,
) -> Deframed {
    let mut at = 0;
    let mut taken = 0;
    while let Some(header) = read.get(at..at + 2) {
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        let Some(packet) = read.get(at + 2..at + 2 + len) else {
            break;
        };
        if !*framed {
            // RFC 7983: STUN starts with 0..=3. Anything else first is not ICE-TCP.
            if packet.first().is_none_or(|b| *b > 3) {
                return Deframed::HangUp;
            }
            *framed = true;
        }
        if len > 0 {
            frames.push((peer, packet.to_vec()));
        }
        taken += 1;
        at += 2 + len;
    }
    read.drain(..at);
    if read.len() <= MAX_READ_BUFFER {
        Deframed::Frames(taken)
    } else {
        Deframed::HangUp
    }
}

fn flush(conn: &mut Conn, registry: &Registry) -> io::Result<()> {
    let mut written = 0;
    while written < conn.write.len() {
        match conn.stream.write(&conn.write[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    conn.write.drain(..written);
    let pending = !conn.write.is_empty();
    want_write(conn, registry, pending)
}

fn want_write(conn: &mut Conn, registry: &Registry, on: bool) -> io::Result<()> {
    if conn.want_write == on {
        return Ok(());
    }
    conn.want_write = on;
    let interest = if on {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    };
    registry.reregister(&mut conn.stream, conn.token, interest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    /// The handshake deadline of these tests' connections.
    const HANDSHAKE: Duration = Duration::from_secs(10);

    /// A listener in a poll and a connected client, accepted into a `TcpConns`.
    fn pair() -> (Poll, TcpConns, std::net::TcpStream, Token) {
        let poll = Poll::new().expect("poll");
        let mut listener = TcpListener::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        poll.registry()
            .register(&mut listener, Token(1), Interest::READABLE)
            .expect("register");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut conns = TcpConns::new(HANDSHAKE);
        let deadline = Instant::now() + Duration::from_secs(5);
        while conns.len() == 0 && Instant::now() < deadline {
            conns.accept(&listener, poll.registry(), Instant::now());
        }
        assert_eq!(conns.len(), 1);
        (poll, conns, client, Token(FIRST_TOKEN))
    }

    /// Poll until the connection has produced `n` frames or was closed.
    fn frames(poll: &mut Poll, conns: &mut TcpConns, token: Token, n: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut events = Events::with_capacity(8);
        let deadline = Instant::now() + Duration::from_secs(5);
        while out.len() < n && conns.len() > 0 && Instant::now() < deadline {
            poll.poll(&mut events, Some(Duration::from_millis(50)))
                .expect("poll");
            conns.readable(token, poll.registry(), &mut out);
        }
        out.into_iter().map(|(_, d)| d).collect()
    }

    #[test]
    fn frames_split_across_writes_are_reassembled_and_replies_framed() {
        let (mut poll, mut conns, mut client, token) = pair();
        let stun = [0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        let rtp = [0x80u8; 300];
        let mut bytes = Vec::new();
        for p in [&stun[..], &rtp[..]] {
            bytes.extend_from_slice(&(p.len() as u16).to_be_bytes());
            bytes.extend_from_slice(p);
        }
        // Byte by byte for the first frame's header, then the rest.
        client.write_all(&bytes[..1]).expect("write");
        client.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(20));
        client.write_all(&bytes[1..]).expect("write");
        let got = frames(&mut poll, &mut conns, token, 2);
        assert_eq!(got, vec![stun.to_vec(), rtp.to_vec()]);

        let peer = client.local_addr().expect("addr");
        conns.send(peer, &[7u8; 1000], poll.registry());
        let mut reply = [0u8; 1002];
        client.read_exact(&mut reply).expect("framed reply");
        assert_eq!(&reply[..2], &1000u16.to_be_bytes());
        assert!(reply[2..].iter().all(|&b| b == 7));
    }

    #[test]
    fn a_first_frame_that_is_not_stun_hangs_up() {
        let (mut poll, mut conns, mut client, token) = pair();
        client
            .write_all(&[0, 4, b'G', b'E', b'T', b' '])
            .expect("write");
        let got = frames(&mut poll, &mut conns, token, 1);
        assert!(got.is_empty());
        assert_eq!(conns.len(), 0, "connection closed");
        let mut buf = [0u8; 1];
        assert_eq!(
            client.read(&mut buf).unwrap_or(0),
            0,
            "peer sees end of stream"
        );
    }

    #[test]
    fn packets_for_unknown_peers_or_too_long_are_dropped() {
        let (poll, mut conns, client, _) = pair();
        conns.send(
            "127.0.0.1:9".parse().expect("addr"),
            &[1, 2, 3],
            poll.registry(),
        );
        let peer = client.local_addr().expect("addr");
        conns.send(peer, &vec![0u8; 70_000], poll.registry());
        assert_eq!(conns.dropped, 2);
        assert_eq!(conns.len(), 1);
    }

    #[test]
    fn idle_connections_are_swept() {
        let (poll, mut conns, _client, _) = pair();
        conns.sweep(Instant::now(), poll.registry());
        assert_eq!(conns.len(), 1);
        conns.sweep(Instant::now() + IDLE_TIMEOUT, poll.registry());
        assert_eq!(conns.len(), 0);
    }

    #[test]
    fn a_connection_that_never_authenticates_is_closed_at_the_handshake_deadline() {
        // Issue #12 item 5: one STUN-shaped frame, then an empty frame now and then,
        // used to keep a connection (and one of the worker's 1,024 slots) forever.
        let (mut poll, mut conns, mut client, token) = pair();
        let opened = Instant::now();
        let stun = [
            0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        client.write_all(&[0, 20]).expect("write");
        client.write_all(&stun).expect("write");
        assert_eq!(frames(&mut poll, &mut conns, token, 1), vec![stun.to_vec()]);
        let mut events = Events::with_capacity(8);
        for i in 1..=48u32 {
            // Time is an input: 250 ms of "keep-alive" per step, never delivered to a
            // participant (this table's owner would report `delivered` if it were).
            if conns.len() > 0 {
                client.write_all(&[0, 0]).expect("empty frame");
                poll.poll(&mut events, Some(Duration::from_millis(20)))
                    .expect("poll");
                let mut out = Vec::new();
                conns.readable(token, poll.registry(), &mut out);
                assert!(out.is_empty(), "an empty frame carries no packet");
            }
            let now = opened + Duration::from_millis(250) * i;
            conns.sweep(now, poll.registry());
            if now < opened + HANDSHAKE {
                assert_eq!(conns.len(), 1, "closed early, at step {i}");
            }
        }
        assert_eq!(conns.len(), 0, "open past the handshake deadline");
    }

    #[test]
    fn an_authenticated_connection_lives_while_the_engine_takes_its_packets() {
        let (poll, mut conns, _client, token) = pair();
        let t0 = Instant::now();
        conns.delivered(token, t0 + Duration::from_secs(1));
        // Past the handshake deadline: authenticated, so only idleness counts.
        conns.sweep(t0 + HANDSHAKE * 2, poll.registry());
        assert_eq!(conns.len(), 1);
        conns.delivered(token, t0 + HANDSHAKE * 2);
        conns.sweep(t0 + HANDSHAKE * 2 + IDLE_TIMEOUT / 2, poll.registry());
        assert_eq!(conns.len(), 1);
        conns.sweep(t0 + HANDSHAKE * 2 + IDLE_TIMEOUT, poll.registry());
        assert_eq!(conns.len(), 0, "idle for IDLE_TIMEOUT");
    }

    #[test]
    fn the_sweep_period_follows_the_handshake_deadline() {
        assert_eq!(
            TcpConns::new(HANDSHAKE).sweep_period(),
            Duration::from_secs(1)
        );
        assert_eq!(
            TcpConns::new(Duration::from_millis(400)).sweep_period(),
            Duration::from_millis(100)
        );
        assert_eq!(
            TcpConns::new(Duration::ZERO).sweep_period(),
            Duration::from_millis(10)
        );
    }
}
