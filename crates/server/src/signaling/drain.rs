//! Telling a draining node's participants to move (`server-draining`).
//!
//! Two kinds of connections depend on a node that goes away: those whose socket is on
//! it (they reconnect, and `resume-meeting` lands on another node or on the restarted
//! process), and those whose media is on it, wherever their socket is (they open a new
//! media connection, which re-opens the meeting's media on a live node, since this node
//! gave up its leases first). Each is told once, with both facts.

use std::collections::HashSet;

use proto::events::ServerDraining;
use proto::{PeerId, RoomId};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use super::emit::{emit_to, tell};
use super::peer_channel;
use super::session::Session;
use crate::membership::Membership;

/// Pages reconnect within this window, each at a random moment in it: short, since the
/// media gap lasts until they do, but long enough that a node's hundreds of pages do
/// not all reconnect within the same few milliseconds.
pub const RECONNECT_WITHIN_MS: u64 = 500;

/// Tell every socket on this node, and every participant of `hosted` (the meetings
/// whose media this node held, with Redis) whose socket is on another node. Returns how
/// many were told.
pub async fn tell_participants<A: Adapter>(
    io: &SocketIo<A>,
    membership: &Membership,
    hosted: &[RoomId],
) -> usize {
    let hosted_here: HashSet<&RoomId> = hosted.iter().collect();
    // Without a cluster the media dies with the process too.
    let alone = membership.media().cluster().is_none();
    let mut told: HashSet<PeerId> = HashSet::new();
    let mut count = 0;
    for s in io.local().sockets() {
        let joined = s.extensions.get::<Session>().and_then(|x| x.joined());
        let media = joined
            .as_ref()
            .is_some_and(|j| alone || hosted_here.contains(&j.room));
        if let Some(j) = joined {
            told.insert(j.peer);
        }
        tell(
            &s,
            &ServerDraining {
                reconnect_in_ms: RECONNECT_WITHIN_MS,
                signaling: true,
                media,
            },
        );
        count += 1;
    }
    for room in hosted {
        let peers = match membership.present(room).await {
            Ok(p) => p,
            Err(e) => {
                // They learn it the slow way: the lease is gone, `meeting:rejoin` follows.
                tracing::warn!(room = %room, error = %e, "draining: cannot list the meeting's participants");
                continue;
            }
        };
        for p in peers.into_iter().filter(|p| !told.contains(&p.peer_id)) {
            let note = ServerDraining {
                reconnect_in_ms: RECONNECT_WITHIN_MS,
                signaling: false,
                media: true,
            };
            emit_to(io, peer_channel(&p.peer_id), &note).await;
            count += 1;
        }
    }
    count
}

/// The connections the sockets on this node carry now.
pub fn local_connections<A: Adapter>(io: &SocketIo<A>) -> Vec<(RoomId, PeerId)> {
    io.local()
        .sockets()
        .iter()
        .filter_map(|s| s.extensions.get::<Session>().and_then(|x| x.joined()))
        .map(|j| (j.room, j.peer))
        .collect()
}

/// Sockets connected to this node now.
pub fn local_sockets<A: Adapter>(io: &SocketIo<A>) -> usize {
    io.local().sockets().len()
}
