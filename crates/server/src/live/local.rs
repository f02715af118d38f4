//! The in-process live registry: a mutex-guarded map, used when there is no Redis.
//! Each method holds the lock for one whole step, so the contract's atomicity holds.

use std::collections::HashMap;
use std::sync::Mutex;

use proto::{PeerId, RoomId};

use super::{Admitted, LiveError, LivePeer};

/// Live participants of every meeting this process knows about (no Redis).
#[derive(Debug, Default)]
pub struct LocalRooms {
    rooms: Mutex<HashMap<RoomId, Vec<LivePeer>>>,
    pub(super) lobby: super::lobby::LocalLobby,
    pub(super) activity: super::activity::LocalActivity,
}

impl LocalRooms {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<RoomId, Vec<LivePeer>>) -> R) -> R {
        // A poisoned lock means a panic elsewhere while holding it; the map itself is
        // still consistent (every mutation below is a single push/retain), so keep going.
        let mut guard = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Add `peer` to `room` unless that would exceed `limit`. The user's earlier
    /// connections to the room are replaced (and do not count against the limit).
    pub(super) fn admit(
        &self,
        room: &RoomId,
        peer: LivePeer,
        limit: usize,
    ) -> Result<Admitted, LiveError> {
        self.with(|rooms| {
            let peers = rooms.entry(room.clone()).or_default();
            let others = peers.iter().filter(|p| p.user_id != peer.user_id).count();
            if others >= limit {
                if peers.is_empty() {
                    rooms.remove(room);
                }
                return Err(LiveError::Full { limit });
            }
            let (replaced, kept): (Vec<_>, Vec<_>) = std::mem::take(peers)
                .into_iter()
                .partition(|p| p.user_id == peer.user_id);
            *peers = kept;
            peers.push(peer);
            Ok(Admitted {
                replaced,
                present: peers.len(),
            })
        })
    }

    pub(super) fn remove(&self, room: &RoomId, peer: &PeerId) -> Option<(LivePeer, usize)> {
        self.with(|rooms| {
            let peers = rooms.get_mut(room)?;
            let at = peers.iter().position(|p| &p.peer_id == peer)?;
            let gone = peers.remove(at);
            let left = peers.len();
            if left == 0 {
                rooms.remove(room);
            }
            Some((gone, left))
        })
    }

    pub(super) fn clear(&self, room: &RoomId) -> Vec<LivePeer> {
        self.with(|rooms| rooms.remove(room).unwrap_or_default())
    }

    pub(super) fn peers(&self, room: &RoomId) -> Vec<LivePeer> {
        self.with(|rooms| rooms.get(room).cloned().unwrap_or_default())
    }

    pub(super) fn connections(&self) -> Vec<(RoomId, PeerId)> {
        self.with(|rooms| {
            rooms
                .iter()
                .flat_map(|(r, ps)| ps.iter().map(|p| (r.clone(), p.peer_id.clone())))
                .collect()
        })
    }

    pub(super) fn count(&self) -> usize {
        self.with(|rooms| rooms.values().map(Vec::len).sum())
    }

    /// Change one connection's state; returns the new state, or `None` if it is gone.
    pub(super) fn update(
        &self,
        room: &RoomId,
        peer: &PeerId,
        change: impl FnOnce(&mut LivePeer),
    ) -> Option<LivePeer> {
        self.with(|rooms| {
            let p = rooms
                .get_mut(room)?
                .iter_mut()
                .find(|p| &p.peer_id == peer)?;
            change(p);
            Some(p.clone())
        })
    }
}
