//! Which node hosts a meeting's SFU room.
//!
//! A room's media must live on one node: every participant's RTP goes to that node's
//! workers. The first node that needs the room (and runs an SFU) claims it with a lease
//! (`SET room:{id}:owner <node> NX PX`) and renews it while the room has participants.
//! A participant whose socket reaches another node never notices: that node relays its
//! media requests to the owner (`media::cluster`), and the owner's answers and server
//! offers reach the socket through the Socket.IO Redis adapter (`peer:{peerId}` rooms
//! are cluster-wide). The browser then sends media straight to the owner's announced
//! address.
//!
//! Why relay instead of redirecting the client: the client keeps one socket and one
//! origin (no CORS, no second token check, no reconnect logic in every frontend), and a
//! node only has to announce its media address, which it does already.
//!
//! When an owner dies its lease expires; the next join claims the room elsewhere, and the
//! nodes that relayed for it tell their clients to rejoin (`meeting:rejoin`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::{PeerId, RoomId};
use redis::AsyncCommands;

use super::Cluster;

/// How long an owner's claim lasts without renewal.
pub const ROOM_LEASE: Duration = Duration::from_secs(15);

/// Where a room's media lives, from this node's point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    Here,
    Node(String),
}

#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("Redis is unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    /// Nobody holds the room and this node runs no SFU to claim it with.
    #[error("no node with an SFU is available for this meeting")]
    NoHost,
}

/// Room ownership, for one node.
pub struct Placement {
    cluster: Cluster,
    /// Whether this node runs an SFU, and so may claim rooms; false from the start of
    /// a drain on ([`Placement::stop_hosting`]).
    can_host: AtomicBool,
    /// Rooms whose lease this node holds.
    hosted: Mutex<HashSet<RoomId>>,
    /// Participants whose media this node placed, and on which node: a participant
    /// whose owner changed must join the new owner afresh.
    placed: Mutex<HashMap<PeerId, (RoomId, Owner)>>,
    /// Consecutive checks that found a relayed participant's owner key missing.
    misses: Mutex<HashMap<PeerId, u32>>,
}

/// Heartbeats without an owner key before its relayed participants are told to rejoin.
const ORPHAN_AFTER: u32 = 3;

impl std::fmt::Debug for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placement")
            .field("node", &self.cluster.node_id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Placement {
    pub fn new(cluster: Cluster, can_host: bool) -> Arc<Self> {
        Arc::new(Placement {
            cluster,
            can_host: AtomicBool::new(can_host),
            hosted: Mutex::default(),
            placed: Mutex::default(),
            misses: Mutex::default(),
        })
    }

    fn owner_key(&self, room: &RoomId) -> String {
        self.cluster.key(format_args!("room:{room}:owner"))
    }

    /// The room's owner, claiming it for this node if nobody holds it (and this node
    /// runs an SFU).
    pub async fn owner(&self, room: &RoomId) -> Result<Owner, PlacementError> {
        let key = self.owner_key(room);
        let mut conn = self.cluster.conn.clone();
        if self.can_host.load(Ordering::Acquire) {
            let claimed: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&self.cluster.node_id)
                .arg("NX")
                .arg("PX")
                .arg(ROOM_LEASE.as_millis() as u64)
                .query_async(&mut conn)
                .await?;
            if claimed.is_some() {
                lock(&self.hosted).insert(room.clone());
                tracing::info!(room = %room, node = %self.cluster.node_id, "hosting the meeting's media");
                return Ok(Owner::Here);
            }
        }
        let current: Option<String> = conn.get(&key).await?;
        match current {
            Some(n) if n == self.cluster.node_id => {
                lock(&self.hosted).insert(room.clone());
                Ok(Owner::Here)
            }
            Some(n) => Ok(Owner::Node(n)),
            None => Err(PlacementError::NoHost),
        }
    }

    /// The room's owner, if a node holds it; never claims it.
    pub async fn current(&self, room: &RoomId) -> Result<Option<Owner>, redis::RedisError> {
        let mut conn = self.cluster.conn.clone();
        let current: Option<String> = conn.get(self.owner_key(room)).await?;
        Ok(current.map(|n| {
            if n == self.cluster.node_id {
                Owner::Here
            } else {
                Owner::Node(n)
            }
        }))
    }

    /// Where `peer`'s media was placed, if it still is.
    pub fn placed(&self, peer: &PeerId) -> Option<(RoomId, Owner)> {
        lock(&self.placed).get(peer).cloned()
    }

    pub fn set_placed(&self, peer: &PeerId, room: &RoomId, owner: Owner) {
        lock(&self.placed).insert(peer.clone(), (room.clone(), owner));
    }

    pub fn forget(&self, peer: &PeerId) -> Option<(RoomId, Owner)> {
        lock(&self.placed).remove(peer)
    }

    /// Rooms whose lease this node holds.
    pub fn hosted(&self) -> Vec<RoomId> {
        lock(&self.hosted).iter().cloned().collect()
    }

    /// The node drains: it claims no room from now on and gives up the leases it holds
    /// at once (each only if still its own), so that the next media request of each
    /// meeting claims it on a live node instead of waiting [`ROOM_LEASE`] for it to
    /// expire. Returns the rooms it hosted.
    pub async fn stop_hosting(&self) -> Result<Vec<RoomId>, redis::RedisError> {
        const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"#;
        self.can_host.store(false, Ordering::Release);
        let rooms: Vec<RoomId> = lock(&self.hosted).drain().collect();
        let script = redis::Script::new(RELEASE);
        let mut conn = self.cluster.conn.clone();
        for room in &rooms {
            let _: i64 = script
                .key(self.owner_key(room))
                .arg(&self.cluster.node_id)
                .invoke_async(&mut conn)
                .await?;
            tracing::info!(room = %room, "draining: released the meeting's media lease");
        }
        Ok(rooms)
    }

    /// Renew the leases of the hosted rooms in `keep`, release the others. A lease that
    /// vanished (Redis restarted) is claimed again. Returns the rooms another node took.
    pub async fn renew(&self, keep: &HashSet<RoomId>) -> Result<Vec<RoomId>, redis::RedisError> {
        const RENEW: &str = r#"
local cur = redis.call('GET', KEYS[1])
if ARGV[3] == '0' then
  if cur == ARGV[1] then redis.call('DEL', KEYS[1]) end
  return 1
end
if cur == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]); return 1 end
return 0
"#;
        let script = redis::Script::new(RENEW);
        let mut lost = Vec::new();
        let mut conn = self.cluster.conn.clone();
        for room in self.hosted() {
            let keeping = keep.contains(&room);
            let held: i64 = script
                .key(self.owner_key(&room))
                .arg(&self.cluster.node_id)
                .arg(ROOM_LEASE.as_millis() as u64)
                .arg(if keeping { "1" } else { "0" })
                .invoke_async(&mut conn)
                .await?;
            if !keeping || held == 0 {
                lock(&self.hosted).remove(&room);
                if keeping {
                    lost.push(room);
                }
            }
        }
        Ok(lost)
    }

    /// Participants relayed to a node that no longer owns their room. An owner key that
    /// is merely missing counts only after `ORPHAN_AFTER` checks in a row, so that a
    /// Redis restart (the owner re-claims within a heartbeat) is not taken for a death.
    pub async fn orphaned(&self) -> Result<Vec<(PeerId, RoomId)>, redis::RedisError> {
        let placed: Vec<(PeerId, RoomId, String)> = lock(&self.placed)
            .iter()
            .filter_map(|(p, (r, o))| match o {
                Owner::Node(n) => Some((p.clone(), r.clone(), n.clone())),
                Owner::Here => None,
            })
            .collect();
        let mut conn = self.cluster.conn.clone();
        let mut out = Vec::new();
        for (peer, room, node) in placed {
            let current: Option<String> = conn.get(self.owner_key(&room)).await?;
            let mut misses = lock(&self.misses);
            match current {
                Some(n) if n == node => {
                    misses.remove(&peer);
                }
                Some(_) => out.push((peer, room)),
                None => {
                    let m = misses.entry(peer.clone()).or_default();
                    *m += 1;
                    if *m >= ORPHAN_AFTER {
                        misses.remove(&peer);
                        out.push((peer, room));
                    }
                }
            }
        }
        Ok(out)
    }
}
