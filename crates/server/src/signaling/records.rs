//! What signaling reads from and writes to the meeting store, and the meeting lifecycle
//! changes made elsewhere (REST end/delete, the TTL sweeper) that connected clients must
//! hear about.
//!
//! History writes (joins, leaves) are best effort: a database hiccup is logged and the
//! meeting goes on, because refusing media to people already talking would be worse
//! than a missing history row. Reading the meeting at join is not: without it we cannot
//! know the host, the cap or whether it ended.

use chrono::Utc;
use proto::signaling::IceServer;
use proto::{RoomId, UserId};
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use crate::state::MeetingEvent;
pub use crate::store::Topology;
use crate::store::{JoinRecord, MeetingStatus, StoreError};

use super::handlers::end_for_everyone;
use super::session::Session;
use super::{SignalError, Signaling};
use crate::live::LivePeer;

/// The parts of a meeting a join needs, and its JSON for the client.
#[derive(Debug)]
pub struct MeetingView {
    pub host_id: String,
    pub ended: bool,
    pub locked: bool,
    pub allow_chat: bool,
    pub allow_screen_share: bool,
    pub topology: Topology,
    pub max_participants: u32,
    pub json: Value,
}

pub async fn load(sig: &Signaling, room: &RoomId) -> Result<MeetingView, SignalError> {
    let meeting = sig
        .app()
        .store
        .get_meeting(room)
        .await
        .map_err(|e| SignalError::Unavailable(format!("the meeting store is unavailable: {e}")))?
        .ok_or_else(|| SignalError::NotFound(room.to_string()))?;
    let json = serde_json::to_value(&meeting).map_err(|e| SignalError::Internal(e.into()))?;
    Ok(MeetingView {
        host_id: meeting.host_id.as_str().to_owned(),
        ended: meeting.status == MeetingStatus::Ended,
        locked: meeting.settings.lock_room,
        allow_chat: meeting.settings.allow_chat,
        allow_screen_share: meeting.settings.allow_screen_share,
        topology: meeting.topology,
        max_participants: meeting.max_participants,
        json,
    })
}

/// The cap a join is checked against: the meeting's own, within the server's
/// `MAX_PARTICIPANTS`, and within the mesh limit for mesh meetings.
pub fn participant_cap(sig: &Signaling, meeting: &MeetingView) -> usize {
    let mut cap = meeting
        .max_participants
        .min(sig.app().config.max_participants);
    if meeting.topology == Topology::Mesh {
        cap = cap.min(sig.app().config.mesh_max_participants);
    }
    cap.max(1) as usize
}

/// The participant's STUN/TURN list; TURN credentials are minted for `session.user`.
pub fn ice_servers(sig: &Signaling, session: &Session) -> Vec<IceServer> {
    crate::ice::ice_servers(
        &sig.app().config.ice,
        &session.user,
        std::time::SystemTime::now(),
    )
}

/// Write the join to the history. The only refusal is a meeting that ended (or was
/// deleted) since the join read it: the caller then undoes the admission. Other store
/// errors are logged (see the module doc).
pub async fn joined(
    sig: &Signaling,
    room: &RoomId,
    peer: &LivePeer,
    admitted: usize,
) -> Result<(), SignalError> {
    let record = JoinRecord {
        user_id: peer.user_id.clone(),
        peer_id: peer.peer_id.clone(),
        user_name: peer.user_name.clone(),
        user_picture: peer.user_picture.clone(),
        is_host: peer.is_host,
        admitted: u32::try_from(admitted).unwrap_or(u32::MAX),
    };
    match sig.app().store.record_join(room, record, Utc::now()).await {
        Ok(_) => Ok(()),
        Err(StoreError::MeetingClosed) => Err(SignalError::MeetingEnded),
        Err(StoreError::UserRemoved) => Err(SignalError::Removed),
        Err(e) => {
            tracing::warn!(room = %room, peer = %peer.peer_id, error = %e, "could not record a join");
            Ok(())
        }
    }
}

/// Whether the host removed `user` (refuse the join before admitting it). Not best
/// effort: letting a removed user in because the store hiccupped would undo the removal.
pub async fn is_removed(
    sig: &Signaling,
    room: &RoomId,
    user: &UserId,
) -> Result<bool, SignalError> {
    sig.app()
        .store
        .is_removed(room, user)
        .await
        .map_err(|e| SignalError::Unavailable(format!("the meeting store is unavailable: {e}")))
}

/// The host removed `user`; holds until [`allow`]. Not best effort (see [`is_removed`]).
pub async fn removed(
    sig: &Signaling,
    room: &RoomId,
    user: &UserId,
    by: &UserId,
) -> Result<(), SignalError> {
    sig.app()
        .store
        .remove_user(room, user, by, Utc::now())
        .await
        .map_err(|e| SignalError::Unavailable(format!("the meeting store is unavailable: {e}")))
}

/// Let a removed user back in.
pub async fn allow(sig: &Signaling, room: &RoomId, user: &UserId) -> Result<(), SignalError> {
    sig.app()
        .store
        .allow_user(room, user)
        .await
        .map(|_| ())
        .map_err(|e| SignalError::Unavailable(format!("the meeting store is unavailable: {e}")))
}

pub async fn left(sig: &Signaling, room: &RoomId, peer: &LivePeer) {
    if let Err(e) = sig
        .app()
        .store
        .record_leave(room, &peer.peer_id, Utc::now())
        .await
    {
        tracing::warn!(room = %room, peer = %peer.peer_id, error = %e, "could not record a leave");
    }
}

/// Media state is live-only; the history keeps joins and leaves.
pub async fn media_changed(_sig: &Signaling, _room: &RoomId, _peer: &LivePeer) {}

pub async fn end(sig: &Signaling, room: &RoomId) -> Result<(), SignalError> {
    sig.app()
        .store
        .end_meeting(room, "host-ended", Utc::now())
        .await
        .map_err(|e| SignalError::Unavailable(format!("the meeting store is unavailable: {e}")))?;
    Ok(())
}

/// Meetings ended or deleted outside the signaling: tell their sockets and drop them.
pub async fn follow_lifecycle<A: Adapter>(io: SocketIo<A>, sig: Signaling) {
    let mut events = sig.app().events.subscribe();
    let shutdown = sig.app().shutdown.clone();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = events.recv() => e,
        };
        match event {
            Ok(MeetingEvent::Ended { room_id, reason }) => {
                end_for_everyone(&io, &sig, &room_id, reason.as_str()).await;
            }
            Ok(MeetingEvent::Updated(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "meeting lifecycle events were dropped");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
