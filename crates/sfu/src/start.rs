//! Start-up: check the configuration, bind every worker's sockets, start the worker
//! threads (and the one-port demultiplexer). What it returns becomes the [`crate::Sfu`].

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Once};
use std::thread::JoinHandle;

use mio::net::{TcpListener as MioTcpListener, UdpSocket as MioUdp};
use mio::{Poll, Waker};
use tracing::{info, warn};

use crate::api::{EventSink, Transport};
use crate::config::SfuConfig;
use crate::directory::Directory;
use crate::engine::{Engine, EngineConfig};
use crate::net;
use crate::net::demux::{Demux, DemuxCounters, Inbox};
use crate::worker::{self, Command, Counters, Worker, WorkerIo};

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

/// What the handle keeps of one worker.
#[derive(Debug)]
pub(crate) struct WorkerHandle {
    pub commands: Sender<Command>,
    pub counters: Arc<Counters>,
    pub port: u16,
    /// Interrupts the worker's `poll` so that it handles a command at once.
    pub waker: Arc<Waker>,
}

/// The one-port demultiplexer, when there is one.
#[derive(Debug)]
pub(crate) struct DemuxHandle {
    pub stop: Arc<AtomicBool>,
    pub waker: Waker,
    pub counters: Arc<DemuxCounters>,
}

/// The running workers, handed to the [`crate::Sfu`] handle.
pub(crate) struct Launched {
    pub workers: Vec<WorkerHandle>,
    pub directory: Arc<Directory>,
    pub demux: Option<DemuxHandle>,
    pub threads: Vec<JoinHandle<()>>,
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

/// Bind the sockets and start the worker threads (and the demultiplexer in one-port
/// mode) for [`crate::Sfu::start`].
pub(crate) fn launch(config: SfuConfig, events: EventSink) -> Result<Launched, StartError> {
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
        let waker = Arc::new(Waker::new(poll.registry(), worker::WAKE).map_err(StartError::Poll)?);
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
        cfg.media_stats = config.media_stats;
        if !config.bandwidth_estimation {
            cfg.bwe_initial = None;
        }
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
            tcp_handshake_timeout: config.tcp_handshake_timeout,
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
            let waker = Waker::new(poll.registry(), net::demux::WAKE).map_err(StartError::Poll)?;
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
    Ok(Launched {
        workers: handles,
        directory,
        demux,
        threads,
    })
}
