//! (Cluster) the rooms this node hosts: keep their leases while they have participants
//! or a recording,
//! and tell the participants whose media node died to rejoin (their next join places
//! the room on a live node).

use std::collections::{HashMap, HashSet};

use proto::RoomId;
use proto::events::{MeetingRejoin, RejoinReason};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use crate::membership::Membership;
use crate::signaling::emit::emit_to;
use crate::signaling::peer_channel;

/// Heartbeats a hosted room must be seen empty before its lease is released.
const RELEASE_AFTER_EMPTY_CHECKS: u32 = 2;

/// Runs every `cluster::HEARTBEAT` until shutdown; returns at once off a cluster.
pub async fn watch<A: Adapter>(io: SocketIo<A>, membership: Membership) {
    let Some(pl) = membership.media().cluster().map(|c| c.placement().clone()) else {
        return;
    };
    let shutdown = membership.app().shutdown.clone();
    let mut tick = tokio::time::interval(crate::cluster::HEARTBEAT);
    let mut empty_checks: HashMap<RoomId, u32> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut keep = HashSet::new();
        for room in pl.hosted() {
            let empty =
                matches!(membership.live().peers(&room).await, Ok(peers) if peers.is_empty());
            // Unknown (Redis down) or briefly empty (Redis just restarted and the nodes
            // have not re-registered their participants yet): keep hosting.
            // A room being recorded here stays here, even empty: its recording runs on.
            let recorded = membership.app().recorder.status(&room).is_some();
            let count = empty_checks.entry(room.clone()).or_insert(0);
            *count = if empty && !recorded { *count + 1 } else { 0 };
            if *count < RELEASE_AFTER_EMPTY_CHECKS {
                keep.insert(room);
            } else {
                empty_checks.remove(&room);
            }
        }
        match pl.renew(&keep).await {
            Ok(lost) => {
                for room in lost {
                    tracing::warn!(room = %room, "another node took over this meeting's media");
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not renew room leases"),
        }
        let orphans = match pl.orphaned().await {
            Ok(o) => o,
            Err(_) => continue,
        };
        for (peer, room) in orphans {
            pl.forget(&peer);
            tracing::warn!(room = %room, peer = %peer, "the node hosting this meeting's media is gone; asking the client to rejoin");
            let note = MeetingRejoin {
                room_id: room,
                reason: RejoinReason::MediaNodeLost,
            };
            emit_to(&io, peer_channel(&peer), &note).await;
        }
    }
}
