//! The engine's contract with the server: IDs (the wire's own, from `meeting-proto`),
//! commands' payloads and the events it emits.
//!
//! The server (async, tokio) never touches a worker's state. It calls methods on
//! [`crate::Sfu`], which turn into commands on the owning worker's channel, and it gets
//! answers through [`Reply`] callbacks and [`SfuEvent`]s through the [`EventSink`] it
//! handed to [`crate::Sfu::start`]. Callbacks keep this crate free of any async runtime:
//! the server puts a `tokio::sync::oneshot::Sender` inside the closure.

use std::sync::Arc;

/// How a packet reaches or leaves a worker: its UDP socket, or an ICE-TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl From<Transport> for str0m::net::Protocol {
    fn from(t: Transport) -> Self {
        match t {
            Transport::Udp => str0m::net::Protocol::Udp,
            Transport::Tcp => str0m::net::Protocol::Tcp,
        }
    }
}

/// A meeting's room in the engine: the meeting's `roomId`, the wire's own type.
pub use proto::RoomId;

/// One connection of one user in a room: the wire's `peerId` (the engine calls a peer a
/// participant). The server makes it unique per join, so that a user who reconnects gets
/// a fresh participant and the old one can be removed without racing the new one.
pub use proto::PeerId as ParticipantId;

/// What a published track carries. Clients say which of their m-lines is which
/// ([`MidSource`]); without that, the first audio m-line is the microphone, the first
/// video m-line the camera and the second video m-line the screen share.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TrackSource {
    Microphone,
    Camera,
    ScreenShare,
    ScreenShareAudio,
}

impl TrackSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackSource::Microphone => "microphone",
            TrackSource::Camera => "camera",
            TrackSource::ScreenShare => "screen",
            TrackSource::ScreenShareAudio => "screen-audio",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "microphone" | "audio" | "mic" => TrackSource::Microphone,
            "camera" | "video" => TrackSource::Camera,
            "screen" | "screenshare" | "screen-share" => TrackSource::ScreenShare,
            "screen-audio" => TrackSource::ScreenShareAudio,
            _ => return None,
        })
    }
}

/// How much of the simulcast cameras it receives a subscriber wants
/// (`change-video-quality`): the layer the gallery's size picks for everyone
/// ([`ReceiveQuality::Full`]), or at least one or two layers below the best. A camera
/// sent without simulcast has one layer, forwarded whatever the choice.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ReceiveQuality {
    #[default]
    Full,
    Reduced,
    Lowest,
}

impl ReceiveQuality {
    /// How many layers below the best one this subscriber gets at least.
    pub fn min_skip(self) -> usize {
        match self {
            ReceiveQuality::Full => 0,
            ReceiveQuality::Reduced => 1,
            ReceiveQuality::Lowest => 2,
        }
    }
}

/// What a subscriber shows of one remote video: the page reports every remote tile's
/// visibility and size (`Engine::set_tile_views`). The SFU never sends a layer larger
/// than the tile needs, and nothing to a hidden tile.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TileView {
    pub from: ParticipantId,
    pub source: TrackSource,
    /// On screen: false when scrolled away, collapsed, or the page is in the background.
    pub visible: bool,
    /// Size on screen in device pixels.
    pub width: u32,
    pub height: u32,
}

/// At most this many tiles are kept per subscriber (a page shows far fewer); the rest of
/// a longer report is ignored.
pub const MAX_TILE_VIEWS: usize = 256;

/// A client's statement that m-line `mid` of its offer carries `source`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MidSource {
    pub mid: String,
    pub source: TrackSource,
}

/// One m-line that the server sends to a subscriber, so the client can put the track
/// in the right tile.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OutgoingTrack {
    pub mid: String,
    pub from: ParticipantId,
    pub source: TrackSource,
}

/// The answer to a client's offer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SdpAnswer {
    pub sdp: String,
    /// Every m-line the server sends to this client, after this answer.
    pub tracks: Vec<OutgoingTrack>,
}

/// ICE/DTLS state of one participant, as the server and the other clients care.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConnectionState {
    Connecting,
    Connected,
    /// ICE lost the path; the participant may come back by itself.
    Disconnected,
}

/// Why a participant left the engine without the server asking.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum GoneReason {
    /// No ICE/DTLS connection was made in time after joining.
    ConnectTimeout,
    /// The connection was lost and did not come back in time.
    ConnectionLost,
    /// The peer closed DTLS or str0m reported a fatal error (the text says which).
    Failed(String),
}

/// Events the engine reports to the server.
#[derive(Clone, PartialEq, Debug)]
pub enum SfuEvent {
    ConnectionState {
        room: RoomId,
        participant: ParticipantId,
        state: ConnectionState,
    },
    /// A participant's track started arriving (first RTP on its m-line).
    PublicationAdded {
        room: RoomId,
        participant: ParticipantId,
        source: TrackSource,
    },
    /// A participant's track is gone (unpublished, or the participant left).
    PublicationRemoved {
        room: RoomId,
        participant: ParticipantId,
        source: TrackSource,
    },
    /// The server wants to change what it sends to `participant`: deliver `offer` to the
    /// client and pass its answer to [`crate::Sfu::answer`] with the same `offer_id`.
    Renegotiate {
        room: RoomId,
        participant: ParticipantId,
        offer_id: u64,
        offer: String,
        tracks: Vec<OutgoingTrack>,
    },
    /// The room's dominant speaker changed, or who is speaking did (`crate::speaker`):
    /// `speaking` lists who speaks now with a level from 0 to 100.
    ActiveSpeaker {
        room: RoomId,
        speaker: Option<ParticipantId>,
        speaking: Vec<(ParticipantId, u8)>,
    },
    /// Dynacast: no subscriber needs simulcast layer `rid` of this publication any more
    /// (`needed: false`; the publisher may stop encoding it), or one needs it again.
    /// Sent on changes only; a layer is reported unneeded after 2 s without a taker.
    LayerNeeded {
        room: RoomId,
        participant: ParticipantId,
        source: TrackSource,
        rid: String,
        needed: bool,
    },
    /// The participant was removed by the engine itself; the server tells the others.
    ParticipantGone {
        room: RoomId,
        participant: ParticipantId,
        reason: GoneReason,
    },
}

/// Errors a request to the engine can end with. Their text is meant for the user: it
/// never carries a parser's internals (the engine logs those).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SfuError {
    /// The client's SDP could not be parsed or was refused; the detail is in the log.
    #[error("{0}")]
    InvalidSdp(SdpError),
    /// No participant with that ID on any worker (never joined, left, or removed).
    #[error("no such participant")]
    UnknownParticipant,
    /// An answer for an offer that is no longer pending (superseded or already answered).
    #[error("stale answer")]
    StaleAnswer,
    /// The worker thread stopped (shutdown, or a bug crashed it).
    #[error("the media worker is not running")]
    WorkerGone,
    /// `join` with a participant ID that is already in the engine.
    #[error("participant already joined")]
    DuplicateParticipant,
    /// The worker's announced address cannot be put in an ICE candidate (configuration).
    #[error("the media server's announced address cannot be offered to clients")]
    LocalCandidate,
}

/// Why the engine refused a client's SDP. One fixed, user-facing text per case: the
/// parser's own message (str0m's holds positions such as `PointerOffset(0x7f…)`, heap
/// addresses) is logged by the engine with the participant, never sent.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum SdpError {
    #[error("the SDP offer could not be parsed")]
    OfferUnparsable,
    /// Parsed, but str0m would not accept it (unsupported or inconsistent m-lines …).
    #[error("the SDP offer was refused (unsupported or inconsistent media description)")]
    OfferRefused,
    #[error("the SDP answer could not be parsed")]
    AnswerUnparsable,
    /// Parsed, but it does not answer the server's offer.
    #[error("the SDP answer was refused (it does not match the server's offer)")]
    AnswerRefused,
    /// Handling it crashed inside str0m (caught); the participant is closed.
    #[error("the SDP could not be processed")]
    Unprocessable,
}

/// Where events go. The server's implementation pushes into an async channel.
pub type EventSink = Arc<dyn Fn(SfuEvent) + Send + Sync>;

/// A one-shot answer to a request. Called exactly once, from a worker thread (or from
/// the caller's thread when the request fails before reaching a worker).
pub type Reply<T> = Box<dyn FnOnce(T) + Send>;

/// Counters of one worker, read without stopping it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct WorkerStats {
    pub index: usize,
    pub port: u16,
    pub alive: bool,
    pub rooms: usize,
    pub participants: usize,
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    /// Datagrams that matched no participant or failed to parse: foreign or malformed.
    pub datagrams_dropped: u64,
    pub rtp_forwarded: u64,
    /// Datagrams the kernel refused to send (socket buffer full, unreachable peer).
    pub send_dropped: u64,
    /// Open ICE-TCP connections.
    pub tcp_connections: usize,
    /// The engine's own counters: media packets and bytes, drops by reason, NACKs and
    /// PLIs, the subscribers' receiver-report histograms.
    pub media: crate::engine::EngineStats,
    /// Time the worker's loop spent working (not waiting in `poll`) since it started:
    /// its rate is the busy fraction.
    pub busy: std::time::Duration,
}

/// Counters of the one-port demultiplexer ([`crate::SfuConfig::single_port`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct OnePortStats {
    pub datagrams_in: u64,
    /// Datagrams from sources that no STUN request has tied to a worker (dropped).
    pub unrouted: u64,
}

/// The codec of a recorded packet (the engine negotiates only these two).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RecordedCodec {
    Opus,
    Vp8,
}

/// A sender report's clock: the publisher's wall clock (NTP) at RTP time `rtp_time`
/// (extended, in the codec's clock rate). Lines up tracks that one sender sent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SenderClock {
    pub ntp: std::time::SystemTime,
    pub rtp_time: u64,
}

/// One RTP packet of a recorded track, as the publisher sent it (retransmissions
/// included, in arrival order), handed to the recorder over a [`RecordTap`].
#[derive(Clone, Debug)]
pub struct RecordedPacket {
    pub participant: ParticipantId,
    pub source: TrackSource,
    pub codec: RecordedCodec,
    /// Extended sequence number (no wrap).
    pub seq: u64,
    /// Extended RTP timestamp (no wrap), in `clock_rate` units.
    pub rtp_time: u64,
    pub clock_rate: u32,
    pub marker: bool,
    /// VP8: the first packet of a keyframe (always true for audio).
    pub keyframe_start: bool,
    /// The payload (VP8 still has its payload descriptor).
    pub payload: Arc<[u8]>,
    pub arrival: std::time::Instant,
    /// The latest RTCP sender report of this stream, if one arrived.
    pub sender_clock: Option<SenderClock>,
}

/// Counters and requests shared between the engine and a recorder.
#[derive(Debug, Default)]
pub struct TapStats {
    /// Packets handed to the recorder.
    pub sent: std::sync::atomic::AtomicU64,
    /// Packets dropped because the recorder's queue was full (the worker never waits).
    pub dropped: std::sync::atomic::AtomicU64,
    /// Raised by the recorder after a loss it cannot repair: each recorded video
    /// publication that sees a new value asks its publisher for a keyframe.
    pub keyframe_requests: std::sync::atomic::AtomicU64,
}

/// Where a recorded room's packets go: a bounded queue to the recorder's thread, so
/// that writing files never runs on (or blocks) a worker. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RecordTap {
    pub tx: std::sync::mpsc::SyncSender<RecordedPacket>,
    pub stats: Arc<TapStats>,
}

impl RecordTap {
    /// Hand a packet over without waiting: a full queue drops it and counts the drop.
    pub fn offer(&self, packet: RecordedPacket) {
        use std::sync::atomic::Ordering::Relaxed;
        match self.tx.try_send(packet) {
            Ok(()) => {
                self.stats.sent.fetch_add(1, Relaxed);
            }
            Err(_) => {
                self.stats.dropped.fetch_add(1, Relaxed);
            }
        }
    }
}
