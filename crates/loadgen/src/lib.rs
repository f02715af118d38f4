//! `meeting-load`: synthetic participants for meeting-service, and the figures that
//! say how efficiently its SFU forwards.
//!
//! Layout:
//! - [`sio`]: a Socket.IO v4 client (framing + WebSocket transport) for the signaling.
//! - [`rest`]: tokens (guest endpoint or minted with `JWT_SECRET`) and meeting creation.
//! - [`synth`]: synthetic Opus and VP8 payloads, with a send stamp in every payload.
//! - [`peer`]: one participant, a str0m `Rtc` in RTP mode on its own UDP socket.
//! - [`layers`]: per publisher and layer, what a participant received and sent, and
//!   the dynacast changes (`layer-needed`) it applied.
//! - [`adaptive`]: the signaling side of adaptive media: `layer-needed` to the media
//!   thread, `active-speaker` events collected; [`layer_report`] turns both into the
//!   report's per-subscriber layer table, dynacast and active-speaker sections.
//! - [`engine`]: the media threads, each driving many peers from one `mio::Poll`.
//! - [`scenario`]: joins participants per scenario, shows progress, collects results.
//! - [`janus`]: `--target janus`: the same scenarios against Janus's VideoRoom.
//! - [`soak`]: `meeting-load soak`: join/leave churn (abrupt closes included) with media,
//!   and the server's figures at start and end, which must be flat.
//! - [`cpu`]: process CPU time from `/proc/<pid>/stat`.
//! - [`procfs`]: a process's RSS, open descriptors and threads from `/proc/<pid>`.
//! - [`report`]: the JSON report and the printed summary.
//! - [`floor`]: the physical floor: SRTP protect + UDP send of the same packets.
//! - [`udp_batch`]: `sendmmsg` and per-thread CPU time (the crate's `unsafe`).
//!
//! Invariants: all traffic goes to the target URL and to the addresses the server's
//! SDP names; sockets bind 127.0.0.1 only. Input from the network never panics.

pub mod adaptive;
pub mod cpu;
pub mod engine;
pub mod floor;
pub mod janus;
pub mod layer_report;
pub mod layers;
pub mod peer;
pub mod procfs;
pub mod report;
pub mod rest;
pub mod scenario;
pub mod sio;
pub mod soak;
pub mod stats;
pub mod synth;
pub mod udp_batch;
