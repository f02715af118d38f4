//! The one error type of the signaling boundary. Each variant maps to the code a client
//! sees in its acknowledgement; internal causes are logged, never sent.

use proto::{ErrorBody, ErrorCode};

use crate::media::{EngineError, MediaError};
use crate::membership::MembershipError;

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The payload failed to parse or validate; the text says which field.
    #[error("{0}")]
    BadRequest(String),
    #[error("no meeting with id {0}")]
    NotFound(String),
    #[error("this meeting has ended")]
    MeetingEnded,
    #[error("the meeting is full ({limit} participants)")]
    RoomFull { limit: usize },
    #[error("the meeting is locked by its host")]
    RoomLocked,
    #[error("you have not joined this meeting")]
    NotInMeeting,
    /// The caller's grants or role do not allow the event ([`crate::access`]).
    #[error(transparent)]
    Denied(#[from] crate::access::Denied),
    #[error("{0}")]
    BadTarget(&'static str),
    #[error("{0}")]
    Disabled(&'static str),
    /// The media engine refused the request (bad SDP, stale answer …).
    #[error("media engine: {0}")]
    Sfu(meeting_sfu::SfuError),
    #[error("{0} is not in this meeting")]
    PeerNotFound(String),
    #[error("the host removed you from this meeting")]
    Removed,
    /// Put in the lobby: waiting for the host to let this connection in.
    #[error("waiting for the host to let you in")]
    InLobby,
    #[error("nobody with that id is waiting in the lobby")]
    NotWaiting,
    #[error("{0}")]
    Unavailable(String),
    /// This node is shutting down (SIGTERM): connect again, to another node or to the
    /// restarted process.
    #[error("this server is shutting down; connect again")]
    Draining,
    #[error(transparent)]
    RateLimited(#[from] crate::limits::RateLimited),
    /// A recording request refused (host only, `allowRecording`, already running …).
    #[error(transparent)]
    Recording(crate::recording::control::ControlError),
    /// Anything else: logged with its cause, reported as INTERNAL.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl SignalError {
    pub fn code(&self) -> ErrorCode {
        match self {
            SignalError::BadRequest(_) => ErrorCode::BadRequest,
            SignalError::NotFound(_) => ErrorCode::NotFound,
            SignalError::MeetingEnded => ErrorCode::MeetingEnded,
            SignalError::RoomFull { .. } => ErrorCode::RoomFull,
            SignalError::RoomLocked => ErrorCode::RoomLocked,
            SignalError::NotInMeeting => ErrorCode::NotInMeeting,
            SignalError::Denied(_) | SignalError::Disabled(_) => ErrorCode::Forbidden,
            SignalError::BadTarget(_) => ErrorCode::BadRequest,
            SignalError::Sfu(_) => ErrorCode::SfuError,
            SignalError::PeerNotFound(_) => ErrorCode::PeerNotFound,
            SignalError::Removed => ErrorCode::Removed,
            SignalError::InLobby => ErrorCode::InLobby,
            SignalError::NotWaiting => ErrorCode::PeerNotFound,
            SignalError::Unavailable(_) | SignalError::Draining => ErrorCode::Unavailable,
            SignalError::RateLimited(_) => ErrorCode::RateLimited,
            SignalError::Recording(e) => recording_code(e),
            SignalError::Internal(_) => ErrorCode::Internal,
        }
    }
}

fn recording_code(e: &crate::recording::control::ControlError) -> ErrorCode {
    use crate::recording::RecordingError;
    use crate::recording::control::ControlError;
    match e {
        ControlError::NotFound(_) => ErrorCode::NotFound,
        ControlError::MeetingEnded => ErrorCode::MeetingEnded,
        ControlError::NotHost | ControlError::Disabled => ErrorCode::Forbidden,
        ControlError::Recording(
            RecordingError::AlreadyRecording | RecordingError::NotRecording,
        ) => ErrorCode::BadRequest,
        ControlError::Mesh
        | ControlError::Unreachable(_)
        | ControlError::Store(_)
        | ControlError::Recording(RecordingError::NoEngine | RecordingError::Io(_)) => {
            ErrorCode::Unavailable
        }
    }
}

impl From<ErrorBody> for SignalError {
    fn from(e: ErrorBody) -> Self {
        SignalError::BadRequest(e.message)
    }
}

impl From<crate::live::LiveError> for SignalError {
    fn from(e: crate::live::LiveError) -> Self {
        use crate::live::LiveError;
        match e {
            LiveError::Full { limit } => SignalError::RoomFull { limit },
            LiveError::Unavailable(why) => SignalError::Unavailable(format!(
                "live meeting state is unavailable (Redis): {why}"
            )),
        }
    }
}

impl From<MembershipError> for SignalError {
    fn from(e: MembershipError) -> Self {
        match e {
            MembershipError::NotFound(room) => SignalError::NotFound(room.to_string()),
            MembershipError::MeetingEnded => SignalError::MeetingEnded,
            MembershipError::RoomLocked => SignalError::RoomLocked,
            MembershipError::RoomFull { limit } => SignalError::RoomFull { limit },
            MembershipError::Removed => SignalError::Removed,
            MembershipError::ApprovalRequired => SignalError::InLobby,
            MembershipError::NotWaiting => SignalError::NotWaiting,
            MembershipError::NotInMeeting => SignalError::NotInMeeting,
            MembershipError::Denied(d) => SignalError::Denied(d),
            MembershipError::BadTarget(why) => SignalError::BadTarget(why),
            MembershipError::PeerNotFound(user) => SignalError::PeerNotFound(user.to_string()),
            MembershipError::Store(_) | MembershipError::LiveUnavailable(_) => {
                SignalError::Unavailable(e.to_string())
            }
            MembershipError::Internal(cause) => SignalError::Internal(cause),
        }
    }
}

impl From<MediaError> for SignalError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::Engine(EngineError::NoEngine) => {
                SignalError::Disabled("this server runs without its SFU (SFU_MODE_ENABLED=false)")
            }
            MediaError::Engine(EngineError::Refused(refusal)) => SignalError::Sfu(refusal),
            // Worth asking again: a worker restarting, Redis or the owner node away.
            MediaError::Engine(EngineError::WorkerGone | EngineError::Timeout)
            | MediaError::Placement(_)
            | MediaError::Redis(_)
            | MediaError::NodeGone { .. }
            | MediaError::RelayTimeout => SignalError::Unavailable(e.to_string()),
            MediaError::UnexpectedReply(_) => SignalError::Internal(e.into()),
        }
    }
}

impl From<SignalError> for ErrorBody {
    fn from(e: SignalError) -> Self {
        if let SignalError::Internal(cause) = &e {
            tracing::error!(error = ?cause, "signaling request failed");
        }
        let mut body = ErrorBody::new(e.code(), e.to_string());
        if let SignalError::Denied(d) = &e {
            body.grant = Some(d.grant.as_str().to_owned());
        }
        if let SignalError::RateLimited(r) = &e {
            body.retry_after_ms =
                Some(u64::try_from(r.retry_after.as_millis()).unwrap_or(u64::MAX));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use meeting_sfu::{SdpError, SfuError};

    use super::*;
    use crate::cluster::placement::PlacementError;

    fn body(e: MediaError) -> ErrorBody {
        ErrorBody::from(SignalError::from(e))
    }

    #[test]
    fn media_errors_reach_the_client_with_their_code() {
        let cases = [
            (
                MediaError::from(EngineError::NoEngine),
                ErrorCode::Forbidden,
                "this server runs without its SFU (SFU_MODE_ENABLED=false)",
            ),
            (
                MediaError::from(EngineError::Refused(SfuError::InvalidSdp(
                    SdpError::OfferUnparsable,
                ))),
                ErrorCode::SfuError,
                "media engine: the SDP offer could not be parsed",
            ),
            (
                MediaError::from(EngineError::Refused(SfuError::StaleAnswer)),
                ErrorCode::SfuError,
                "media engine: stale answer",
            ),
            (
                MediaError::from(EngineError::from(SfuError::WorkerGone)),
                ErrorCode::Unavailable,
                "the media worker is not running",
            ),
            (
                MediaError::from(EngineError::Timeout),
                ErrorCode::Unavailable,
                "the media worker did not answer in time",
            ),
            (
                MediaError::from(PlacementError::NoHost),
                ErrorCode::Unavailable,
                "no node with an SFU is available for this meeting",
            ),
            (
                MediaError::NodeGone {
                    node: "n_gone".into(),
                },
                ErrorCode::Unavailable,
                "node n_gone hosting this meeting's media is gone",
            ),
            (
                MediaError::RelayTimeout,
                ErrorCode::Unavailable,
                "the node hosting this meeting's media did not answer in time",
            ),
            (
                MediaError::UnexpectedReply("no SDP to an offer"),
                ErrorCode::Internal,
                "internal error",
            ),
        ];
        for (error, code, message) in cases {
            let seen = body(error);
            assert_eq!((seen.code, seen.message.as_str()), (code, message));
        }
    }

    #[test]
    fn redis_failures_are_unavailable() {
        let e = redis::RedisError::from((redis::ErrorKind::Io, "connection refused"));
        let seen = body(MediaError::from(e));
        assert_eq!(seen.code, ErrorCode::Unavailable);
        assert!(
            seen.message.starts_with("Redis is unavailable"),
            "{}",
            seen.message
        );
    }
}
