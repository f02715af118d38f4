//! The acknowledgement that answers every Socket.IO request.

use serde::{Deserialize, Serialize};

/// Why a request failed. The wire form is SCREAMING_SNAKE_CASE (`ROOM_FULL`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The payload is missing fields, has wrong types or is too long.
    BadRequest,
    /// No meeting with that id.
    NotFound,
    MeetingEnded,
    RoomFull,
    RoomLocked,
    /// A request about a meeting this connection has not joined.
    NotInMeeting,
    /// A host-only request from somebody else.
    Forbidden,
    /// The media engine refused the SDP (or the answer was for an outdated offer).
    SfuError,
    /// A mesh relay to a participant who is not in the sender's meeting.
    PeerNotFound,
    /// A dependency (Redis, the database, the media engine) is down.
    Unavailable,
    /// The host removed this user from the meeting; only the host can let them back.
    Removed,
    /// The connection's token expired (`session:expired`); reconnect with a fresh one.
    TokenExpired,
    /// The connection was made without `auth: { token }` (`meeting-error` only).
    TokenMissing,
    /// The SFU lost the connection's media (`meeting-error` only).
    MediaFailed,
    /// Too many requests of this kind from this connection or user; `retryAfterMs` says
    /// when the next one would pass.
    RateLimited,
    /// The meeting requires approval: the connection waits in its lobby until the host
    /// admits (`lobby:admitted`, then join again) or denies (`lobby:denied`) it.
    InLobby,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MeetingEnded => "MEETING_ENDED",
            ErrorCode::RoomFull => "ROOM_FULL",
            ErrorCode::RoomLocked => "ROOM_LOCKED",
            ErrorCode::NotInMeeting => "NOT_IN_MEETING",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::SfuError => "SFU_ERROR",
            ErrorCode::PeerNotFound => "PEER_NOT_FOUND",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Removed => "REMOVED",
            ErrorCode::TokenExpired => "TOKEN_EXPIRED",
            ErrorCode::TokenMissing => "TOKEN_MISSING",
            ErrorCode::MediaFailed => "MEDIA_FAILED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::InLobby => "IN_LOBBY",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// With `RATE_LIMITED`: milliseconds until a retry would pass.
    #[serde(
        default,
        rename = "retryAfterMs",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after_ms: Option<u64>,
    /// With `FORBIDDEN` for a missing grant: which one (`canChat`, `canPublishVideo`,
    /// `meetings`, `coHost`, `host` …), so that a client can say why without parsing
    /// the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
            grant: None,
        }
    }
}

/// `{ "ok": true, "data": … }` or `{ "ok": false, "error": { code, message } }`.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Ack<T> {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl<T> Ack<T> {
    pub fn ok(data: T) -> Self {
        Ack {
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    pub fn err(error: ErrorBody) -> Self {
        Ack {
            ok: false,
            data: None,
            error: Some(error),
        }
    }

    pub fn into_result(self) -> Result<T, ErrorBody> {
        match (self.ok, self.data, self.error) {
            (true, Some(data), _) => Ok(data),
            (_, _, Some(e)) => Err(e),
            _ => Err(ErrorBody::new(
                ErrorCode::Internal,
                "malformed acknowledgement",
            )),
        }
    }
}

impl<T, E: Into<ErrorBody>> From<Result<T, E>> for Ack<T> {
    fn from(r: Result<T, E>) -> Self {
        match r {
            Ok(v) => Ack::ok(v),
            Err(e) => Ack::err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_ack_shape() {
        let ack: Ack<()> = Ack::err(ErrorBody::new(ErrorCode::RoomFull, "full"));
        let v = serde_json::to_value(&ack).expect("serialize");
        assert_eq!(
            v,
            serde_json::json!({"ok": false, "error": {"code": "ROOM_FULL", "message": "full"}})
        );
        assert_eq!(ErrorCode::RoomFull.as_str(), "ROOM_FULL");
    }
}
