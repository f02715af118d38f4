//! `recording-start` and `recording-stop`: the host's recording controls from the page.
//! The checks are `recording::control`'s, shared with the REST API, and so is the way
//! to the node that holds the meeting's media (which records it); the meeting hears
//! of the change through `tasks::lifecycle` (`recording:started` / `recording:stopped`),
//! whichever edge made it.

use proto::signaling::RoomOnly;
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};

use super::request::{Payload, answer, member, parse};
use super::{SignalError, Signaling};
use crate::access::Action;
use crate::recording::control::{self, ControlError};
use proto::Role;

pub async fn recording_start<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: RoomOnly = parse(data)?;
        let (_, _, me) = member(&s, &sig, &req.room_id, Action::RecordingStart).await?;
        let route = sig.membership().recording();
        let co_host = me.role() == Role::CoHost;
        let info = control::start(route, &req.room_id, &me.user_id, co_host).await?;
        Ok::<Value, SignalError>(
            json!({ "recordingId": info.recording_id, "startedAtMs": info.started_at_ms }),
        )
    }
    .await;
    answer(&s, ack, result);
}

pub async fn recording_stop<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: RoomOnly = parse(data)?;
        let (_, _, me) = member(&s, &sig, &req.room_id, Action::RecordingStop).await?;
        let route = sig.membership().recording();
        let co_host = me.role() == Role::CoHost;
        let id = control::stop(route, &req.room_id, &me.user_id, co_host).await?;
        Ok::<Value, SignalError>(json!({ "recordingId": id }))
    }
    .await;
    answer(&s, ack, result);
}

impl From<ControlError> for SignalError {
    fn from(e: ControlError) -> Self {
        SignalError::Recording(e)
    }
}
