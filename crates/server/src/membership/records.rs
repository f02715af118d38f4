//! What membership reads from and writes to the meeting store.
//!
//! History writes (joins, leaves) are best effort: a database hiccup is logged and the
//! meeting goes on, because refusing media to people already talking would be worse
//! than a missing history row. Reading the meeting at join is not: without it we cannot
//! know the host, the cap or whether it ended. Nor are the removal records: letting a
//! removed user in because the store hiccupped would undo the removal.

use chrono::Utc;
use proto::events::EndReason;
use proto::{RoomId, UserId};
use serde_json::Value;

use super::{Membership, MembershipError};
use crate::live::LivePeer;
pub use crate::store::Topology;
use crate::store::{JoinRecord, MeetingStatus, StoreError};
use crate::webhooks::{WebhookEvent, WebhookParticipant};

/// The parts of a meeting that membership and the signaling need, and its JSON for the
/// client.
#[derive(Debug)]
pub struct MeetingView {
    pub host_id: UserId,
    pub ended: bool,
    pub locked: bool,
    pub require_approval: bool,
    pub allow_chat: bool,
    pub allow_screen_share: bool,
    pub topology: Topology,
    pub max_participants: u32,
    /// The meeting as `GET /api/meetings/:roomId` shows it.
    pub json: Value,
}

impl Membership {
    /// The meeting `room`, read now.
    pub async fn meeting(&self, room: &RoomId) -> Result<MeetingView, MembershipError> {
        let meeting = self
            .app()
            .store
            .get_meeting(room)
            .await
            .map_err(MembershipError::Store)?
            .ok_or_else(|| MembershipError::NotFound(room.clone()))?;
        let json =
            serde_json::to_value(&meeting).map_err(|e| MembershipError::Internal(e.into()))?;
        Ok(MeetingView {
            host_id: meeting.host_id,
            ended: meeting.status == MeetingStatus::Ended,
            locked: meeting.settings.lock_room,
            require_approval: meeting.settings.require_approval,
            allow_chat: meeting.settings.allow_chat,
            allow_screen_share: meeting.settings.allow_screen_share,
            topology: meeting.topology,
            max_participants: meeting.max_participants,
            json,
        })
    }

    /// The cap a join is checked against: the meeting's own, within the server's
    /// `MAX_PARTICIPANTS`, and within the mesh limit for mesh meetings.
    pub fn participant_cap(&self, meeting: &MeetingView) -> usize {
        let config = &self.app().config;
        let mut cap = meeting.max_participants.min(config.max_participants);
        if meeting.topology == Topology::Mesh {
            cap = cap.min(config.mesh_max_participants);
        }
        cap.max(1) as usize
    }
}

/// Write the join to the history. The only refusals are a meeting that ended (or was
/// deleted) since the join read it, and a removal recorded since; other store errors
/// are logged (see the module doc).
pub(super) async fn joined(
    m: &Membership,
    room: &RoomId,
    peer: &LivePeer,
    admitted: usize,
) -> Result<(), MembershipError> {
    let record = JoinRecord {
        user_id: peer.user_id.clone(),
        peer_id: peer.peer_id.clone(),
        user_name: peer.user_name.clone(),
        user_picture: peer.user_picture.clone(),
        is_host: peer.is_host,
        admitted: u32::try_from(admitted).unwrap_or(u32::MAX),
    };
    match m
        .app()
        .store
        .record_join_outcome(room, record, Utc::now())
        .await
    {
        Ok(outcome) => {
            let hooks = &m.app().webhooks;
            if outcome.started {
                hooks.emit(room, WebhookEvent::MeetingStarted {});
            }
            let participant = webhook_participant(peer);
            hooks.emit(room, WebhookEvent::ParticipantJoined { participant });
            Ok(())
        }
        Err(StoreError::MeetingClosed) => Err(MembershipError::MeetingEnded),
        Err(StoreError::UserRemoved) => Err(MembershipError::Removed),
        Err(e) => {
            tracing::warn!(room = %room, peer = %peer.peer_id, error = %e, "could not record a join");
            Ok(())
        }
    }
}

/// A connection as webhooks show it.
fn webhook_participant(peer: &LivePeer) -> WebhookParticipant {
    WebhookParticipant {
        user_id: peer.user_id.clone(),
        peer_id: peer.peer_id.clone(),
        name: peer.user_name.clone(),
        is_host: peer.is_host,
        joined_at: peer.joined_at,
    }
}

/// Write the leave to the history (best effort), and tell the webhooks why it left
/// (`hook`: a `LeaveWhy`'s name, or `meeting_ended`; `None`: no webhook). Called once
/// per connection, by whoever took it out of the live registry.
pub(super) async fn left(
    m: &Membership,
    room: &RoomId,
    peer: &LivePeer,
    hook: Option<&'static str>,
) {
    if let Some(reason) = hook {
        let now = Utc::now();
        let duration_seconds = (now - peer.joined_at).num_milliseconds().max(0) as f64 / 1000.0;
        let participant = webhook_participant(peer);
        m.app().webhooks.emit(
            room,
            WebhookEvent::ParticipantLeft {
                participant,
                reason,
                duration_seconds,
            },
        );
    }
    if let Err(e) = m
        .app()
        .store
        .record_leave(room, &peer.peer_id, Utc::now())
        .await
    {
        tracing::warn!(room = %room, peer = %peer.peer_id, error = %e, "could not record a leave");
    }
}

/// Whether the host removed `user` (the join is refused before it is admitted).
pub(super) async fn is_removed(
    m: &Membership,
    room: &RoomId,
    user: &UserId,
) -> Result<bool, MembershipError> {
    m.app()
        .store
        .is_removed(room, user)
        .await
        .map_err(MembershipError::Store)
}

/// The host removed `user`; holds until [`allowed`].
pub(super) async fn removed(
    m: &Membership,
    room: &RoomId,
    user: &UserId,
    by: &UserId,
) -> Result<(), MembershipError> {
    m.app()
        .store
        .remove_user(room, user, by, Utc::now())
        .await
        .map_err(MembershipError::Store)
}

/// Let a removed user back in.
pub(super) async fn allowed(
    m: &Membership,
    room: &RoomId,
    user: &UserId,
) -> Result<(), MembershipError> {
    m.app()
        .store
        .allow_user(room, user)
        .await
        .map(|_| ())
        .map_err(MembershipError::Store)
}

/// The host ended the meeting. `meeting_ended` goes out from here only if this call
/// ended it (a racing REST end or TTL sweep may have).
pub(super) async fn ended(m: &Membership, room: &RoomId) -> Result<(), MembershipError> {
    let ended = m
        .app()
        .store
        .end_meeting(room, EndReason::HostEnded.as_str(), Utc::now())
        .await
        .map_err(MembershipError::Store)?;
    if ended.is_some() {
        let reason = EndReason::HostEnded;
        m.app()
            .webhooks
            .emit(room, WebhookEvent::MeetingEnded { reason });
    }
    Ok(())
}
