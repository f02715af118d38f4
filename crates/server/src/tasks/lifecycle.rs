//! Meetings changed outside the signaling (REST, the TTL sweeper): their sockets are
//! told. An ended or deleted meeting is also cleared, as when the host ends one from a
//! socket; an updated one (title, settings) is only announced, and so is a recording
//! that started or stopped (from either edge, or by itself); a stopped one is also
//! posted to the webhooks (`recording_finished`).

use proto::events::MeetingUpdated;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::sync::broadcast::error::RecvError;

use crate::membership::Membership;
use crate::recording::{RecordingNotice, StopReason, library};
use crate::signaling::emit::emit_to;
use crate::signaling::{announce, room_channel};
use crate::state::MeetingEvent;
use crate::store::Meeting;
use crate::webhooks::{WebhookEvent, WebhookTrack};

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
            Ok(MeetingEvent::Recording(notice)) => {
                announce::recording(&io, &notice).await;
                if let RecordingNotice::Stopped {
                    room,
                    recording_id,
                    reason,
                } = &notice
                {
                    recording_finished(&membership, room, recording_id, *reason).await;
                }
            }
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

/// `recording_finished` to the webhooks, from the closed recording's manifest. Only the
/// node that recorded it sees this notice, so it goes out once per cluster.
async fn recording_finished(
    membership: &Membership,
    room: &proto::RoomId,
    recording_id: &str,
    reason: StopReason,
) {
    let app = membership.app();
    let (root, r, id) = (
        app.recorder.dir().to_owned(),
        room.clone(),
        recording_id.to_owned(),
    );
    let summary = tokio::task::spawn_blocking(move || {
        library::list(&root, &r)
            .ok()
            .and_then(|all| all.into_iter().find(|s| s.recording_id == id))
    })
    .await
    .ok()
    .flatten();
    let Some(s) = summary else {
        tracing::warn!(room = %room, recording = %recording_id, "recording_finished not sent: its manifest cannot be read");
        return;
    };
    let tracks = s
        .tracks
        .into_iter()
        .map(|t| WebhookTrack {
            file: t.file,
            peer_id: t.peer_id,
            source: t.source,
            kind: t.kind,
            start_ms: t.start_ms,
            duration_seconds: t.duration_secs,
            size_bytes: t.size_bytes,
        })
        .collect();
    app.webhooks.emit(
        room,
        WebhookEvent::RecordingFinished {
            recording_id: s.recording_id,
            reason: reason.as_str(),
            duration_seconds: s.duration_secs,
            size_bytes: s.size_bytes,
            tracks,
        },
    );
}
