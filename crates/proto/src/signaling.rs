//! Socket.IO payloads from clients, the acknowledgement data, and the parts events share
//! (participants, tracks; the events themselves are in [`crate::events`]). Requests
//! implement [`Validate`]: serde checks the types, `validate` the lengths, so that a
//! 100 KB "name" is refused with a clear error before it reaches a room or a log line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ack::{ErrorBody, ErrorCode};
use crate::ids::{PeerId, ResumeToken, RoomId, UserId};

/// Longest accepted values. SDP from Chromium with three m-lines and simulcast is about
/// 10 KB; a few dozen subscribed m-lines stay well under the limit.
pub mod limits {
    pub const ROOM_ID: usize = 32;
    pub const USER_ID: usize = 128;
    pub const USER_NAME: usize = 64;
    pub const PICTURE_URL: usize = 1024;
    pub const CHAT_MESSAGE: usize = 2000;
    pub const SDP: usize = 128 * 1024;
    /// A resume token: 64 hex characters today; room to change the scheme.
    pub const RESUME_TOKEN: usize = 256;
    /// An RFC 3339 timestamp as the server writes them.
    pub const TIMESTAMP: usize = 40;
    pub const ICE_CANDIDATE: usize = 4096;
    pub const MID: usize = 16;
    /// Tiles in one `tile-views` report (the SFU keeps as many per subscriber).
    pub const TILE_VIEWS: usize = 256;
    /// Largest tile side in device pixels (an 8K screen is 7 680 wide).
    pub const TILE_PIXELS: u32 = 16_384;
}

pub trait Validate {
    fn validate(&self) -> Result<(), ErrorBody>;
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), ErrorBody> {
    let n = value.chars().count();
    if n < min || value.len() > max * 4 || n > max {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            format!("`{field}` must be {min} to {max} characters long (got {n})"),
        ));
    }
    Ok(())
}

fn check_room(room: &RoomId) -> Result<(), ErrorBody> {
    check_len("roomId", room.as_str(), 1, limits::ROOM_ID)
}

/// `join-meeting`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinMeeting {
    pub room_id: RoomId,
    /// Display name for this meeting; the token's `name` when absent.
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub user_picture: Option<String>,
    #[serde(default = "yes")]
    pub is_video_enabled: bool,
    #[serde(default = "yes")]
    pub is_audio_enabled: bool,
}

fn yes() -> bool {
    true
}

impl Validate for JoinMeeting {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)?;
        if let Some(name) = &self.user_name {
            check_len("userName", name.trim(), 1, limits::USER_NAME)?;
        }
        if let Some(pic) = &self.user_picture {
            check_len("userPicture", pic, 0, limits::PICTURE_URL)?;
        }
        Ok(())
    }
}

/// Requests that name only the meeting: `leave-meeting`, `end-meeting`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomOnly {
    pub room_id: RoomId,
}

impl Validate for RoomOnly {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)
    }
}

/// `toggle-audio`, `toggle-video`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Toggle {
    pub room_id: RoomId,
    pub is_enabled: bool,
}

impl Validate for Toggle {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)
    }
}

/// `toggle-screen-share`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToggleScreenShare {
    pub room_id: RoomId,
    pub is_sharing: bool,
}

impl Validate for ToggleScreenShare {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)
    }
}

/// The video quality a participant wants to receive (`change-video-quality`, the
/// original protocol's event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoQuality {
    Low,
    Medium,
    High,
    /// The browser's own choice again.
    Auto,
}

/// `change-video-quality`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeVideoQuality {
    pub room_id: RoomId,
    pub quality: VideoQuality,
}

impl Validate for ChangeVideoQuality {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)
    }
}

/// A remote video a page shows: a participant's camera or screen share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoSource {
    Camera,
    Screen,
}

/// One remote video tile of a `tile-views` report: whose video, whether it is on screen,
/// and its size in device pixels (0 × 0 for a hidden one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TileViewReport {
    pub peer_id: PeerId,
    pub source: VideoSource,
    pub visible: bool,
    pub width: u32,
    pub height: u32,
}

/// `tile-views`: every remote video the page shows now (SFU meetings), replacing the
/// last report. The SFU sends no layer larger than a tile needs, and no video to a
/// hidden tile.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TileViews {
    pub room_id: RoomId,
    pub views: Vec<TileViewReport>,
}

impl Validate for TileViews {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)?;
        if self.views.len() > limits::TILE_VIEWS {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!(
                    "`views` may list at most {} tiles (got {})",
                    limits::TILE_VIEWS,
                    self.views.len()
                ),
            ));
        }
        for v in &self.views {
            check_len("views[].peerId", v.peer_id.as_str(), 1, limits::USER_ID)?;
            if v.width > limits::TILE_PIXELS || v.height > limits::TILE_PIXELS {
                return Err(ErrorBody::new(
                    ErrorCode::BadRequest,
                    format!(
                        "a tile is at most {0} × {0} device pixels (got {1} × {2})",
                        limits::TILE_PIXELS,
                        v.width,
                        v.height
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `meeting-chat-message` from a client.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatSend {
    pub room_id: RoomId,
    pub message: String,
}

impl Validate for ChatSend {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)?;
        check_len("message", self.message.trim(), 1, limits::CHAT_MESSAGE)
    }
}

/// `raise-hand`: raise (`raised: true`) or lower this connection's hand.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RaiseHand {
    pub room_id: RoomId,
    pub raised: bool,
}

impl Validate for RaiseHand {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)
    }
}

/// The reactions a participant may send: a fixed set, so that a reaction is never free
/// text (chat is for that) and every page can draw each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Emoji {
    #[serde(rename = "👍")]
    ThumbsUp,
    #[serde(rename = "👏")]
    Clap,
    #[serde(rename = "😂")]
    Laugh,
    #[serde(rename = "❤️")]
    Heart,
    #[serde(rename = "🎉")]
    Party,
    #[serde(rename = "😮")]
    Surprised,
}

/// `reaction`: one of the [`Emoji`], to the whole meeting.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendReaction {
    pub room_id: RoomId,
    pub emoji: Emoji,
}

impl Validate for SendReaction {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Audio,
    Video,
}

/// `host-mute`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostMute {
    pub room_id: RoomId,
    pub target_user_id: UserId,
    pub kind: MediaKind,
}

impl Validate for HostMute {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)?;
        check_len(
            "targetUserId",
            self.target_user_id.as_str(),
            1,
            limits::USER_ID,
        )
    }
}

/// `host-remove`, and `host-allow` (letting a removed user back in).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostRemove {
    pub room_id: RoomId,
    pub target_user_id: UserId,
}

impl Validate for HostRemove {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)?;
        check_len(
            "targetUserId",
            self.target_user_id.as_str(),
            1,
            limits::USER_ID,
        )
    }
}

/// `host-set-co-host`: the host promotes a participant to co-host (`coHost: true`) or
/// demotes a co-host (`false`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostSetCoHost {
    pub room_id: RoomId,
    pub target_user_id: UserId,
    pub co_host: bool,
}

impl Validate for HostSetCoHost {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)?;
        check_len(
            "targetUserId",
            self.target_user_id.as_str(),
            1,
            limits::USER_ID,
        )
    }
}

/// `invite-create`: the host or a co-host makes an invite link (`role`: `participant`
/// by default, `viewer`, or from the host `coHost`; `expiresIn` seconds, a day by
/// default; `maxUses`, unlimited when absent).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteCreate {
    pub room_id: RoomId,
    #[serde(default)]
    pub role: Option<crate::Role>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub max_uses: Option<u32>,
}

impl Validate for InviteCreate {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)
    }
}

/// `invite-revoke`: the host or a co-host revokes one of the meeting's invites.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteRevoke {
    pub room_id: RoomId,
    pub invite_id: String,
}

impl Validate for InviteRevoke {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)?;
        check_len("inviteId", &self.invite_id, 1, 64)
    }
}

/// `host-lock`: the host locks (no new joins but the host's) or unlocks the meeting.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostLock {
    pub room_id: RoomId,
    pub locked: bool,
}

impl Validate for HostLock {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)
    }
}

/// `host-mute-all`: the host turns everyone else's microphone (or camera) off.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostMuteAll {
    pub room_id: RoomId,
    pub kind: MediaKind,
}

impl Validate for HostMuteAll {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)
    }
}

/// `lobby-admit` and `lobby-deny`: the host decides about one waiting connection
/// (`peerId`, from `lobby:updated`) or, with `all: true`, about everyone waiting.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LobbyDecision {
    pub room_id: RoomId,
    #[serde(default)]
    pub peer_id: Option<PeerId>,
    #[serde(default)]
    pub all: bool,
}

impl Validate for LobbyDecision {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)?;
        match (&self.peer_id, self.all) {
            (Some(p), false) => check_len("peerId", p.as_str(), 1, limits::USER_ID),
            (None, true) => Ok(()),
            _ => Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "give either `peerId` or `all: true`",
            )),
        }
    }
}

/// `sfu-offer` from a client: its publishing offer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SfuOffer {
    pub room_id: RoomId,
    pub sdp: String,
    /// mid → `microphone` | `camera` | `screen`.
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
}

impl Validate for SfuOffer {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)?;
        check_len("sdp", &self.sdp, 1, limits::SDP)?;
        if self.sources.len() > 16 {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "`sources` has more than 16 entries",
            ));
        }
        for (mid, source) in &self.sources {
            check_len("sources key", mid, 1, limits::MID)?;
            check_len("sources value", source, 1, 16)?;
        }
        Ok(())
    }
}

/// `sfu-answer` from a client: its answer to a server offer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SfuAnswer {
    pub room_id: RoomId,
    pub offer_id: u64,
    pub sdp: String,
}

impl Validate for SfuAnswer {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)?;
        check_len("sdp", &self.sdp, 1, limits::SDP)
    }
}

/// One track the server sends a client, so the client knows whose tile it belongs in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackInfo {
    pub mid: String,
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub source: String,
}

/// Ack data of the client's `sfu-offer`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SfuAnswerData {
    pub sdp: String,
    pub tracks: Vec<TrackInfo>,
}

/// `webrtc-offer`, `webrtc-answer`, `ice-candidate` from a client (mesh mode). Only the
/// documented fields are read, and only they are passed on ([`RelayOut`]): whatever else
/// a sender adds (`__proto__` included) never reaches the target.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relay {
    pub room_id: RoomId,
    pub target_user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<SessionDescription>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<SessionDescription>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<IceCandidate>,
}

/// A browser's `RTCSessionDescriptionInit`, passed through untouched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    #[serde(rename = "type")]
    pub kind: String,
    pub sdp: String,
}

/// A browser's `RTCIceCandidateInit`, passed through untouched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// Which of the three relay events, and the one field each carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayKind {
    Offer,
    Answer,
    Candidate,
}

impl RelayKind {
    /// The event's name, the same both ways.
    pub fn event(self) -> &'static str {
        match self {
            RelayKind::Offer => "webrtc-offer",
            RelayKind::Answer => "webrtc-answer",
            RelayKind::Candidate => "ice-candidate",
        }
    }

    fn field(self) -> &'static str {
        match self {
            RelayKind::Offer => "offer",
            RelayKind::Answer => "answer",
            RelayKind::Candidate => "candidate",
        }
    }
}

/// What the target of a relay receives: the sender, and the one field of the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayOut {
    pub from_user_id: UserId,
    pub from_peer_id: PeerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<SessionDescription>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<SessionDescription>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<IceCandidate>,
}

impl Relay {
    /// Check the request as the `kind` event: it must carry that event's field.
    pub fn validate_as(&self, kind: RelayKind) -> Result<(), ErrorBody> {
        self.validate()?;
        let present = match kind {
            RelayKind::Offer => self.offer.is_some(),
            RelayKind::Answer => self.answer.is_some(),
            RelayKind::Candidate => self.candidate.is_some(),
        };
        if !present {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("`{}` needs `{}`", kind.event(), kind.field()),
            ));
        }
        Ok(())
    }

    /// The message for the target: the event's own field and nothing else.
    pub fn forward(self, kind: RelayKind, from_user_id: UserId, from_peer_id: PeerId) -> RelayOut {
        RelayOut {
            from_user_id,
            from_peer_id,
            offer: self.offer.filter(|_| kind == RelayKind::Offer),
            answer: self.answer.filter(|_| kind == RelayKind::Answer),
            candidate: self.candidate.filter(|_| kind == RelayKind::Candidate),
        }
    }
}

impl Validate for Relay {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)?;
        check_len(
            "targetUserId",
            self.target_user_id.as_str(),
            1,
            limits::USER_ID,
        )?;
        for (field, d) in [("offer", &self.offer), ("answer", &self.answer)] {
            if let Some(d) = d {
                check_len(field, &d.kind, 1, 16)?;
                check_len(field, &d.sdp, 0, limits::SDP)?;
            }
        }
        if let Some(c) = &self.candidate {
            check_len("candidate", &c.candidate, 0, limits::ICE_CANDIDATE)?;
            for v in [&c.sdp_mid, &c.username_fragment].into_iter().flatten() {
                check_len("candidate", v, 0, limits::ICE_CANDIDATE)?;
            }
        }
        Ok(())
    }
}

/// Ack data of `join-meeting`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinMeetingData {
    pub room_id: RoomId,
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub is_host: bool,
    /// `mesh` or `sfu`: which media flow the client runs.
    pub topology: String,
    /// The meeting as `GET /api/meetings/:roomId` shows it.
    pub meeting: serde_json::Value,
    /// Everybody else in the meeting.
    pub participants: Vec<Participant>,
    /// The joiner, as the others see it.
    #[serde(rename = "self")]
    pub me: Participant,
    pub ice_servers: Vec<IceServer>,
    /// What `resume-meeting` takes after the connection dropped.
    pub resume_token: ResumeToken,
}

/// `resume-meeting`: a new socket of the same user takes the place of a connection that
/// dropped, within the grace period (`RECONNECT_GRACE_SECONDS`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeMeeting {
    pub room_id: RoomId,
    pub peer_id: PeerId,
    pub resume_token: ResumeToken,
    /// Whether the page's media connection to the SFU was set up (its next `sfu-offer`
    /// renegotiates that connection instead of opening one).
    #[serde(default)]
    pub has_media: bool,
    /// The `timestamp` of the last chat message the page has: the ack carries the
    /// meeting's messages from then on (of those kept for late joiners).
    #[serde(default)]
    pub chat_since: Option<String>,
    /// The page's microphone and camera, as a join says them: used only when the
    /// server no longer knows the connection and re-creates it from the resume token
    /// (a restarted process); otherwise the registry's state stands.
    #[serde(default = "yes")]
    pub is_audio_enabled: bool,
    #[serde(default = "yes")]
    pub is_video_enabled: bool,
}

impl Validate for ResumeMeeting {
    fn validate(&self) -> Result<(), ErrorBody> {
        check_room(&self.room_id)?;
        check_len("peerId", self.peer_id.as_str(), 1, limits::ROOM_ID)?;
        check_len(
            "resumeToken",
            self.resume_token.as_str(),
            1,
            limits::RESUME_TOKEN,
        )?;
        if let Some(since) = &self.chat_since {
            check_len("chatSince", since, 0, limits::TIMESTAMP)?;
        }
        Ok(())
    }
}

/// Ack data of `resume-meeting`: the meeting as it is now, to replace what the page
/// shows (state it may have missed while away), and the chat it missed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeMeetingData {
    pub room_id: RoomId,
    pub peer_id: PeerId,
    pub is_host: bool,
    pub meeting: serde_json::Value,
    /// Everybody else in the meeting now.
    pub participants: Vec<Participant>,
    /// This connection as the registry has it (a host may have muted it meanwhile).
    #[serde(rename = "self")]
    pub me: Participant,
    /// Chat messages from `chatSince` on, oldest first.
    pub chat: Vec<crate::events::ChatMessage>,
    /// The server holds no media for this connection (it resumed into a restarted
    /// process): the page opens a new media connection, its next `sfu-offer` is a first
    /// one.
    #[serde(default)]
    pub media_reset: bool,
}

/// Ack data of `meeting-chat-message`: when the server stamped the message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSent {
    /// RFC 3339, as in the broadcast message.
    pub timestamp: String,
}

/// A participant as the clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub user_name: String,
    pub user_picture: Option<String>,
    pub is_host: bool,
    /// Host, co-host, participant or viewer ([`crate::Role`]).
    #[serde(default)]
    pub role: crate::Role,
    pub audio_enabled: bool,
    pub video_enabled: bool,
    pub screen_sharing: bool,
    /// RFC 3339.
    pub joined_at: String,
}

/// An RTCIceServer as the browser takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reaction_is_one_of_the_set() {
        let r: SendReaction =
            serde_json::from_str(r#"{"roomId":"ABC","emoji":"👍"}"#).expect("parse");
        assert_eq!(r.emoji, Emoji::ThumbsUp);
        assert!(
            serde_json::from_str::<SendReaction>(r#"{"roomId":"ABC","emoji":"hello"}"#).is_err()
        );
    }

    #[test]
    fn join_defaults_and_limits() {
        let j: JoinMeeting = serde_json::from_str(r#"{"roomId":"ABC"}"#).expect("parse");
        assert!(j.is_audio_enabled && j.is_video_enabled);
        assert!(j.validate().is_ok());

        let long = "x".repeat(100_000);
        let j: JoinMeeting =
            serde_json::from_value(serde_json::json!({"roomId": "ABC", "userName": long}))
                .expect("parse");
        let err = j.validate().expect_err("too long");
        assert_eq!(err.code, ErrorCode::BadRequest);
        assert!(err.message.contains("userName"), "{}", err.message);
    }

    #[test]
    fn tile_views_are_bounded_in_count_and_size() {
        let tile = |w: u32, h: u32| serde_json::json!({"peerId": "p_1", "source": "camera", "visible": true, "width": w, "height": h});
        let ok: TileViews =
            serde_json::from_value(serde_json::json!({"roomId": "ABC", "views": [tile(320, 180)]}))
                .expect("parse");
        assert!(ok.validate().is_ok());
        let huge: TileViews = serde_json::from_value(
            serde_json::json!({"roomId": "ABC", "views": [tile(320, 100_000)]}),
        )
        .expect("parse");
        let e = huge.validate().expect_err("too tall");
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("16384"), "{}", e.message);
        let many: Vec<_> = (0..=limits::TILE_VIEWS).map(|_| tile(1, 1)).collect();
        let long: TileViews =
            serde_json::from_value(serde_json::json!({"roomId": "ABC", "views": many}))
                .expect("parse");
        assert!(long.validate().is_err());
        // Negative sizes and unknown sources do not parse.
        let neg = serde_json::json!({"roomId": "ABC", "views": [tile(1, 1)]});
        let mut neg = neg;
        neg["views"][0]["width"] = serde_json::json!(-5);
        assert!(serde_json::from_value::<TileViews>(neg).is_err());
        let mic = serde_json::json!({"roomId": "ABC", "views": [{"peerId": "p", "source": "microphone", "visible": true, "width": 1, "height": 1}]});
        assert!(serde_json::from_value::<TileViews>(mic).is_err());
    }

    #[test]
    fn wrong_types_are_refused_by_serde() {
        let r = serde_json::from_str::<Toggle>(r#"{"roomId":"ABC","isEnabled":"yes"}"#);
        assert!(r.is_err());
        let r = serde_json::from_str::<ChatSend>(r#"{"roomId":"ABC"}"#);
        assert!(r.is_err());
    }

    #[test]
    fn relay_keeps_the_payload() {
        let r: Relay = serde_json::from_str(
            r#"{"roomId":"ABC","targetUserId":"bob","offer":{"type":"offer","sdp":"v=0"}}"#,
        )
        .expect("parse");
        assert_eq!(r.target_user_id.as_str(), "bob");
        assert_eq!(
            r.offer.as_ref().map(|o| (o.kind.as_str(), o.sdp.as_str())),
            Some(("offer", "v=0"))
        );
        let out = serde_json::to_value(r.forward(
            RelayKind::Offer,
            UserId::from("ann"),
            PeerId::from("p_1"),
        ))
        .expect("json");
        assert_eq!(
            out,
            serde_json::json!({"fromUserId":"ann","fromPeerId":"p_1","offer":{"type":"offer","sdp":"v=0"}})
        );
    }

    #[test]
    fn relay_forwards_only_the_documented_fields() {
        let r: Relay = serde_json::from_str(
            r#"{"roomId":"ABC","targetUserId":"bob","__proto__":{"admin":true},"extra":1,
                "answer":{"type":"answer","sdp":"v=0"},
                "candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0,"__proto__":{"x":1}}}"#,
        )
        .expect("parse");
        assert!(
            r.validate_as(RelayKind::Offer).is_err(),
            "an offer needs `offer`"
        );
        r.validate_as(RelayKind::Candidate).expect("a candidate");
        let out = serde_json::to_value(r.forward(
            RelayKind::Candidate,
            UserId::from("ann"),
            PeerId::from("p_1"),
        ))
        .expect("json");
        assert_eq!(
            out,
            serde_json::json!({"fromUserId":"ann","fromPeerId":"p_1",
                "candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}})
        );
    }

    #[test]
    fn join_ack_keeps_the_wire_names() {
        let me = Participant {
            user_id: UserId::new("ann"),
            peer_id: PeerId::new("p_1"),
            user_name: "Ann".into(),
            user_picture: None,
            is_host: true,
            role: crate::Role::Host,
            audio_enabled: true,
            video_enabled: false,
            screen_sharing: false,
            joined_at: "2026-11-25T17:00:00.000Z".into(),
        };
        let data = JoinMeetingData {
            room_id: RoomId::new("ABC"),
            user_id: UserId::new("ann"),
            peer_id: PeerId::new("p_1"),
            is_host: true,
            topology: "sfu".into(),
            meeting: serde_json::json!({ "roomId": "ABC" }),
            participants: Vec::new(),
            me,
            ice_servers: Vec::new(),
            resume_token: ResumeToken::new("t"),
        };
        let value = serde_json::to_value(&data).unwrap_or_default();
        let mut keys: Vec<&str> = value
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "iceServers",
                "isHost",
                "meeting",
                "participants",
                "peerId",
                "resumeToken",
                "roomId",
                "self",
                "topology",
                "userId"
            ]
        );
        assert_eq!(value["self"]["userName"], "Ann");
    }
}
