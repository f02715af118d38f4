//! A worker thread: the only place with sockets and a clock. It owns one [`Engine`] and
//! its sockets (UDP, and the ICE-TCP listener and connections) in one `mio::Poll`; it
//! reads commands from its channel (a `mio::Waker` interrupts the poll), packets from
//! the sockets, and feeds both to the engine with `Instant::now()`, then carries out the
//! engine's outputs (send datagrams in batches, call the event sink, tell the
//! [`Directory`] what the engine did).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use tracing::{debug, error, info};

use crate::api::*;
use crate::directory::Directory;
use crate::engine::{Engine, EngineStats, Output};
use crate::net::demux::Inbound;
use crate::net::tcp::TcpConns;
use crate::net::udp;

/// What the [`crate::Sfu`] handle asks of a worker.
pub(crate) enum Command {
    Join {
        room: RoomId,
        participant: ParticipantId,
        offer: String,
        sources: Vec<MidSource>,
        /// The room's recording, when it is recorded (`Sfu::set_recording`).
        record: Option<RecordTap>,
        reply: Reply<Result<SdpAnswer, SfuError>>,
    },
    Offer {
        participant: ParticipantId,
        offer: String,
        sources: Vec<MidSource>,
        reply: Reply<Result<SdpAnswer, SfuError>>,
    },
    Answer {
        participant: ParticipantId,
        offer_id: u64,
        answer: String,
        reply: Reply<Result<(), SfuError>>,
    },
    SetMuted {
        participant: ParticipantId,
        source: TrackSource,
        muted: bool,
    },
    SetPublishing {
        participant: ParticipantId,
        source: TrackSource,
        on: bool,
    },
    SetReceiveQuality {
        participant: ParticipantId,
        quality: ReceiveQuality,
    },
    SetTileViews {
        participant: ParticipantId,
        views: Vec<TileView>,
    },
    Leave {
        participant: ParticipantId,
    },
    CloseRoom {
        room: RoomId,
    },
    Record {
        room: RoomId,
        tap: Option<RecordTap>,
    },
    Shutdown,
}

impl Command {
    /// Answer a command that cannot be delivered (the worker is gone).
    pub(crate) fn fail(self, err: SfuError) {
        match self {
            Command::Join { reply, .. } | Command::Offer { reply, .. } => reply(Err(err)),
            Command::Answer { reply, .. } => reply(Err(err)),
            _ => {}
        }
    }
}

/// Counters a worker publishes for [`crate::Sfu::stats`], read without stopping it.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub alive: AtomicBool,
    pub rooms: AtomicUsize,
    pub participants: AtomicUsize,
    pub datagrams_in: AtomicU64,
    pub datagrams_out: AtomicU64,
    pub datagrams_dropped: AtomicU64,
    pub rtp_forwarded: AtomicU64,
    /// Datagrams the kernel refused to send (socket buffer full, unreachable).
    pub send_dropped: AtomicU64,
    pub tcp_connections: AtomicUsize,
    /// The engine's full counters (media bytes, drops by reason, NACK/PLI, receiver
    /// report histograms), copied each turn; read on scrape (`Sfu::stats`). `try_lock`
    /// on the worker's side: a reader never makes the worker wait.
    pub media: Mutex<EngineStats>,
    /// Time the worker spent outside `poll` (busy), in nanoseconds.
    pub busy_nanos: AtomicU64,
}

/// Longest sleep in `poll`: bounds how stale the worker's view of time can get.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// Most UDP bursts handled before commands and timers are looked at again.
const BURSTS_PER_TURN: usize = 8;

pub(crate) const UDP: Token = Token(0);
pub(crate) const LISTENER: Token = Token(1);
pub(crate) const WAKE: Token = Token(2);

/// A worker's sockets. In port-per-worker mode it reads and writes its own UDP socket
/// and accepts on its own TCP listener; in one-port mode the demultiplexer does the
/// reading and accepting and hands the results over through `inbox`, and `udp` is the
/// worker's duplicate of the shared socket, used only to send.
pub(crate) struct WorkerIo {
    pub poll: Poll,
    pub udp: UdpSocket,
    pub reads_udp: bool,
    pub listener: Option<TcpListener>,
    pub inbox: Option<mpsc::Receiver<Inbound>>,
}

pub(crate) struct Worker {
    pub index: usize,
    pub io: WorkerIo,
    pub commands: Receiver<Command>,
    pub engine: Engine,
    pub counters: Arc<Counters>,
    pub directory: Arc<Directory>,
    pub events: EventSink,
    /// [`crate::SfuConfig::tcp_handshake_timeout`].
    pub tcp_handshake_timeout: Duration,
}

/// What the run loop carries between turns besides the worker itself.
struct Loop {
    events: Events,
    rx: udp::Receiver,
    tx: udp::Sender,
    tcp: TcpConns,
    frames: Vec<(SocketAddr, Vec<u8>)>,
    /// Edge-triggered readiness not yet drained to `WouldBlock`.
    udp_ready: bool,
    /// One-port mode: the inbox held more than one turn takes.
    inbox_more: bool,
    last_sweep: Instant,
    /// When the worker last woke from `poll`, and its time awake so far.
    awake_since: Instant,
    busy: Duration,
}

impl Worker {
    pub(crate) fn run(mut self) {
        self.counters.alive.store(true, Ordering::Relaxed);
        info!(worker = self.index, addr = %self.engine.local_addr(), "SFU worker started");
        let result = catch_unwind(AssertUnwindSafe(|| self.run_loop()));
        if result.is_err() {
            error!(worker = self.index, "SFU worker crashed");
        }
        self.counters.alive.store(false, Ordering::Relaxed);
    }

    fn register(&mut self) -> std::io::Result<()> {
        let registry = self.io.poll.registry();
        if self.io.reads_udp {
            registry.register(&mut self.io.udp, UDP, Interest::READABLE)?;
        }
        if let Some(l) = self.io.listener.as_mut() {
            registry.register(l, LISTENER, Interest::READABLE)?;
        }
        Ok(())
    }

    fn run_loop(&mut self) {
        if let Err(e) = self.register() {
            error!(worker = self.index, "cannot watch the worker sockets: {e}");
            return;
        }
        let mut l = Loop {
            events: Events::with_capacity(256),
            rx: udp::Receiver::new(),
            tx: udp::Sender::new(),
            tcp: TcpConns::new(self.tcp_handshake_timeout),
            frames: Vec::new(),
            udp_ready: self.io.reads_udp,
            inbox_more: false,
            last_sweep: Instant::now(),
            awake_since: Instant::now(),
            busy: Duration::ZERO,
        };
        loop {
            loop {
                match self.commands.try_recv() {
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => {
                        info!(worker = self.index, "SFU worker stopping");
                        return;
                    }
                    Ok(cmd) => {
                        self.handle_command(cmd);
                        self.flush(&mut l);
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
            self.take_inbox(&mut l);
            let now = Instant::now();
            if self.engine.poll_timeout().is_some_and(|t| t <= now) {
                self.engine.handle_timeout(now);
                self.flush(&mut l);
            }
            if l.udp_ready {
                l.udp_ready = self.read_udp(&mut l);
            }
            if now.duration_since(l.last_sweep) >= l.tcp.sweep_period() {
                l.last_sweep = now;
                l.tcp.sweep(now, self.io.poll.registry());
            }
            self.publish_counters(&l);

            let wait = if l.udp_ready || l.inbox_more {
                Duration::ZERO
            } else {
                let now = Instant::now();
                self.engine
                    .poll_timeout()
                    .map(|t| t.saturating_duration_since(now))
                    .unwrap_or(MAX_WAIT)
                    .min(MAX_WAIT)
            };
            l.busy += l.awake_since.elapsed();
            let polled = self.io.poll.poll(&mut l.events, Some(wait));
            l.awake_since = Instant::now();
            if let Err(e) = polled
                && e.kind() != ErrorKind::Interrupted
            {
                error!(worker = self.index, "poll: {e}");
                return;
            }
            let mut conns = Vec::new();
            let mut accept = false;
            for ev in l.events.iter() {
                match ev.token() {
                    UDP => l.udp_ready = true,
                    WAKE => {}
                    LISTENER => accept = true,
                    t => conns.push((
                        t,
                        ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                        ev.is_writable(),
                    )),
                }
            }
            if accept && let Some(listener) = self.io.listener.as_ref() {
                l.tcp
                    .accept(listener, self.io.poll.registry(), Instant::now());
            }
            for (token, readable, writable) in conns {
                if writable {
                    l.tcp.writable(token, self.io.poll.registry());
                }
                if readable {
                    self.read_tcp(&mut l, token);
                }
            }
        }
    }

    /// Drain up to [`BURSTS_PER_TURN`] bursts from the UDP socket, driving the engine
    /// and sending its output after each. `true` if the socket may hold more.
    fn read_udp(&mut self, l: &mut Loop) -> bool {
        for _ in 0..BURSTS_PER_TURN {
            match l.rx.recv(&self.io.udp) {
                Ok(0) => return false,
                Ok(_) => {
                    self.engine
                        .handle_datagrams(Instant::now(), l.rx.datagrams());
                    self.flush(l);
                }
                // ICMP errors of earlier sends surface here on Linux (ECONNREFUSED):
                // nothing to do, the peer's ICE will notice.
                Err(e) => debug!(worker = self.index, "recvmmsg: {e}"),
            }
        }
        true
    }

    fn read_tcp(&mut self, l: &mut Loop, token: Token) {
        l.tcp
            .readable(token, self.io.poll.registry(), &mut l.frames);
        if !l.frames.is_empty() {
            let frames = std::mem::take(&mut l.frames);
            let now = Instant::now();
            let taken = self
                .engine
                .handle_tcp_packets(now, frames.iter().map(|(s, d)| (*s, d.as_slice())));
            if taken > 0 {
                l.tcp.delivered(token, now);
            }
            l.frames = frames;
            l.frames.clear();
            self.flush(l);
        }
    }

    /// One-port mode: what the demultiplexer handed over.
    fn take_inbox(&mut self, l: &mut Loop) {
        let Some(inbox) = self.io.inbox.as_ref() else {
            return;
        };
        // Bounded per turn so that a flood cannot starve commands and timers.
        let mut inbound = Vec::new();
        for _ in 0..64 {
            match inbox.try_recv() {
                Ok(m) => inbound.push(m),
                Err(_) => break,
            }
        }
        // Come back without sleeping: the waker fired once for all of these.
        l.inbox_more = inbound.len() == 64;
        for m in inbound {
            match m {
                Inbound::Datagrams(batch) => {
                    self.engine.handle_datagrams(
                        Instant::now(),
                        batch.iter().map(|(s, d)| (*s, d.as_slice())),
                    );
                    self.flush(l);
                }
                Inbound::Tcp { stream, peer, read } => {
                    let now = Instant::now();
                    if let Some(token) =
                        l.tcp
                            .adopt(stream, peer, read, self.io.poll.registry(), now)
                    {
                        self.read_tcp(l, token);
                    }
                }
            }
        }
    }

    fn handle_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Join {
                room,
                participant,
                offer,
                sources,
                record,
                reply,
            } => {
                let result =
                    self.engine
                        .join(now, room.clone(), participant.clone(), &offer, sources);
                if let Some(tap) = record {
                    self.engine.adopt_recording(&room, tap);
                }
                self.directory.join_handled(
                    self.index,
                    &room,
                    &participant,
                    result.is_err(),
                    self.engine.has_room(&room),
                    self.engine.has_participant(&participant),
                );
                call_reply(reply, result);
            }
            Command::Offer {
                participant,
                offer,
                sources,
                reply,
            } => {
                call_reply(reply, self.engine.offer(now, &participant, &offer, sources));
            }
            Command::Answer {
                participant,
                offer_id,
                answer,
                reply,
            } => {
                call_reply(
                    reply,
                    self.engine.answer(now, &participant, offer_id, &answer),
                );
            }
            Command::SetMuted {
                participant,
                source,
                muted,
            } => {
                let _ = self.engine.set_muted(now, &participant, source, muted);
            }
            Command::SetPublishing {
                participant,
                source,
                on,
            } => {
                let _ = self.engine.set_publishing(now, &participant, source, on);
            }
            Command::SetReceiveQuality {
                participant,
                quality,
            } => {
                let _ = self.engine.set_receive_quality(&participant, quality);
            }
            Command::SetTileViews { participant, views } => {
                let _ = self.engine.set_tile_views(now, &participant, views);
            }
            Command::Leave { participant } => {
                self.engine.leave(now, &participant);
            }
            Command::CloseRoom { room } => self.engine.close_room(now, &room),
            Command::Record { room, tap } => self.engine.set_recording(&room, tap),
            Command::Shutdown => {}
        }
    }

    /// Carry out the engine's outputs; the UDP datagrams go out in `sendmmsg` batches.
    fn flush(&mut self, l: &mut Loop) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Transmit {
                    transport: Transport::Udp,
                    destination,
                    contents,
                } => {
                    l.tx.push(destination, contents);
                    if l.tx.len() >= udp::BURST {
                        self.send_udp(l);
                    }
                }
                Output::Transmit {
                    transport: Transport::Tcp,
                    destination,
                    contents,
                } => l.tcp.send(destination, &contents, self.io.poll.registry()),
                Output::Event(e) => {
                    let sink = &self.events;
                    if catch_unwind(AssertUnwindSafe(|| sink(e))).is_err() {
                        error!(worker = self.index, "event sink panicked");
                    }
                }
                Output::RoomClosed(room) => self.directory.room_closed(self.index, &room),
                Output::ParticipantRemoved(id) => {
                    self.directory.participant_removed(self.index, &id)
                }
            }
        }
        self.send_udp(l);
    }

    fn send_udp(&mut self, l: &mut Loop) {
        if l.tx.is_empty() {
            return;
        }
        let done = l.tx.flush(&self.io.udp);
        if done.dropped > 0 {
            self.counters
                .send_dropped
                .fetch_add(done.dropped as u64, Ordering::Relaxed);
        }
    }

    fn publish_counters(&self, l: &Loop) {
        let s = self.engine.stats();
        let c = &self.counters;
        c.tcp_connections.store(l.tcp.len(), Ordering::Relaxed);
        c.rooms.store(self.engine.room_count(), Ordering::Relaxed);
        c.participants
            .store(self.engine.participant_count(), Ordering::Relaxed);
        c.datagrams_in.store(s.datagrams_in, Ordering::Relaxed);
        c.datagrams_out.store(s.datagrams_out, Ordering::Relaxed);
        c.datagrams_dropped
            .store(s.datagrams_dropped, Ordering::Relaxed);
        c.rtp_forwarded.store(s.rtp_forwarded, Ordering::Relaxed);
        c.busy_nanos.store(
            u64::try_from(l.busy.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if let Ok(mut media) = c.media.try_lock() {
            *media = s;
        }
    }
}

fn call_reply<T>(reply: Reply<T>, value: T) {
    if catch_unwind(AssertUnwindSafe(|| reply(value))).is_err() {
        error!("reply callback panicked");
    }
}
