//! One-port mode: a single UDP socket (and TCP listener) for all workers.
//!
//! Why a demultiplexer thread rather than `SO_REUSEPORT`: the kernel spreads a reuseport
//! group by a hash of the 4-tuple, but a participant's packets must reach the worker that
//! holds its room, which no hash knows. So one thread reads the socket and hands each
//! datagram to its worker. It learns who is where from the first STUN request of every
//! source: our ICE ufrags start with the worker's index ([`super::ufrag_prefix`]), so no
//! table has to be shared with the workers. Workers send on their own duplicate of the
//! socket's descriptor, so only the receive side pays the extra hop: one copy of the
//! datagram and a channel send, with one wake-up per worker per burst (measured in
//! docs/benchmarks.md).
//!
//! ICE-TCP works the same way: the demultiplexer accepts, reads the first frame (a STUN
//! request, RFC 6544), and hands the connection with the bytes read to the worker.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use tracing::{debug, info, warn};

use super::udp::Receiver;
use super::{is_stun, worker_of_stun};

/// What the demultiplexer hands a worker.
pub(crate) enum Inbound {
    /// Datagrams from one burst, in arrival order.
    Datagrams(Vec<(SocketAddr, Vec<u8>)>),
    /// An ICE-TCP connection whose first frame names this worker, with what was read.
    Tcp {
        stream: TcpStream,
        peer: SocketAddr,
        read: Vec<u8>,
    },
}

/// How the demultiplexer reaches one worker.
pub(crate) struct Inbox {
    pub tx: Sender<Inbound>,
    pub waker: Arc<Waker>,
}

const UDP: Token = Token(0);
const LISTENER: Token = Token(1);
pub(crate) const WAKE: Token = Token(2);
const FIRST_PENDING: usize = 16;

/// A source not heard from this long is forgotten (ICE consent checks keep live ones).
const ROUTE_IDLE: Duration = Duration::from_secs(120);
/// Bound on remembered sources: a flood of spoofed STUN cannot grow the table further.
const MAX_ROUTES: usize = 1 << 16;
/// TCP connections waiting for their first frame, and how long they may wait.
const MAX_PENDING: usize = 256;
const PENDING_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bursts handled before looking at the clock and the other sources again.
const BURSTS_PER_TURN: usize = 16;

struct Route {
    worker: usize,
    seen: Instant,
}

struct Pending {
    stream: TcpStream,
    peer: SocketAddr,
    read: Vec<u8>,
    since: Instant,
}

/// Counters of the demultiplexer, for the workers' stats.
#[derive(Debug, Default)]
pub(crate) struct DemuxCounters {
    pub datagrams_in: AtomicU64,
    /// Datagrams from a source no STUN request has named a worker for.
    pub unrouted: AtomicU64,
}

pub(crate) struct Demux {
    pub poll: Poll,
    pub udp: UdpSocket,
    pub listener: Option<TcpListener>,
    pub workers: Vec<Inbox>,
    pub stop: Arc<AtomicBool>,
    pub counters: Arc<DemuxCounters>,
}

impl Demux {
    pub(crate) fn run(mut self) {
        info!(addr = ?self.udp.local_addr().ok(), workers = self.workers.len(), "one-port demultiplexer started");
        if let Err(e) = self.register() {
            warn!("one-port demultiplexer cannot start: {e}");
            return;
        }
        let mut events = Events::with_capacity(64);
        let mut rx = Receiver::new();
        let mut routes: HashMap<SocketAddr, Route> = HashMap::new();
        let mut pending: HashMap<Token, Pending> = HashMap::new();
        let mut next_token = FIRST_PENDING;
        let mut batches: Vec<Vec<(SocketAddr, Vec<u8>)>> = vec![Vec::new(); self.workers.len()];
        let mut udp_ready = true;
        let mut last_sweep = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            let timeout = if udp_ready {
                Duration::ZERO
            } else {
                Duration::from_secs(1)
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                warn!("demultiplexer poll: {e}");
                return;
            }
            for ev in events.iter() {
                match ev.token() {
                    UDP => udp_ready = true,
                    WAKE => {}
                    LISTENER => self.accept(&mut pending, &mut next_token),
                    t => self.first_frame(t, &mut pending),
                }
            }
            if udp_ready {
                udp_ready = self.route_udp(&mut rx, &mut routes, &mut batches);
            }
            let now = Instant::now();
            if now.duration_since(last_sweep) >= Duration::from_secs(10) {
                last_sweep = now;
                routes.retain(|_, r| now.duration_since(r.seen) < ROUTE_IDLE);
                let late: Vec<Token> = pending
                    .iter()
                    .filter(|(_, p)| now.duration_since(p.since) >= PENDING_TIMEOUT)
                    .map(|(t, _)| *t)
                    .collect();
                for t in late {
                    if let Some(mut p) = pending.remove(&t) {
                        let _ = self.poll.registry().deregister(&mut p.stream);
                    }
                }
            }
        }
        info!("one-port demultiplexer stopped");
    }

    fn register(&mut self) -> io::Result<()> {
        let registry = self.poll.registry();
        registry.register(&mut self.udp, UDP, Interest::READABLE)?;
        if let Some(l) = self.listener.as_mut() {
            registry.register(l, LISTENER, Interest::READABLE)?;
        }
        Ok(())
    }

    /// Read and hand out up to [`BURSTS_PER_TURN`] bursts; `true` if more may be queued.
    fn route_udp(
        &mut self,
        rx: &mut Receiver,
        routes: &mut HashMap<SocketAddr, Route>,
        batches: &mut [Vec<(SocketAddr, Vec<u8>)>],
    ) -> bool {
        for _ in 0..BURSTS_PER_TURN {
            let n = match rx.recv(&self.udp) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(e) => {
                    debug!("demultiplexer recv: {e}");
                    return true;
                }
            };
            self.counters
                .datagrams_in
                .fetch_add(n as u64, Ordering::Relaxed);
            let now = Instant::now();
            for (source, data) in rx.datagrams() {
                let worker = match named_worker(data) {
                    Some(w) if w < batches.len() => {
                        if routes.len() < MAX_ROUTES || routes.contains_key(&source) {
                            routes.insert(
                                source,
                                Route {
                                    worker: w,
                                    seen: now,
                                },
                            );
                        }
                        Some(w)
                    }
                    _ => routes.get_mut(&source).map(|r| {
                        r.seen = now;
                        r.worker
                    }),
                };
                match worker {
                    Some(w) => batches[w].push((source, data.to_vec())),
                    None => {
                        self.counters.unrouted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            for (w, batch) in batches.iter_mut().enumerate() {
                if batch.is_empty() {
                    continue;
                }
                let inbox = &self.workers[w];
                if inbox
                    .tx
                    .send(Inbound::Datagrams(std::mem::take(batch)))
                    .is_ok()
                {
                    let _ = inbox.waker.wake();
                }
            }
        }
        true
    }

    fn accept(&mut self, pending: &mut HashMap<Token, Pending>, next_token: &mut usize) {
        let Some(listener) = self.listener.as_ref() else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    if pending.len() >= MAX_PENDING {
                        continue;
                    }
                    let token = Token(*next_token);
                    *next_token += 1;
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE)
                        .is_ok()
                    {
                        pending.insert(
                            token,
                            Pending {
                                stream,
                                peer,
                                read: Vec::new(),
                                since: Instant::now(),
                            },
                        );
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("accept: {e}");
                    return;
                }
            }
        }
    }

    /// Read a pending connection until its first frame is complete, then hand it over.
    fn first_frame(&mut self, token: Token, pending: &mut HashMap<Token, Pending>) {
        let Some(p) = pending.get_mut(&token) else {
            return;
        };
        let mut buf = [0u8; 2048];
        let mut open = true;
        // Bounded: at most one frame (2 + 65535 bytes) is read before deciding.
        while p.read.len() < 2 + usize::from(u16::MAX) {
            match p.stream.read(&mut buf) {
                Ok(0) => {
                    open = false;
                    break;
                }
                Ok(n) => p.read.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    open = false;
                    break;
                }
            }
        }
        let decision = match first_frame(&p.read) {
            None if open => return, // not complete yet
            None => None,
            Some(f) => worker_of_stun(f).filter(|w| *w < self.workers.len()),
        };
        let Some(mut p) = pending.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut p.stream);
        if let Some(w) = decision {
            let inbox = &self.workers[w];
            let msg = Inbound::Tcp {
                stream: p.stream,
                peer: p.peer,
                read: p.read,
            };
            if inbox.tx.send(msg).is_ok() {
                let _ = inbox.waker.wake();
            }
        }
        // Otherwise dropping the stream closes it: not ICE-TCP, or not for us.
    }
}

/// The worker a datagram names: a STUN request with one of our ufrags. Anything else
/// (media, DTLS, foreign STUN) names none and follows its source's route, if any.
pub(crate) fn named_worker(data: &[u8]) -> Option<usize> {
    if is_stun(data) {
        worker_of_stun(data)
    } else {
        None
    }
}

/// The first RFC 4571 frame of what a new ICE-TCP connection sent, once complete.
pub(crate) fn first_frame(read: &[u8]) -> Option<&[u8]> {
    let header = read.get(..2)?;
    let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
    read.get(2..2 + len)
}
