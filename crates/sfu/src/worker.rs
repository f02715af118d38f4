//! A worker thread: the only place with a socket and a clock. It owns one UDP socket
//! and one [`Engine`]; it reads commands from its channel, datagrams from the socket,
//! and feeds both to the engine with `Instant::now()`, then carries out the engine's
//! outputs (send datagrams, call the event sink, update the directory).

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};

use crate::SfuError;
use crate::api::*;
use crate::engine::{Engine, Output};

/// What the [`crate::Sfu`] handle asks of a worker.
pub(crate) enum Command {
    Join {
        room: RoomId,
        participant: ParticipantId,
        offer: String,
        sources: Vec<MidSource>,
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
    Leave {
        participant: ParticipantId,
    },
    CloseRoom {
        room: RoomId,
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
}

/// Which worker holds which room and participant. Shared by the handle and workers.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    pub rooms: Mutex<HashMap<RoomId, Placement>>,
    pub participants: Mutex<HashMap<ParticipantId, usize>>,
}

#[derive(Debug)]
pub(crate) struct Placement {
    pub worker: usize,
    /// Joins sent to the worker and not yet handled by it. A room that empties is
    /// forgotten only when none is in flight; otherwise the next join would open the
    /// room on another worker while a queued join reopens it on this one.
    pub pending_joins: usize,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Longest sleep in `recv_from`: bounds how stale the worker's view of time can get if
/// a wake datagram is lost.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// Most datagrams read from the socket before the engine is driven.
const BURST: usize = 32;

pub(crate) struct Worker {
    pub index: usize,
    pub socket: UdpSocket,
    pub commands: Receiver<Command>,
    pub engine: Engine,
    pub counters: Arc<Counters>,
    pub directory: Arc<Directory>,
    pub events: EventSink,
    /// Source of the handle's wake-up datagrams (ignored, not counted as dropped).
    pub waker: Option<SocketAddr>,
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

    fn run_loop(&mut self) {
        let mut bufs: Vec<Vec<u8>> = (0..BURST).map(|_| vec![0u8; 2048]).collect();
        let mut got: Vec<(SocketAddr, usize)> = Vec::with_capacity(BURST);
        let mut read_timeout = None;
        loop {
            loop {
                match self.commands.try_recv() {
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => {
                        info!(worker = self.index, "SFU worker stopping");
                        return;
                    }
                    Ok(cmd) => self.handle_command(cmd),
                    Err(TryRecvError::Empty) => break,
                }
            }
            let now = Instant::now();
            if self.engine.poll_timeout().is_some_and(|t| t <= now) {
                self.engine.handle_timeout(now);
                self.flush();
            }
            let wait = self
                .engine
                .poll_timeout()
                .map(|t| t.saturating_duration_since(now))
                .unwrap_or(MAX_WAIT)
                .clamp(Duration::from_millis(1), MAX_WAIT);
            // Whole milliseconds: fewer `setsockopt` calls, and timers need no more.
            let wait = Duration::from_millis(wait.as_millis() as u64);
            if read_timeout != Some(wait) {
                if let Err(e) = self.socket.set_read_timeout(Some(wait)) {
                    warn!(worker = self.index, "set_read_timeout: {e}");
                }
                read_timeout = Some(wait);
            }
            match self.socket.recv_from(&mut bufs[0]) {
                Ok((n, source)) => {
                    got.clear();
                    got.push((source, n));
                    // Drain what else is queued (up to BURST) without blocking, so that
                    // the engine polls subscribers once per burst.
                    if self.socket.set_nonblocking(true).is_ok() {
                        while got.len() < BURST {
                            match self.socket.recv_from(&mut bufs[got.len()]) {
                                Ok((n, source)) => got.push((source, n)),
                                Err(_) => break,
                            }
                        }
                        if let Err(e) = self.socket.set_nonblocking(false) {
                            warn!(worker = self.index, "set_nonblocking: {e}");
                        }
                    }
                    let waker = self.waker;
                    let batch = got
                        .iter()
                        .zip(bufs.iter())
                        .filter(|((source, _), _)| Some(*source) != waker)
                        .map(|((source, n), buf)| (*source, &buf[..*n]));
                    self.engine.handle_datagrams(Instant::now(), batch);
                    self.flush();
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                // ICMP errors of earlier sends surface here on Linux (ECONNREFUSED):
                // nothing to do, the peer's ICE will notice.
                Err(e) => debug!(worker = self.index, "recv_from: {e}"),
            }
            self.publish_counters();
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
                reply,
            } => {
                let result =
                    self.engine
                        .join(now, room.clone(), participant.clone(), &offer, sources);
                {
                    let mut rooms = lock(&self.directory.rooms);
                    if let Some(p) = rooms.get_mut(&room) {
                        p.pending_joins = p.pending_joins.saturating_sub(1);
                        if result.is_err() && p.pending_joins == 0 && !self.engine.has_room(&room) {
                            rooms.remove(&room);
                        }
                    }
                }
                if result.is_err() {
                    let mut parts = lock(&self.directory.participants);
                    if parts.get(&participant) == Some(&self.index)
                        && !self.engine.has_participant(&participant)
                    {
                        parts.remove(&participant);
                    }
                }
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
            Command::Leave { participant } => {
                self.engine.leave(now, &participant);
            }
            Command::CloseRoom { room } => self.engine.close_room(now, &room),
            Command::Shutdown => {}
        }
        self.flush();
    }

    fn flush(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Transmit {
                    destination,
                    contents,
                } => {
                    if let Err(e) = self.socket.send_to(&contents, destination) {
                        debug!(worker = self.index, %destination, "send_to: {e}");
                    }
                }
                Output::Event(e) => {
                    let sink = &self.events;
                    if catch_unwind(AssertUnwindSafe(|| sink(e))).is_err() {
                        error!(worker = self.index, "event sink panicked");
                    }
                }
                Output::RoomClosed(room) => {
                    let mut rooms = lock(&self.directory.rooms);
                    if rooms
                        .get(&room)
                        .is_some_and(|p| p.worker == self.index && p.pending_joins == 0)
                    {
                        rooms.remove(&room);
                    }
                }
                Output::ParticipantRemoved(id) => {
                    let mut parts = lock(&self.directory.participants);
                    if parts.get(&id) == Some(&self.index) {
                        parts.remove(&id);
                    }
                }
            }
        }
    }

    fn publish_counters(&self) {
        let s = self.engine.stats();
        let c = &self.counters;
        c.rooms.store(self.engine.room_count(), Ordering::Relaxed);
        c.participants
            .store(self.engine.participant_count(), Ordering::Relaxed);
        c.datagrams_in.store(s.datagrams_in, Ordering::Relaxed);
        c.datagrams_out.store(s.datagrams_out, Ordering::Relaxed);
        c.datagrams_dropped
            .store(s.datagrams_dropped, Ordering::Relaxed);
        c.rtp_forwarded.store(s.rtp_forwarded, Ordering::Relaxed);
    }
}

fn call_reply<T>(reply: Reply<T>, value: T) {
    if catch_unwind(AssertUnwindSafe(|| reply(value))).is_err() {
        error!("reply callback panicked");
    }
}
