//! Meetings ended or deleted outside the signaling (REST, the TTL sweeper): their
//! sockets are told and the meetings cleared, as when the host ends one from a socket.

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::sync::broadcast::error::RecvError;

use crate::membership::Membership;
use crate::signaling::announce;
use crate::state::MeetingEvent;

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
            Ok(MeetingEvent::Updated(_)) => {}
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "meeting lifecycle events were dropped");
            }
            Err(RecvError::Closed) => return,
        }
    }
}
