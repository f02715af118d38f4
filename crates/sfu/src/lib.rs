//! meeting-sfu: the media engine (being written; see `api.rs` for the contract).

pub mod api;

pub use api::*;

use std::net::IpAddr;

/// How the engine runs. Built by the server from `MEDIASOUP_*` variables.
#[derive(Clone, Debug)]
pub struct SfuConfig {
    /// Worker threads; worker `i` binds `listen_ip:min_port + i` (UDP, and TCP for ICE-TCP).
    pub workers: usize,
    pub min_port: u16,
    pub max_port: u16,
    /// Address the sockets bind to (0.0.0.0 in production, 127.0.0.1 in tests).
    pub listen_ip: IpAddr,
    /// Address put in ICE candidates (`MEDIASOUP_ANNOUNCED_IP`).
    pub announced_ip: IpAddr,
}

/// Errors a request to the engine can end with.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SfuError {
    /// The SDP could not be parsed or was refused by str0m.
    #[error("invalid SDP: {0}")]
    InvalidSdp(String),
    #[error("no such participant")]
    UnknownParticipant,
    /// An answer for an offer that is no longer pending (superseded or already answered).
    #[error("stale answer")]
    StaleAnswer,
    #[error("the media worker is not running")]
    WorkerGone,
}

/// Errors starting the engine.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("port range {min}-{max} holds {available} ports but {workers} workers need one each")]
    PortRange { min: u16, max: u16, workers: usize, available: usize },
    #[error("cannot bind UDP {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
}

/// Handle to the running workers. Cheap to share (`Arc`) between the server's tasks.
#[derive(Debug)]
pub struct Sfu {}

impl Sfu {
    pub fn start(_config: SfuConfig, _events: EventSink) -> Result<Sfu, StartError> {
        todo!("SFU helper implements")
    }
    /// Add a participant to `room` (opening the room on the least-loaded worker if new)
    /// from the client's offer; replies with the answer.
    pub fn join(&self, _room: RoomId, _participant: ParticipantId, _offer: String, _sources: Vec<MidSource>, _reply: Reply<Result<SdpAnswer, SfuError>>) { todo!() }
    /// A client-initiated offer for an existing participant (renegotiation).
    pub fn offer(&self, _participant: ParticipantId, _offer: String, _sources: Vec<MidSource>, _reply: Reply<Result<SdpAnswer, SfuError>>) { todo!() }
    /// The client's answer to a [`SfuEvent::Renegotiate`] offer.
    pub fn answer(&self, _participant: ParticipantId, _offer_id: u64, _answer: String, _reply: Reply<Result<(), SfuError>>) { todo!() }
    /// Pause (muted = true) or resume forwarding one of the participant's publications.
    /// Subscribers keep their m-line (the tile stays, showing the participant's name).
    pub fn set_muted(&self, _participant: ParticipantId, _source: TrackSource, _muted: bool) { todo!() }
    /// Start or stop offering a publication to subscribers. Microphone and camera are
    /// published from join; a screen share is published only between
    /// `set_publishing(.., ScreenShare, true)` and `false`: stopping removes the
    /// subscribers' m-lines (renegotiation), so their tiles go away.
    pub fn set_publishing(&self, _participant: ParticipantId, _source: TrackSource, _on: bool) { todo!() }
    /// Remove a participant: every subscriber's track of it ends (renegotiation follows).
    pub fn leave(&self, _participant: ParticipantId) { todo!() }
    /// Close a room and drop all its participants.
    pub fn close_room(&self, _room: RoomId) { todo!() }
    pub fn stats(&self) -> Vec<WorkerStats> { todo!() }
    /// Stop all workers and join their threads.
    pub fn shutdown(&self) { todo!() }
}
