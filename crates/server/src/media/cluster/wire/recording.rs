//! Recording commands on the relay's wire (`Request::Recording`, `Reply::Recording`):
//! mirrors of `recording::control`'s [`Command`] and [`Outcome`] and of
//! [`RecordingError`], with exhaustive conversions like the rest of the wire.

use proto::events::RecordingStopReason;
use serde::{Deserialize, Serialize};

use super::Reply;
use crate::recording::control::{Command, Outcome};
use crate::recording::{RecordingError, RecordingInfo};

/// [`Command`] on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "camelCase")]
pub(in crate::media::cluster) enum WireCommand {
    Start,
    /// The reason with the names of `recording:stopped { reason }` (proto's type).
    Stop {
        reason: RecordingStopReason,
    },
    Status,
}

/// [`Outcome`] on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub(in crate::media::cluster) enum WireOutcome {
    Started {
        recording: WireRecordingInfo,
    },
    #[serde(rename_all = "camelCase")]
    Stopped {
        recording_id: Option<String>,
    },
    Status {
        recording: Option<WireRecordingInfo>,
    },
}

/// [`RecordingInfo`] on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::media::cluster) struct WireRecordingInfo {
    pub recording_id: String,
    pub started_at_ms: u64,
}

/// [`RecordingError`] on the wire; an I/O error keeps its message only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "error", content = "detail", rename_all = "camelCase")]
pub(in crate::media::cluster) enum WireRecordingError {
    AlreadyRecording,
    NotRecording,
    NoEngine,
    Io(String),
}

impl From<Command> for WireCommand {
    fn from(c: Command) -> Self {
        match c {
            Command::Start => WireCommand::Start,
            Command::Stop(reason) => WireCommand::Stop {
                reason: reason.into(),
            },
            Command::Status => WireCommand::Status,
        }
    }
}

impl From<WireCommand> for Command {
    fn from(c: WireCommand) -> Self {
        match c {
            WireCommand::Start => Command::Start,
            WireCommand::Stop { reason } => Command::Stop(reason.into()),
            WireCommand::Status => Command::Status,
        }
    }
}

impl From<RecordingInfo> for WireRecordingInfo {
    fn from(r: RecordingInfo) -> Self {
        WireRecordingInfo {
            recording_id: r.recording_id,
            started_at_ms: r.started_at_ms,
        }
    }
}

impl From<WireRecordingInfo> for RecordingInfo {
    fn from(r: WireRecordingInfo) -> Self {
        RecordingInfo {
            recording_id: r.recording_id,
            started_at_ms: r.started_at_ms,
        }
    }
}

/// What the owner's recorder answered, for the reply.
pub(in crate::media::cluster) fn recording_to_wire(
    result: Result<Outcome, RecordingError>,
) -> Reply {
    let outcome = match result {
        Ok(Outcome::Started(info)) => Ok(WireOutcome::Started {
            recording: info.into(),
        }),
        Ok(Outcome::Stopped(recording_id)) => Ok(WireOutcome::Stopped { recording_id }),
        Ok(Outcome::Status(info)) => Ok(WireOutcome::Status {
            recording: info.map(Into::into),
        }),
        Err(e) => Err(match e {
            RecordingError::AlreadyRecording => WireRecordingError::AlreadyRecording,
            RecordingError::NotRecording => WireRecordingError::NotRecording,
            RecordingError::NoEngine => WireRecordingError::NoEngine,
            RecordingError::Io(e) => WireRecordingError::Io(e.to_string()),
        }),
    };
    Reply::Recording { outcome }
}

/// The owner's answer to a recording command, as the recorder there gave it.
pub(in crate::media::cluster) fn recording_from_wire(
    outcome: Result<WireOutcome, WireRecordingError>,
) -> Result<Outcome, RecordingError> {
    match outcome {
        Ok(WireOutcome::Started { recording }) => Ok(Outcome::Started(recording.into())),
        Ok(WireOutcome::Stopped { recording_id }) => Ok(Outcome::Stopped(recording_id)),
        Ok(WireOutcome::Status { recording }) => Ok(Outcome::Status(recording.map(Into::into))),
        Err(WireRecordingError::AlreadyRecording) => Err(RecordingError::AlreadyRecording),
        Err(WireRecordingError::NotRecording) => Err(RecordingError::NotRecording),
        Err(WireRecordingError::NoEngine) => Err(RecordingError::NoEngine),
        Err(WireRecordingError::Io(message)) => {
            Err(RecordingError::Io(std::io::Error::other(message)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::cluster::wire::tests::round_trip;
    use crate::recording::StopReason;

    #[test]
    fn every_recording_command_and_answer_survives_the_wire() {
        let commands = [
            Command::Start,
            Command::Status,
            Command::Stop(StopReason::Host),
            Command::Stop(StopReason::MeetingEnded),
            Command::Stop(StopReason::DiskFull),
            Command::Stop(StopReason::WriteError),
            Command::Stop(StopReason::Shutdown),
        ];
        for c in commands {
            assert_eq!(Command::from(round_trip(&WireCommand::from(c))), c);
        }
        let info = RecordingInfo {
            recording_id: "20261201T020500Z-3fa9c1".into(),
            started_at_ms: 1_796_090_700_000,
        };
        let outcomes = [
            Outcome::Started(info.clone()),
            Outcome::Stopped(Some(info.recording_id.clone())),
            Outcome::Stopped(None),
            Outcome::Status(Some(info)),
            Outcome::Status(None),
        ];
        for o in outcomes {
            let Reply::Recording { outcome } = round_trip(&recording_to_wire(Ok(o.clone()))) else {
                panic!("a recording answer stays one");
            };
            assert_eq!(recording_from_wire(outcome).expect("an outcome"), o);
        }
        let errors = [
            RecordingError::AlreadyRecording,
            RecordingError::NotRecording,
            RecordingError::NoEngine,
            RecordingError::Io(std::io::Error::other("disk on fire")),
        ];
        for e in errors {
            let message = e.to_string();
            let Reply::Recording { outcome } = round_trip(&recording_to_wire(Err(e))) else {
                panic!("a recording refusal stays one");
            };
            let back = recording_from_wire(outcome).expect_err("still a refusal");
            assert_eq!(back.to_string(), message);
        }
        let json = serde_json::to_value(WireCommand::from(Command::Stop(StopReason::DiskFull)))
            .expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({ "command": "stop", "reason": "disk-full" })
        );
    }
}
