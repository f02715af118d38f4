//! What the sockets of a meeting are told when its membership changes: shared by the
//! event handlers and the background tasks (`crate::tasks`), which see the same changes
//! from outside a request (a media connection lost, a meeting ended over REST or by its
//! TTL).

use proto::RoomId;
use proto::events::{EndReason, MeetingEnded, ParticipantLeft};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use super::emit::emit_to;
use super::room_channel;
use crate::membership::{Departure, Membership};

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
    membership.clear(room, reason).await;
}
