//! meeting-sfu: the media engine. A selective forwarding unit on str0m, with no async
//! runtime: worker threads, each with one UDP socket, forward RTP between the
//! participants of the rooms placed on them.
//!
//! Layout (read in this order):
//! - [`api`]: the contract with the server: IDs, [`SfuEvent`], [`Reply`], [`EventSink`],
//!   [`SfuError`] (with [`SdpError`], the user-facing reasons an SDP is refused).
//! - `config.rs`: [`SfuConfig`], and [`detect_announced_ip`] (the server uses it too).
//! - `handle.rs`: [`Sfu`], the handle the server holds (`Send + Sync`, in an `Arc`):
//!   places rooms, turns method calls into commands on the owning worker's channel.
//! - `start.rs`: [`Sfu::start`]'s work: checks, socket binding, worker threads;
//!   [`StartError`].
//! - `directory.rs`: which worker holds which room and participant ("a room lives on one
//!   worker"), changed only through its named operations.
//! - `worker.rs`: one thread per worker: sockets, clock, command channel →
//!   [`engine::Engine`]. `net/`: its UDP batches, ICE-TCP connections, and the one-port
//!   demultiplexer.
//! - [`engine`]: the sans-IO core; takes `(now, input)` and returns outputs, so tests
//!   drive it with a simulated clock. Its module documentation lists its files
//!   (commands, network input and routes, the drive loop, publications, forwarding).
//! - `model.rs`: its data: Room → Participant → Publication / Subscription.
//! - `forward.rs`: per-packet helpers: sequence rewriting, VP8 keyframes, layer choice.
//! - [`allocate`]: one subscriber's allocation of its downlink across its video tracks
//!   (priority, tile size, hysteresis); `vp8_numbering.rs`: VP8 picture-ID continuity
//!   across layer switches.
//! - [`speaker`]: the dominant-speaker detector (RFC 6464 audio levels, smoothed).
//! - [`histogram`]: fixed-bucket histograms (receiver-report loss and RTT) kept in plain
//!   integers on the worker thread, published with the worker's counters.
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

pub mod allocate;
pub mod api;
mod config;
mod directory;
pub mod engine;
mod forward;
/// Entry points of the fuzz targets (`fuzz/`) and their corpus tests; not API.
#[doc(hidden)]
pub mod fuzzing;
mod handle;
pub mod histogram;
mod model;
mod net;
pub mod speaker;
mod start;
mod vp8_numbering;
mod worker;

pub use api::*;
pub use config::{SfuConfig, detect_announced_ip, local_ipv4_addresses};
pub use engine::offered_sources;
pub use handle::Sfu;
pub use start::StartError;

pub(crate) use start::install_crypto;
