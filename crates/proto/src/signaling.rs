//! Socket.IO payloads. Requests (client → server) implement [`Validate`]: serde checks
//! the types, `validate` the lengths, so that a 100 KB "name" is refused with a clear
//! error before it reaches a room or a log line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ack::{ErrorBody, ErrorCode};
use crate::ids::{PeerId, RoomId, UserId};

/// Longest accepted values. SDP from Chromium with three m-lines and simulcast is about
/// 10 KB; a few dozen subscribed m-lines stay well under the limit.
pub mod limits {
    pub const ROOM_ID: usize = 32;
    pub const USER_ID: usize = 128;
    pub const USER_NAME: usize = 64;
    pub const PICTURE_URL: usize = 1024;
    pub const CHAT_MESSAGE: usize = 2000;
    pub const SDP: usize = 128 * 1024;
    pub const ICE_CANDIDATE: usize = 4096;
    pub const MID: usize = 16;
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

/// `meeting-chat-message` to clients.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub user_name: String,
    pub message: String,
    /// RFC 3339.
    pub timestamp: String,
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

/// `host-remove`.
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

/// `sfu-offer` from the server.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerOffer {
    pub room_id: RoomId,
    pub offer_id: u64,
    pub sdp: String,
    pub tracks: Vec<TrackInfo>,
}

/// `webrtc-offer`, `webrtc-answer`, `ice-candidate` from a client (mesh mode). The
/// SDP or candidate is passed through untouched, as the original service did.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relay {
    pub room_id: RoomId,
    pub target_user_id: UserId,
    #[serde(flatten)]
    pub payload: serde_json::Map<String, serde_json::Value>,
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
        let size = serde_json::to_string(&self.payload)
            .map(|s| s.len())
            .unwrap_or(usize::MAX);
        if size > limits::SDP {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "the relayed payload is too large",
            ));
        }
        Ok(())
    }
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
    pub audio_enabled: bool,
    pub video_enabled: bool,
    pub screen_sharing: bool,
    /// RFC 3339.
    pub joined_at: String,
}

/// `participant-left`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantLeft {
    pub user_id: UserId,
    pub peer_id: PeerId,
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
        assert!(r.payload.contains_key("offer"));
        assert!(!r.payload.contains_key("roomId"));
    }
}
