//! The one error type of the signaling boundary. Each variant maps to the code a client
//! sees in its acknowledgement; internal causes are logged, never sent.

use proto::{ErrorBody, ErrorCode};

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
    #[error("only the host can {0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Disabled(&'static str),
    #[error("media engine: {0}")]
    Sfu(String),
    #[error("{0} is not in this meeting")]
    PeerNotFound(String),
    #[error("{0}")]
    Unavailable(String),
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
            SignalError::Forbidden(_) | SignalError::Disabled(_) => ErrorCode::Forbidden,
            SignalError::Sfu(_) => ErrorCode::SfuError,
            SignalError::PeerNotFound(_) => ErrorCode::PeerNotFound,
            SignalError::Unavailable(_) => ErrorCode::Unavailable,
            SignalError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<ErrorBody> for SignalError {
    fn from(e: ErrorBody) -> Self {
        SignalError::BadRequest(e.message)
    }
}

impl From<crate::signaling::live::LiveError> for SignalError {
    fn from(e: crate::signaling::live::LiveError) -> Self {
        use crate::signaling::live::LiveError;
        match e {
            LiveError::Full { limit } => SignalError::RoomFull { limit },
            LiveError::Unavailable(why) => SignalError::Unavailable(format!(
                "live meeting state is unavailable (Redis): {why}"
            )),
        }
    }
}

impl From<SignalError> for ErrorBody {
    fn from(e: SignalError) -> Self {
        if let SignalError::Internal(cause) = &e {
            tracing::error!(error = ?cause, "signaling request failed");
        }
        ErrorBody::new(e.code(), e.to_string())
    }
}
