//! Every event the server pushes to a client (server → client), one type per event name.
//!
//! Each type carries its Socket.IO event name as [`ServerEvent::NAME`], so that the
//! server emits `(E::NAME, &e)` and never a name and a body that could disagree, and a
//! renamed field or event fails to compile in the server, the load tool and the tests
//! alike. Field names are camelCase on the wire, as the service we replace spoke them
//! (the web client reads exactly these). `docs/protocol.md` describes them in prose;
//! [`ALL`] is what its test checks against.

use serde::{Deserialize, Serialize};

use crate::ack::ErrorBody;
use crate::ids::{PeerId, RoomId, UserId};
use crate::signaling::{
    Emoji, IceServer, MediaKind, Participant, RelayOut, TrackInfo, VideoSource,
};

/// A message the server emits, and its event name.
pub trait ServerEvent: Serialize {
    const NAME: &'static str;
}

macro_rules! server_event {
    ($($ty:ident => $name:literal,)*) => {
        $(impl ServerEvent for $ty {
            const NAME: &'static str = $name;
        })*

        /// The name of every server → client event.
        pub const ALL: &[&str] = &[$($name),*];
    };
}

server_event! {
    SessionExpired => "session:expired",
    IceServers => "ice-servers",
    JoinedMeeting => "joined-meeting",
    ExistingParticipants => "existing-participants",
    ParticipantJoined => "participant-joined",
    ParticipantLeft => "participant-left",
    ParticipantAudioChanged => "participant-audio-changed",
    ParticipantVideoChanged => "participant-video-changed",
    ParticipantVideoQualityChanged => "participant-video-quality-changed",
    ParticipantScreenShareChanged => "participant-screen-share-changed",
    ParticipantRoleChanged => "participant:role-changed",
    ScreenStarted => "screen:started",
    ScreenStopped => "screen:stopped",
    ChatMessage => "meeting-chat-message",
    MeetingEnded => "meeting:ended",
    MeetingUpdated => "meeting:updated",
    RecordingStarted => "recording:started",
    RecordingStopped => "recording:stopped",
    MeetingReplaced => "meeting:replaced",
    MeetingRejoin => "meeting:rejoin",
    ServerDraining => "server-draining",
    MeetingError => "meeting-error",
    ControlMute => "control:mute",
    ControlRemoved => "control:removed",
    ControlAskUnmute => "control:ask-unmute",
    ControlStopScreen => "control:stop-screen",
    LobbyWaiting => "lobby:waiting",
    LobbyUpdated => "lobby:updated",
    LobbyAdmitted => "lobby:admitted",
    LobbyDenied => "lobby:denied",
    ChatHistory => "chat:history",
    HandsUpdated => "hands:updated",
    ReactionSent => "reaction",
    ActiveSpeaker => "active-speaker",
    LayerNeeded => "layer-needed",
    ServerOffer => "sfu-offer",
    RelayedOffer => "webrtc-offer",
    RelayedAnswer => "webrtc-answer",
    RelayedCandidate => "ice-candidate",
    PeerConnectionError => "peer-connection-error",
}

/// `session:expired`: the connection's token expired; the server disconnects it next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionExpired {
    pub error: ErrorBody,
}

/// `ice-servers`, to the joiner (original protocol; the join's ack carries the same).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServers {
    pub ice_servers: Vec<IceServer>,
}

/// `joined-meeting`, to the joiner (original protocol).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinedMeeting {
    pub room_id: RoomId,
    pub user_id: UserId,
    pub peer_id: PeerId,
    /// The meeting as `GET /api/meetings/:roomId` shows it.
    pub meeting: serde_json::Value,
}

/// `existing-participants`, to the joiner (original protocol): everybody else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistingParticipants {
    pub participants: Vec<Participant>,
}

/// `participant-joined`, to everyone else in the meeting: the participant itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParticipantJoined(pub Participant);

/// `participant-left`, to the meeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantLeft {
    pub user_id: UserId,
    pub peer_id: PeerId,
}

/// `participant-audio-changed`, to the meeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantAudioChanged {
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub is_enabled: bool,
}

/// `participant-video-changed`, to the meeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantVideoChanged {
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub is_enabled: bool,
}

/// `participant-video-quality-changed`, to the meeting: the video quality a participant
/// asked to receive (`change-video-quality`); in a mesh, its peers lower what they send it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantVideoQualityChanged {
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub quality: crate::signaling::VideoQuality,
}

/// `participant-screen-share-changed`, to the meeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantScreenShareChanged {
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub is_sharing: bool,
}

/// `participant:role-changed`, to the meeting: the host promoted a participant to
/// co-host or demoted one (each of the user's connections).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantRoleChanged {
    pub room_id: RoomId,
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub role: crate::Role,
    pub by: UserId,
}

/// `screen:started`, to the meeting (sent with `participant-screen-share-changed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScreenStarted {
    pub user_id: UserId,
    pub peer_id: PeerId,
}

/// `screen:stopped`, to the meeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScreenStopped {
    pub user_id: UserId,
    pub peer_id: PeerId,
}

/// `meeting-chat-message`, to the meeting, the sender included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub user_name: String,
    pub message: String,
    /// RFC 3339.
    pub timestamp: String,
}

/// Why a meeting ended; also the `endReason` the store records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    HostEnded,
    Ttl,
    Deleted,
}

impl EndReason {
    /// The wire name (`host-ended`, `ttl`, `deleted`).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::HostEnded => "host-ended",
            EndReason::Ttl => "ttl",
            EndReason::Deleted => "deleted",
        }
    }
}

/// `meeting:ended`, to the meeting: everyone is out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingEnded {
    pub room_id: RoomId,
    pub reason: EndReason,
}

/// `meeting:updated`, to the meeting: its host changed it over REST (`PUT
/// /api/meetings/:roomId`: title, description, `maxParticipants`, settings such as
/// `lockRoom`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingUpdated {
    pub room_id: RoomId,
    /// The meeting as it is now, as the join's ack (`meeting`) and `GET
    /// /api/meetings/:roomId` show it.
    pub meeting: serde_json::Value,
}

/// `recording:started`, to the meeting when its host starts recording, and to each
/// participant who joins while it runs: the page shows "Recording" until
/// `recording:stopped`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingStarted {
    pub room_id: RoomId,
    pub recording_id: String,
    /// UNIX milliseconds.
    pub started_at_ms: u64,
}

/// Why a recording stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingStopReason {
    /// The host stopped it.
    Host,
    /// The meeting ended.
    MeetingEnded,
    /// The recordings' disk is full; the meeting goes on without recording.
    DiskFull,
    /// Writing the files failed otherwise.
    WriteError,
    /// The server shut down.
    Shutdown,
}

/// `recording:stopped`, to the meeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingStopped {
    pub room_id: RoomId,
    pub recording_id: String,
    pub reason: RecordingStopReason,
}

/// `meeting:replaced`, to a connection its user's newer connection replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingReplaced {
    pub room_id: RoomId,
}

/// Why a client is asked to join again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejoinReason {
    /// (Cluster) the node carrying the meeting's media is gone.
    MediaNodeLost,
}

/// `meeting:rejoin`, to one connection: join again (the media re-opens elsewhere).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingRejoin {
    pub room_id: RoomId,
    pub reason: RejoinReason,
}

/// `server-draining`, to each connection that the node going away (SIGTERM) carries:
/// its signaling socket, its media connection, or both. The page reconnects its socket
/// (`resume-meeting`, which another node or the restarted process answers) when
/// `signaling`, and opens a new media connection when `media` (the meeting's media
/// re-opens on a live node; after resuming when both are set).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerDraining {
    /// Reconnect within this many milliseconds, at a random moment in that window, so
    /// that a node's participants do not all arrive at the same instant.
    pub reconnect_in_ms: u64,
    /// This connection's socket is on the node going away.
    pub signaling: bool,
    /// This connection's media is on the node going away.
    pub media: bool,
}

/// `meeting-error`, to one connection: its join failed (the same error as the join's
/// ack, for frontends of the original service, which listen for this event and not for
/// acks), it connected without a token (`TOKEN_MISSING`), or the SFU lost its media
/// (`MEDIA_FAILED`, with the troubleshooting hint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingError {
    pub error: ErrorBody,
}

/// `control:mute`, to the muted connection: the host turned its `kind` off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlMute {
    pub room_id: RoomId,
    pub kind: MediaKind,
    pub by: UserId,
}

/// `control:removed`, to the removed connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlRemoved {
    pub room_id: RoomId,
    pub by: UserId,
}

/// `control:ask-unmute`, to a participant the host asks to turn its microphone (or
/// camera) back on: only a request; the participant decides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlAskUnmute {
    pub room_id: RoomId,
    pub kind: MediaKind,
    pub by: UserId,
}

/// `control:stop-screen`, to a participant whose screen share the host stopped (the
/// server has stopped forwarding it already; the page stops capturing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlStopScreen {
    pub room_id: RoomId,
    pub by: UserId,
}

/// `lobby:waiting`, to a connection put in the meeting's lobby (before its
/// `join-meeting` is answered with `IN_LOBBY`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LobbyWaiting {
    pub room_id: RoomId,
    /// The ticket the host admits or denies.
    pub peer_id: PeerId,
    pub user_name: String,
}

/// One connection waiting in a lobby, as the host sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    pub peer_id: PeerId,
    pub user_id: UserId,
    pub user_name: String,
    pub user_picture: Option<String>,
    /// RFC 3339, when it asked to join.
    pub asked_at: String,
}

/// `lobby:updated`, to the host's connections: everyone waiting now, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LobbyUpdated {
    pub room_id: RoomId,
    pub waiting: Vec<Waiting>,
}

/// `lobby:admitted`, to an admitted connection: its next `join-meeting` gets in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LobbyAdmitted {
    pub room_id: RoomId,
    pub by: UserId,
}

/// `lobby:denied`, to a connection the host did not let in (or whose meeting ended
/// while it waited, `ended: true`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LobbyDenied {
    pub room_id: RoomId,
    pub by: Option<UserId>,
    pub ended: bool,
}

/// `sfu-offer` from the server: the tracks it sends changed; answer with `sfu-answer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerOffer {
    pub room_id: RoomId,
    pub offer_id: u64,
    pub sdp: String,
    pub tracks: Vec<TrackInfo>,
}

/// `webrtc-offer` relayed to its target (mesh).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RelayedOffer(pub RelayOut);

/// `webrtc-answer` relayed to its target (mesh).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RelayedAnswer(pub RelayOut);

/// `ice-candidate` relayed to its target (mesh).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RelayedCandidate(pub RelayOut);

/// `peer-connection-error`, to the sender of a relay that could not be delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerConnectionError {
    pub error: ErrorBody,
    pub target_user_id: UserId,
}

/// `chat:history`, to a joiner: the meeting's earlier chat, oldest first (kept for the
/// meeting's life, the newest within a bound of count and bytes; see docs/protocol.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatHistory {
    pub room_id: RoomId,
    pub messages: Vec<ChatMessage>,
}

/// One raised hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RaisedHand {
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub user_name: String,
    /// RFC 3339.
    pub raised_at: String,
}

/// `hands:updated`, to the meeting whenever a hand goes up or down (and to a joiner when
/// hands are up): every raised hand, first raised first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandsUpdated {
    pub room_id: RoomId,
    pub hands: Vec<RaisedHand>,
}

/// `reaction`, to the meeting, the sender included: an emoji shown for a moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionSent {
    pub room_id: RoomId,
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub user_name: String,
    pub emoji: Emoji,
}

/// `active-speaker`, to the meeting whenever the SFU's dominant speaker changes or who
/// is speaking does (SFU meetings only; decided from the RFC 6464 audio levels).
/// `peer_id`/`user_id` are the dominant speaker, `null` before anyone spoke or after
/// they left; `speaking` is everyone speaking now, for "speaking" indicators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveSpeaker {
    pub room_id: RoomId,
    pub peer_id: Option<PeerId>,
    pub user_id: Option<UserId>,
    pub speaking: Vec<SpeakingLevel>,
}

/// One participant speaking now, with a level from 0 (quiet) to 100 (loud).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpeakingLevel {
    pub peer_id: PeerId,
    pub level: u8,
}

/// `layer-needed`, to a publisher (SFU meetings, dynacast): nobody receives simulcast
/// encoding `rid` of its `source` any more (`needed: false`: it may stop encoding it,
/// `RTCRtpSender.setParameters` with `active: false`), or someone needs it again
/// (`needed: true`). Sent on changes only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerNeeded {
    pub room_id: RoomId,
    pub source: VideoSource,
    pub rid: String,
    pub needed: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ack::ErrorCode;

    #[test]
    fn names_are_unique() {
        let mut names = ALL.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }

    #[test]
    fn hands_and_reactions_keep_the_wire_field_names() {
        let hands = HandsUpdated {
            room_id: RoomId::new("ABC"),
            hands: vec![RaisedHand {
                user_id: UserId::new("bo"),
                peer_id: PeerId::new("p1"),
                user_name: "Bo".into(),
                raised_at: "2026-12-01T05:00:00.000Z".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(&hands).unwrap_or_default(),
            json!({ "roomId": "ABC", "hands": [{ "userId": "bo", "peerId": "p1", "userName": "Bo", "raisedAt": "2026-12-01T05:00:00.000Z" }] })
        );
        let reaction = ReactionSent {
            room_id: RoomId::new("ABC"),
            user_id: UserId::new("bo"),
            peer_id: PeerId::new("p1"),
            user_name: "Bo".into(),
            emoji: crate::signaling::Emoji::Party,
        };
        assert_eq!(
            serde_json::to_value(&reaction).unwrap_or_default(),
            json!({ "roomId": "ABC", "userId": "bo", "peerId": "p1", "userName": "Bo", "emoji": "🎉" })
        );
    }

    #[test]
    fn bodies_keep_the_wire_field_names() {
        let ended = MeetingEnded {
            room_id: RoomId::new("ABC"),
            reason: EndReason::HostEnded,
        };
        assert_eq!(
            serde_json::to_value(&ended).unwrap_or_default(),
            json!({ "roomId": "ABC", "reason": "host-ended" })
        );
        let updated = MeetingUpdated {
            room_id: RoomId::new("ABC"),
            meeting: json!({ "roomId": "ABC", "title": "Retro" }),
        };
        assert_eq!(
            serde_json::to_value(&updated).unwrap_or_default(),
            json!({ "roomId": "ABC", "meeting": { "roomId": "ABC", "title": "Retro" } })
        );
        let error = MeetingError {
            error: crate::ErrorBody::new(crate::ErrorCode::MediaFailed, "lost"),
        };
        assert_eq!(
            serde_json::to_value(&error).unwrap_or_default(),
            json!({ "error": { "code": "MEDIA_FAILED", "message": "lost" } })
        );
        let rejoin = MeetingRejoin {
            room_id: RoomId::new("ABC"),
            reason: RejoinReason::MediaNodeLost,
        };
        assert_eq!(
            serde_json::to_value(&rejoin).unwrap_or_default(),
            json!({ "roomId": "ABC", "reason": "media-node-lost" })
        );
        let refused = PeerConnectionError {
            error: ErrorBody::new(ErrorCode::PeerNotFound, "bob is not in this meeting"),
            target_user_id: UserId::new("bob"),
        };
        assert_eq!(
            serde_json::to_value(&refused).unwrap_or_default(),
            json!({ "error": { "code": "PEER_NOT_FOUND", "message": "bob is not in this meeting" }, "targetUserId": "bob" })
        );
        for (reason, name) in [
            (EndReason::HostEnded, "host-ended"),
            (EndReason::Ttl, "ttl"),
            (EndReason::Deleted, "deleted"),
        ] {
            assert_eq!(reason.as_str(), name);
            assert_eq!(
                serde_json::to_value(reason).unwrap_or_default(),
                json!(name)
            );
        }
    }
}
