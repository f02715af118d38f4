//! The media threads: each owns a share of the participants and drives their `Rtc`s
//! from one `mio::Poll` over their sockets, so a few threads carry hundreds of peers.
//!
//! The async signaling side talks to a thread only through [`Command`]s (and a
//! `mio::Waker` to interrupt its poll); answers come back on tokio oneshots, which can
//! be completed from any thread. Live counters are atomics the progress line reads.

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use mio::{Events, Interest, Poll, Token, Waker};
use tokio::sync::oneshot;

use crate::peer::{Mids, Peer, PeerCounters, PublishPlan, Sink};
use crate::stats::Histogram;

const WAKER: Token = Token(usize::MAX);
/// Datagrams read from one socket before looking at the others: fairness between peers.
const READ_BURST: usize = 64;

/// Requests to a media thread.
#[derive(Debug)]
pub enum Command {
    /// Create a participant; the reply carries its slot, the publishing offer and mids.
    Add {
        participant: usize,
        plan: PublishPlan,
        started: Instant,
        reply: oneshot::Sender<anyhow::Result<(usize, String, Mids)>>,
    },
    /// Create a receive-only participant connection from a server's offer; the reply
    /// carries its slot and our answer.
    AddAnswerer {
        participant: usize,
        started: Instant,
        offer: String,
        reply: oneshot::Sender<anyhow::Result<(usize, String)>>,
    },
    /// Whether a peer's DTLS is up.
    IsConnected {
        slot: usize,
        reply: oneshot::Sender<bool>,
    },
    /// Mark a peer as one that only sends (not counted as a subscriber).
    SendOnly { slot: usize },
    /// Drop a peer (the participant left): its socket closes and its slot is reused.
    /// Its counters stay in the thread's totals.
    Remove { slot: usize },
    /// The server's answer to the publishing offer.
    Answer {
        slot: usize,
        sdp: String,
        reply: oneshot::Sender<anyhow::Result<()>>,
    },
    /// A server offer; the reply is our answer.
    Offer {
        slot: usize,
        sdp: String,
        reply: oneshot::Sender<anyhow::Result<String>>,
    },
    /// Dynacast: the server's `layer-needed` for this publisher.
    LayerNeeded {
        slot: usize,
        rid: String,
        needed: bool,
    },
    /// The measurement window starts: forget counts and latencies so far.
    StartWindow,
    /// Stop and report.
    Finish {
        reply: oneshot::Sender<ThreadReport>,
    },
}

/// Thread-wide counters for the live progress line.
#[derive(Debug, Default)]
pub struct Live {
    pub connected: AtomicU64,
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_packets: AtomicU64,
    pub lost: AtomicU64,
    pub expected: AtomicU64,
}

/// What one participant saw in the measurement window.
#[derive(Clone, Debug)]
pub struct PeerReport {
    pub participant: usize,
    /// From the start of its join to DTLS connected.
    pub connect_ms: Option<f64>,
    pub counters: PeerCounters,
    pub streams: usize,
    pub lost: u64,
    pub expected: u64,
    pub duplicates: u64,
    pub failed: Option<String>,
    pub receives: bool,
    /// Per publisher and stream, what this participant received in the window.
    pub received: crate::layers::Received,
    /// Per stream, what it sent in the window.
    pub sent: Vec<crate::layers::SentStream>,
    pub dynacast: crate::layers::Dynacast,
}

#[derive(Debug, Default)]
pub struct ThreadReport {
    pub peers: Vec<PeerReport>,
    pub latency_us: Histogram,
}

/// Handle to one media thread.
#[derive(Clone)]
pub struct MediaThread {
    tx: mpsc::Sender<Command>,
    waker: Arc<Waker>,
    pub live: Arc<Live>,
}

impl std::fmt::Debug for MediaThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaThread").finish_non_exhaustive()
    }
}

impl MediaThread {
    pub fn spawn(index: usize) -> anyhow::Result<(MediaThread, JoinHandle<()>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = mpsc::channel();
        let live = Arc::new(Live::default());
        let thread_live = live.clone();
        let handle = std::thread::Builder::new()
            .name(format!("media-{index}"))
            .spawn(move || run(poll, rx, thread_live))?;
        Ok((MediaThread { tx, waker, live }, handle))
    }

    pub fn send(&self, cmd: Command) -> anyhow::Result<()> {
        self.tx
            .send(cmd)
            .map_err(|_| anyhow!("the media thread has stopped"))?;
        self.waker.wake()?;
        Ok(())
    }

    /// Sends a command built around a fresh oneshot and waits for its reply.
    pub async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> anyhow::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        rx.await
            .map_err(|_| anyhow!("the media thread dropped the request"))
    }
}

/// The thread's peers by slot (the slot is the socket's poll token). Removed peers leave
/// a hole that the next peer reuses, so a churning run does not grow.
#[derive(Default)]
struct Slots {
    peers: Vec<Option<Peer>>,
    free: Vec<usize>,
}

impl Slots {
    /// The slot the next [`Slots::put`] should use.
    fn vacant(&self) -> usize {
        self.free.last().copied().unwrap_or(self.peers.len())
    }

    /// Fills the slot [`Slots::vacant`] returned.
    fn put(&mut self, slot: usize, peer: Peer) {
        if self.free.last() == Some(&slot) {
            self.free.pop();
            self.peers[slot] = Some(peer);
        } else {
            self.peers.push(Some(peer));
        }
    }

    fn get(&self, slot: usize) -> Option<&Peer> {
        self.peers.get(slot).and_then(Option::as_ref)
    }

    fn get_mut(&mut self, slot: usize) -> Option<&mut Peer> {
        self.peers.get_mut(slot).and_then(Option::as_mut)
    }

    fn take(&mut self, slot: usize) -> Option<Peer> {
        let peer = self.peers.get_mut(slot)?.take()?;
        self.free.push(slot);
        Some(peer)
    }

    fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter().flatten()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Peer> {
        self.peers.iter_mut().flatten()
    }
}

/// Counters of removed peers, so the thread's totals do not drop when one leaves.
#[derive(Default)]
struct Retired {
    rx_packets: u64,
    rx_bytes: u64,
    tx_packets: u64,
}

fn run(mut poll: Poll, rx: mpsc::Receiver<Command>, live: Arc<Live>) {
    let mut peers = Slots::default();
    let mut retired = Retired::default();
    let mut events = Events::with_capacity(1024);
    let mut latency = Histogram::default();
    let mut buf = vec![0u8; 2048];
    // Slots whose socket may still hold datagrams (a burst was cut short).
    let mut unread: Vec<usize> = Vec::new();
    let mut last_loss_update = Instant::now();

    loop {
        let now = Instant::now();
        let wake = peers
            .iter()
            .map(Peer::next_wake)
            .min()
            .unwrap_or(now + Duration::from_millis(100));
        let timeout = if unread.is_empty() {
            wake.saturating_duration_since(now)
                .min(Duration::from_millis(100))
        } else {
            Duration::ZERO
        };
        if poll.poll(&mut events, Some(timeout)).is_err() {
            // EINTR and friends: try again (the loop is bounded by the Finish command).
            continue;
        }
        let now = Instant::now();
        let mut newly_connected = 0u32;

        let mut ready: Vec<usize> = std::mem::take(&mut unread);
        ready.extend(
            events
                .iter()
                .filter(|e| e.token() != WAKER)
                .map(|e| e.token().0),
        );
        ready.sort_unstable();
        ready.dedup();
        for slot in ready {
            let Some(peer) = peers.get_mut(slot) else {
                continue;
            };
            let mut sink = Sink {
                latency: &mut latency,
                newly_connected: &mut newly_connected,
            };
            let mut drained = false;
            for _ in 0..READ_BURST {
                match peer.socket.recv_from(&mut buf) {
                    Ok((n, source)) => peer.receive(now, source, &buf[..n], &mut sink),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        drained = true;
                        break;
                    }
                    Err(_) => {
                        drained = true;
                        break;
                    }
                }
            }
            if !drained {
                unread.push(slot);
            }
        }

        // Commands: bounded per round so a flood cannot starve the media.
        for _ in 0..256 {
            let Ok(cmd) = rx.try_recv() else { break };
            match cmd {
                Command::Add {
                    participant,
                    plan,
                    started,
                    reply,
                } => {
                    let result = Peer::new(participant, plan, started).and_then(
                        |(mut peer, offer, mids)| {
                            let slot = peers.vacant();
                            poll.registry().register(
                                &mut peer.socket,
                                Token(slot),
                                Interest::READABLE,
                            )?;
                            peers.put(slot, peer);
                            Ok((slot, offer, mids))
                        },
                    );
                    let _ = reply.send(result);
                }
                Command::AddAnswerer {
                    participant,
                    started,
                    offer,
                    reply,
                } => {
                    let result = Peer::new_answerer(participant, started, &offer).and_then(
                        |(mut peer, answer)| {
                            let slot = peers.vacant();
                            poll.registry().register(
                                &mut peer.socket,
                                Token(slot),
                                Interest::READABLE,
                            )?;
                            peers.put(slot, peer);
                            Ok((slot, answer))
                        },
                    );
                    let _ = reply.send(result);
                }
                Command::IsConnected { slot, reply } => {
                    let _ = reply.send(peers.get(slot).is_some_and(|p| p.connected_at.is_some()));
                }
                Command::SendOnly { slot } => {
                    if let Some(p) = peers.get_mut(slot) {
                        p.receives = false;
                    }
                }
                Command::Remove { slot } => {
                    if let Some(mut p) = peers.take(slot) {
                        let _ = poll.registry().deregister(&mut p.socket);
                        retired.rx_packets += p.counters.rx_packets;
                        retired.rx_bytes += p.counters.rx_bytes;
                        retired.tx_packets += p.counters.tx_packets;
                    }
                    unread.retain(|s| *s != slot);
                }
                Command::Answer { slot, sdp, reply } => {
                    let r = match peers.get_mut(slot) {
                        Some(p) => p.accept_answer(&sdp),
                        None => Err(anyhow!("no participant in slot {slot}")),
                    };
                    let _ = reply.send(r);
                }
                Command::Offer { slot, sdp, reply } => {
                    let r = match peers.get_mut(slot) {
                        Some(p) => p.accept_offer(&sdp),
                        None => Err(anyhow!("no participant in slot {slot}")),
                    };
                    let _ = reply.send(r);
                }
                Command::LayerNeeded { slot, rid, needed } => {
                    if let Some(p) = peers.get_mut(slot) {
                        p.set_layer_needed(now, &rid, needed);
                    }
                }
                Command::StartWindow => {
                    latency = Histogram::default();
                    for p in peers.iter_mut() {
                        p.reset_counters();
                    }
                    retired = Retired::default();
                    live.rx_packets.store(0, Ordering::Relaxed);
                    live.rx_bytes.store(0, Ordering::Relaxed);
                    live.tx_packets.store(0, Ordering::Relaxed);
                }
                Command::Finish { reply } => {
                    let _ = reply.send(report(&peers, latency));
                    return;
                }
            }
        }

        let mut rx_packets = retired.rx_packets;
        let mut rx_bytes = retired.rx_bytes;
        let mut tx_packets = retired.tx_packets;
        for peer in peers.iter_mut() {
            if peer.next_wake() <= now {
                let mut sink = Sink {
                    latency: &mut latency,
                    newly_connected: &mut newly_connected,
                };
                peer.tick(now, &mut sink);
            }
            rx_packets += peer.counters.rx_packets;
            rx_bytes += peer.counters.rx_bytes;
            tx_packets += peer.counters.tx_packets;
        }
        live.connected
            .fetch_add(newly_connected as u64, Ordering::Relaxed);
        live.rx_packets.store(rx_packets, Ordering::Relaxed);
        live.rx_bytes.store(rx_bytes, Ordering::Relaxed);
        live.tx_packets.store(tx_packets, Ordering::Relaxed);
        if now.duration_since(last_loss_update) >= Duration::from_millis(500) {
            last_loss_update = now;
            let (lost, expected) = peers
                .iter()
                .flat_map(|p| p.streams.values())
                .fold((0, 0), |(l, e), s| (l + s.lost(), e + s.expected()));
            live.lost.store(lost, Ordering::Relaxed);
            live.expected.store(expected, Ordering::Relaxed);
        }
    }
}

fn report(peers: &Slots, latency: Histogram) -> ThreadReport {
    let peers = peers
        .iter()
        .map(|p| PeerReport {
            participant: p.participant,
            connect_ms: p
                .connected_at
                .map(|t| t.duration_since(p.started).as_secs_f64() * 1000.0),
            counters: p.counters.clone(),
            streams: p.streams.len(),
            lost: p.streams.values().map(|s| s.lost()).sum(),
            expected: p.streams.values().map(|s| s.expected()).sum(),
            duplicates: p.streams.values().map(|s| s.duplicates()).sum(),
            failed: p.failed.clone(),
            receives: p.receives,
            received: p.received.clone(),
            sent: p.sent_streams(),
            dynacast: p.dynacast.clone(),
        })
        .collect();
    ThreadReport {
        peers,
        latency_us: latency,
    }
}
