//! Meetings changed outside the signaling (REST, the TTL sweeper): their sockets are
//! told. An ended or deleted meeting is also cleared, as when the host ends one from a
//! socket; an updated one (title, settings) is only announced, and so is a recording
//! that started or stopped (from either edge, or by itself).

use proto::events::MeetingUpdated;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::sync::broadcast::error::RecvError;

use crate::membership::Membership;
use crate::signaling::emit::emit_to;
use crate::signaling::{announce, room_channel};
use crate::state::MeetingEvent;
use crate::store::Meeting;

/// Follows `AppState::events` until shutdown.
pub async fn follow<A: Adapter>(io: SocketIo<A>, membership: Membership) {
    let mut events = membership.app().events.subscribe();
    let shutdown = membership.app().shutdown.clone();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = events.recv() => e,
        };
        match event {
            Ok(MeetingEvent::Ended { room_id, reason }) => {
                announce::end_for_everyone(&io, &membership, &room_id, reason).await;
            }
            Ok(MeetingEvent::Updated(meeting)) => updated(&io, &meeting).await,
            Ok(MeetingEvent::Recording(notice)) => announce::recording(&io, &notice).await,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "meeting lifecycle events were dropped");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// `meeting:updated` to every socket of the meeting (on every node: the Socket.IO room
/// is the adapter's), with the meeting as the join's ack shows it.
async fn updated<A: Adapter>(io: &SocketIo<A>, meeting: &Meeting) {
    let json = match serde_json::to_value(meeting) {
        Ok(json) => json,
        Err(e) => {
            // Cannot happen for a plain struct; the REST answer already carries it.
            tracing::error!(room = %meeting.room_id, error = %e, "cannot serialise an updated meeting");
            return;
        }
    };
    let note = MeetingUpdated {
        room_id: meeting.room_id.clone(),
        meeting: json,
    };
    emit_to(io, room_channel(&meeting.room_id), &note).await;
}
