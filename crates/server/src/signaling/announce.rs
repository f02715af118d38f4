//! What the sockets of a meeting are told when its membership changes: shared by the
//! event handlers and the background tasks (`crate::tasks`), which see the same changes
//! from outside a request (a media connection lost, a meeting ended over REST or by its
//! TTL).

use proto::RoomId;
use proto::events::{EndReason, MeetingEnded, ParticipantLeft, RecordingStarted, RecordingStopped};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use super::emit::emit_to;
use super::room_channel;
use crate::membership::{Departure, Membership};
use crate::recording::{RecordingInfo, RecordingNotice};

/// `participant-left` to the meeting `gone` left.
pub async fn left<A: Adapter>(io: &SocketIo<A>, gone: &Departure) {
    let note = ParticipantLeft {
        user_id: gone.peer.user_id.clone(),
        peer_id: gone.peer.peer_id.clone(),
    };
    emit_to(io, room_channel(&gone.room), &note).await;
}

/// Tell every socket of the meeting it ended and take them out of its channel, then
/// drop all its live state and media ([`Membership::clear`]).
pub async fn end_for_everyone<A: Adapter>(
    io: &SocketIo<A>,
    membership: &Membership,
    room: &RoomId,
    reason: EndReason,
) {
    let channel = room_channel(room);
    let note = MeetingEnded {
        room_id: room.clone(),
        reason,
    };
    emit_to(io, channel.clone(), &note).await;
    let _ = io.to(channel.clone()).leave(channel).await;
    super::lobby::end(io, membership.live(), room).await;
    membership.clear(room, reason).await;
}

/// `recording:started` or `recording:stopped` to the meeting.
pub async fn recording<A: Adapter>(io: &SocketIo<A>, notice: &RecordingNotice) {
    match notice {
        RecordingNotice::Started { room, recording } => {
            emit_to(io, room_channel(room), &recording_started(room, recording)).await;
        }
        RecordingNotice::Stopped {
            room,
            recording_id,
            reason,
        } => {
            let note = RecordingStopped {
                room_id: room.clone(),
                recording_id: recording_id.clone(),
                reason: (*reason).into(),
            };
            emit_to(io, room_channel(room), &note).await;
        }
    }
}

/// The `recording:started` event of a running recording (also for late joiners).
pub fn recording_started(room: &RoomId, r: &RecordingInfo) -> RecordingStarted {
    RecordingStarted {
        room_id: room.clone(),
        recording_id: r.recording_id.clone(),
        started_at_ms: r.started_at_ms,
    }
}
