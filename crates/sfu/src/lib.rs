//! meeting-sfu: the media engine. A selective forwarding unit on str0m, with no async
//! runtime: worker threads, each with one UDP socket, forward RTP between the
//! participants of the rooms placed on them.
//!
//! Layout (read in this order):
//! - [`api`]: the contract with the server: IDs, [`SfuEvent`], [`Reply`], [`EventSink`].
//! - this file: [`Sfu`], the handle the server holds (`Send + Sync`, in an `Arc`):
//!   starts the workers, places rooms, turns method calls into commands.
//! - `worker.rs`: one thread per worker: socket, clock, command channel → [`engine::Engine`].
//! - [`engine`]: the sans-IO core; takes `(now, input)` and returns outputs, so tests
//!   drive it with a simulated clock. `engine/mod.rs`: commands, routing, the drive loop,
//!   removal; `engine/publish.rs`: publications and negotiation; `engine/forwarding.rs`:
//!   the per-packet path and keyframe requests.
//! - `model.rs`: its data: Room → Participant → Publication / Subscription.
//! - `forward.rs`: per-packet helpers: sequence rewriting, VP8 keyframes, layer choice.
//!
//! Invariants:
//! - A room lives on exactly one worker; all its participants share that worker's socket.
//! - Only a worker thread touches its engine; the handle only sends commands.
//! - Remote input (SDP, datagrams) never panics a worker: it is parsed by str0m or by
//!   bounds-checked code here, and refused input is counted (`datagrams_dropped`). A
//!   `catch_unwind` around each participant's str0m calls is the last guard: it closes
//!   that participant only.
//! - Every request gets exactly one [`Reply`], from the worker or, if the worker is
//!   gone, from the caller's thread.
//!
//! See `docs/sfu.md` for the path of one RTP packet and the design decisions.

pub mod api;
pub mod engine;
mod forward;
#[doc(hidden)]
pub mod fuzzing;
mod model;
mod net;
mod worker;

pub use api::*;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::net::{TcpListener as MioTcpListener, UdpSocket as MioUdp};
use mio::{Poll, Waker};
use tracing::{info, warn};

use crate::engine::{Engine, EngineConfig};
use crate::net::demux::{Demux, DemuxCounters, Inbox};
use crate::worker::{Command, Counters, Directory, Placement, Worker, WorkerIo, lock};

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
    /// One-port mode: every worker shares this one UDP port (and TCP port, with `tcp`)
    /// instead of `min_port + i`; a demultiplexer thread hands each datagram to the
    /// worker that owns its sender. `min_port`/`max_port` are then unused.
    pub single_port: Option<u16>,
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
    /// the first non-loopback IPv4 address announced.
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
            single_port: None,
        }
    }
}

/// The first non-loopback IPv4 address of this host (the one the default route uses),
/// for when `MEDIASOUP_ANNOUNCED_IP` is unset. Connecting a UDP socket sends nothing;
/// it only asks the kernel for the route.
pub fn detect_announced_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Errors starting the engine.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Fewer ports in `min_port..=max_port` than workers.
    #[error("port range {min}-{max} holds {available} ports but {workers} workers need one each")]
    PortRange {
        min: u16,
        max: u16,
        workers: usize,
        available: usize,
    },
    /// A worker socket could not be bound (port in use, address not local …).
    #[error("cannot bind {transport:?} {addr}: {source}")]
    Bind {
        transport: Transport,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The OS refused the event queue (`epoll`) a worker waits on.
    #[error("cannot create the worker's event queue: {0}")]
    Poll(std::io::Error),
    /// `announced_ip` is loopback and `allow_loopback_announced` is off.
    #[error(
        "MEDIASOUP_ANNOUNCED_IP is {0}: do not use 127.0.0.1, it causes WebRTC connection failures \
         (browsers cannot reach it); set it to this machine's LAN or public IP"
    )]
    LoopbackAnnounced(IpAddr),
    /// The OS refused to start a thread.
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
}

#[derive(Debug)]
struct WorkerHandle {
    commands: Sender<Command>,
    counters: Arc<Counters>,
    port: u16,
    /// Interrupts the worker's `poll` so that it handles a command at once.
    waker: Arc<Waker>,
}

/// The one-port demultiplexer, when there is one.
#[derive(Debug)]
struct DemuxHandle {
    stop: Arc<AtomicBool>,
    waker: Waker,
    counters: Arc<DemuxCounters>,
}

/// Handle to the running workers. Cheap to share (`Arc`) between the server's tasks.
#[derive(Debug)]
pub struct Sfu {
    workers: Vec<WorkerHandle>,
    directory: Arc<Directory>,
    demux: Option<DemuxHandle>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// The sockets of one worker before its thread starts.
struct Bound {
    port: u16,
    udp: MioUdp,
    reads_udp: bool,
    listener: Option<MioTcpListener>,
}

fn bind_error(
    transport: Transport,
    addr: SocketAddr,
) -> impl Fn(std::io::Error) -> StartError + Copy {
    move |source| StartError::Bind {
        transport,
        addr,
        source,
    }
}

fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, StartError> {
    let bind_err = bind_error(Transport::Udp, addr);
    let socket = UdpSocket::bind(addr).map_err(bind_err)?;
    socket.set_nonblocking(true).map_err(bind_err)?;
    let (rcv, snd) = net::udp::enlarge_buffers(&socket);
    if rcv < net::udp::SOCKET_BUFFER {
        warn!(
            %addr, granted = rcv, wanted = net::udp::SOCKET_BUFFER,
            "UDP receive buffer smaller than asked: raise net.core.rmem_max (sysctl) or run \
             with CAP_NET_ADMIN, or bursts of video may be dropped"
        );
    }
    tracing::debug!(%addr, rcv, snd, "UDP socket buffers");
    Ok(socket)
}

fn bind_tcp(addr: SocketAddr) -> Result<MioTcpListener, StartError> {
    let bind_err = bind_error(Transport::Tcp, addr);
    let listener = TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    Ok(MioTcpListener::from_std(listener))
}

static CRYPTO: Once = Once::new();

/// Install str0m's default crypto provider (aws-lc-rs) once per process, as str0m's
/// examples do; every `Rtc` needs one.
pub(crate) fn install_crypto() {
    CRYPTO.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

impl Sfu {
    pub fn start(config: SfuConfig, events: EventSink) -> Result<Sfu, StartError> {
        install_crypto();
        if config.announced_ip.is_loopback() {
            if !config.allow_loopback_announced {
                return Err(StartError::LoopbackAnnounced(config.announced_ip));
            }
            warn!(
                ip = %config.announced_ip,
                "announcing a loopback address: only clients on this machine can connect"
            );
        }
        let workers = if config.workers == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            config.workers
        };
        let available = if config.max_port >= config.min_port {
            usize::from(config.max_port - config.min_port) + 1
        } else {
            0
        };
        if config.single_port.is_none() && workers > available {
            return Err(StartError::PortRange {
                min: config.min_port,
                max: config.max_port,
                workers,
                available,
            });
        }
        // Port per worker: each worker reads its own socket. One port: the
        // demultiplexer reads the one socket and every worker sends on a duplicate.
        let mut bound = Vec::with_capacity(workers);
        let mut shared = None;
        match config.single_port {
            None => {
                for i in 0..workers {
                    let port = config.min_port + i as u16;
                    let addr = SocketAddr::new(config.listen_ip, port);
                    let udp = MioUdp::from_std(bind_udp(addr)?);
                    let listener = config.tcp.then(|| bind_tcp(addr)).transpose()?;
                    bound.push(Bound {
                        port,
                        udp,
                        reads_udp: true,
                        listener,
                    });
                }
            }
            Some(port) => {
                let addr = SocketAddr::new(config.listen_ip, port);
                let socket = bind_udp(addr)?;
                let listener = config.tcp.then(|| bind_tcp(addr)).transpose()?;
                for _ in 0..workers {
                    let dup = socket
                        .try_clone()
                        .map_err(bind_error(Transport::Udp, addr))?;
                    bound.push(Bound {
                        port,
                        udp: MioUdp::from_std(dup),
                        reads_udp: false,
                        listener: None,
                    });
                }
                shared = Some((MioUdp::from_std(socket), listener));
            }
        }

        let directory = Arc::new(Directory::default());
        let mut handles = Vec::with_capacity(workers);
        let mut threads = Vec::with_capacity(workers);
        let mut inboxes = Vec::new();
        for (index, b) in bound.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel();
            let poll = Poll::new().map_err(StartError::Poll)?;
            let waker =
                Arc::new(Waker::new(poll.registry(), worker::WAKE).map_err(StartError::Poll)?);
            let inbox = if b.reads_udp {
                None
            } else {
                let (itx, irx) = mpsc::channel();
                inboxes.push(Inbox {
                    tx: itx,
                    waker: waker.clone(),
                });
                Some(irx)
            };
            let counters = Arc::new(Counters::default());
            counters.alive.store(true, Ordering::Relaxed);
            let mut cfg = EngineConfig::new(SocketAddr::new(config.announced_ip, b.port));
            cfg.connect_timeout = config.connect_timeout;
            cfg.reconnect_timeout = config.reconnect_timeout;
            cfg.tcp = config.tcp;
            cfg.ufrag_prefix = net::ufrag_prefix(index);
            let worker = Worker {
                index,
                io: WorkerIo {
                    poll,
                    udp: b.udp,
                    reads_udp: b.reads_udp,
                    listener: b.listener,
                    inbox,
                },
                commands: rx,
                engine: Engine::new(cfg),
                counters: counters.clone(),
                directory: directory.clone(),
                events: events.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("sfu-worker-{index}"))
                .spawn(move || worker.run())
                .map_err(StartError::Thread)?;
            threads.push(thread);
            handles.push(WorkerHandle {
                commands: tx,
                counters,
                port: b.port,
                waker,
            });
        }
        let demux = match shared {
            None => None,
            Some((udp, listener)) => {
                let poll = Poll::new().map_err(StartError::Poll)?;
                let waker =
                    Waker::new(poll.registry(), net::demux::WAKE).map_err(StartError::Poll)?;
                let stop = Arc::new(AtomicBool::new(false));
                let counters = Arc::new(DemuxCounters::default());
                let d = Demux {
                    poll,
                    udp,
                    listener,
                    workers: inboxes,
                    stop: stop.clone(),
                    counters: counters.clone(),
                };
                let thread = std::thread::Builder::new()
                    .name("sfu-demux".into())
                    .spawn(move || d.run())
                    .map_err(StartError::Thread)?;
                threads.push(thread);
                Some(DemuxHandle {
                    stop,
                    waker,
                    counters,
                })
            }
        };
        info!(workers, min_port = config.min_port, announced = %config.announced_ip, "SFU started");
        Ok(Sfu {
            workers: handles,
            directory,
            demux,
            threads: Mutex::new(threads),
        })
    }

    /// The UDP port of each worker, in worker order.
    pub fn ports(&self) -> Vec<u16> {
        self.workers.iter().map(|w| w.port).collect()
    }

    /// Queue `cmd` on `worker` and wake it. If the worker is gone, the command's reply
    /// gets `WorkerGone` here and `false` is returned.
    fn send(&self, worker: usize, cmd: Command) -> bool {
        let Some(w) = self.workers.get(worker) else {
            cmd.fail(SfuError::WorkerGone);
            return false;
        };
        if let Err(mpsc::SendError(cmd)) = w.commands.send(cmd) {
            cmd.fail(SfuError::WorkerGone);
            return false;
        }
        // Best effort: without it the worker still wakes within its poll timeout.
        let _ = w.waker.wake();
        true
    }

    fn worker_of(&self, participant: &ParticipantId) -> Option<usize> {
        lock(&self.directory.participants).get(participant).copied()
    }

    /// The worker with the fewest participants (then rooms) for a new room.
    fn least_loaded(&self, rooms: &HashMap<RoomId, Placement>) -> usize {
        let mut placed = vec![0usize; self.workers.len()];
        for p in rooms.values() {
            if let Some(n) = placed.get_mut(p.worker) {
                *n += 1;
            }
        }
        (0..self.workers.len())
            .filter(|&i| self.workers[i].counters.alive.load(Ordering::Relaxed))
            .min_by_key(|&i| {
                (
                    self.workers[i]
                        .counters
                        .participants
                        .load(Ordering::Relaxed)
                        + placed[i],
                    placed[i],
                )
            })
            .unwrap_or(0)
    }

    /// Add a participant to `room` (opening the room on the least-loaded worker if new)
    /// from the client's offer; replies with the answer.
    pub fn join(
        &self,
        room: RoomId,
        participant: ParticipantId,
        offer: String,
        sources: Vec<MidSource>,
        reply: Reply<Result<SdpAnswer, SfuError>>,
    ) {
        // Under the rooms lock until sent, so that a worker forgetting an emptied room
        // sees this join as pending (see `Placement::pending_joins`).
        let mut rooms = lock(&self.directory.rooms);
        let worker = match rooms.get_mut(&room) {
            Some(p) => {
                p.pending_joins += 1;
                p.worker
            }
            None => {
                let worker = self.least_loaded(&rooms);
                rooms.insert(
                    room.clone(),
                    Placement {
                        worker,
                        pending_joins: 1,
                    },
                );
                worker
            }
        };
        {
            let mut parts = lock(&self.directory.participants);
            if parts.contains_key(&participant) {
                if let Some(p) = rooms.get_mut(&room) {
                    p.pending_joins -= 1;
                }
                drop(parts);
                drop(rooms);
                reply(Err(SfuError::DuplicateParticipant));
                return;
            }
            parts.insert(participant.clone(), worker);
        }
        let (room_key, id) = (room.clone(), participant.clone());
        if !self.send(
            worker,
            Command::Join {
                room,
                participant,
                offer,
                sources,
                reply,
            },
        ) {
            // The worker died: forget what lived there so that the next join of this
            // room is placed on a live worker.
            rooms.remove(&room_key);
            lock(&self.directory.participants).remove(&id);
        }
    }

    /// A client-initiated offer for an existing participant (renegotiation).
    pub fn offer(
        &self,
        participant: ParticipantId,
        offer: String,
        sources: Vec<MidSource>,
        reply: Reply<Result<SdpAnswer, SfuError>>,
    ) {
        match self.worker_of(&participant) {
            Some(w) => {
                self.send(
                    w,
                    Command::Offer {
                        participant,
                        offer,
                        sources,
                        reply,
                    },
                );
            }
            None => reply(Err(SfuError::UnknownParticipant)),
        }
    }

    /// The client's answer to a [`SfuEvent::Renegotiate`] offer.
    pub fn answer(
        &self,
        participant: ParticipantId,
        offer_id: u64,
        answer: String,
        reply: Reply<Result<(), SfuError>>,
    ) {
        match self.worker_of(&participant) {
            Some(w) => {
                self.send(
                    w,
                    Command::Answer {
                        participant,
                        offer_id,
                        answer,
                        reply,
                    },
                );
            }
            None => reply(Err(SfuError::UnknownParticipant)),
        }
    }

    /// Pause (muted = true) or resume forwarding one of the participant's publications.
    /// Subscribers keep their m-line (the tile stays, showing the participant's name).
    pub fn set_muted(&self, participant: ParticipantId, source: TrackSource, muted: bool) {
        if let Some(w) = self.worker_of(&participant) {
            self.send(
                w,
                Command::SetMuted {
                    participant,
                    source,
                    muted,
                },
            );
        }
    }

    /// Start or stop offering a publication to subscribers. Microphone and camera are
    /// published from join; a screen share is published only between
    /// `set_publishing(.., ScreenShare, true)` and `false`: stopping removes the
    /// subscribers' m-lines (renegotiation), so their tiles go away.
    pub fn set_publishing(&self, participant: ParticipantId, source: TrackSource, on: bool) {
        if let Some(w) = self.worker_of(&participant) {
            self.send(
                w,
                Command::SetPublishing {
                    participant,
                    source,
                    on,
                },
            );
        }
    }

    /// Remove a participant: every subscriber's track of it ends (renegotiation follows).
    pub fn leave(&self, participant: ParticipantId) {
        if let Some(w) = self.worker_of(&participant) {
            self.send(w, Command::Leave { participant });
        }
    }

    /// Close a room and drop all its participants.
    pub fn close_room(&self, room: RoomId) {
        let worker = lock(&self.directory.rooms).get(&room).map(|p| p.worker);
        if let Some(w) = worker {
            self.send(w, Command::CloseRoom { room });
        }
    }

    pub fn stats(&self) -> Vec<WorkerStats> {
        self.workers
            .iter()
            .enumerate()
            .map(|(index, w)| {
                let c = &w.counters;
                WorkerStats {
                    index,
                    port: w.port,
                    alive: c.alive.load(Ordering::Relaxed),
                    rooms: c.rooms.load(Ordering::Relaxed),
                    participants: c.participants.load(Ordering::Relaxed),
                    datagrams_in: c.datagrams_in.load(Ordering::Relaxed),
                    datagrams_out: c.datagrams_out.load(Ordering::Relaxed),
                    datagrams_dropped: c.datagrams_dropped.load(Ordering::Relaxed),
                    rtp_forwarded: c.rtp_forwarded.load(Ordering::Relaxed),
                    send_dropped: c.send_dropped.load(Ordering::Relaxed),
                    tcp_connections: c.tcp_connections.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// The demultiplexer's counters in one-port mode (`None` otherwise).
    pub fn one_port_stats(&self) -> Option<OnePortStats> {
        self.demux.as_ref().map(|d| OnePortStats {
            datagrams_in: d.counters.datagrams_in.load(Ordering::Relaxed),
            unrouted: d.counters.unrouted.load(Ordering::Relaxed),
        })
    }

    /// Stop all workers and join their threads. Idempotent.
    pub fn shutdown(&self) {
        let threads = std::mem::take(&mut *lock(&self.threads));
        if threads.is_empty() {
            return;
        }
        for i in 0..self.workers.len() {
            self.send(i, Command::Shutdown);
        }
        if let Some(d) = &self.demux {
            d.stop.store(true, Ordering::Relaxed);
            let _ = d.waker.wake();
        }
        for t in threads {
            let _ = t.join();
        }
        info!("SFU stopped");
    }
}

impl Drop for Sfu {
    fn drop(&mut self) {
        self.shutdown();
    }
}
