//! [`Monitor`]: who is connected through this node, for the live gauges, and the joins
//! still waiting for their media, for the join-duration histogram. Changed by membership
//! (admission, departure, the end of a meeting) and by the engine's events.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proto::{PeerId, RoomId};

use super::names;

/// A join that never connects its media (mesh, or a client that gave up) is forgotten
/// after this long, so that the table stays bounded.
const PENDING_JOIN_LIMIT: Duration = Duration::from_secs(120);

/// The live gauges' state and the pending joins. Shared through `AppState`.
#[derive(Debug, Default)]
pub struct Monitor {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Connection → its meeting and that meeting's topology label.
    peers: HashMap<PeerId, (RoomId, &'static str)>,
    /// Meeting → connections of this node in it.
    rooms: HashMap<RoomId, usize>,
    by_topology: HashMap<&'static str, usize>,
    /// Connection → when its `join-meeting` arrived.
    joining: HashMap<PeerId, Instant>,
}

impl Monitor {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection was admitted to `room` (topology `"sfu"` or `"mesh"`).
    pub fn admitted(&self, room: &RoomId, peer: &PeerId, topology: &'static str) {
        let mut i = self.inner();
        if i.peers
            .insert(peer.clone(), (room.clone(), topology))
            .is_some()
        {
            return;
        }
        *i.rooms.entry(room.clone()).or_default() += 1;
        *i.by_topology.entry(topology).or_default() += 1;
        i.publish(topology);
    }

    /// A connection is out of its meeting (whatever the reason, and whether or not this
    /// call was the one that took it out of the registry).
    pub fn departed(&self, peer: &PeerId) {
        let mut i = self.inner();
        i.joining.remove(peer);
        let Some((room, topology)) = i.peers.remove(peer) else {
            return;
        };
        i.drop_one(&room, topology);
        i.publish(topology);
    }

    /// The meeting ended: every connection of this node in it is out.
    pub fn meeting_cleared(&self, room: &RoomId) {
        let mut i = self.inner();
        let gone: Vec<PeerId> = i
            .peers
            .iter()
            .filter(|(_, (r, _))| r == room)
            .map(|(p, _)| p.clone())
            .collect();
        for p in gone {
            i.joining.remove(&p);
            if let Some((room, topology)) = i.peers.remove(&p) {
                i.drop_one(&room, topology);
                i.publish(topology);
            }
        }
    }

    /// A `join-meeting` that arrived at `arrived` was answered: admitted as `peer` in a
    /// meeting of `topology`, or refused with an error code. Counted by result; an SFU
    /// join's duration is observed when its media connects.
    pub fn join_finished(&self, arrived: Instant, outcome: Result<(&PeerId, &str), &'static str>) {
        let result = match outcome {
            Ok((peer, topology)) => {
                if topology == "sfu" {
                    self.join_started(peer, arrived);
                }
                "ok"
            }
            Err(code) => code,
        };
        metrics::counter!(names::JOINS, "result" => result).increment(1);
    }

    /// `join-meeting` of `peer` arrived at `at` and was admitted; its duration is
    /// observed when its media connects ([`Monitor::media_connected`]).
    fn join_started(&self, peer: &PeerId, at: Instant) {
        let mut i = self.inner();
        let now = Instant::now();
        i.joining
            .retain(|_, t| now.duration_since(*t) < PENDING_JOIN_LIMIT);
        i.joining.insert(peer.clone(), at);
    }

    /// The engine connected `peer`'s media: one observation of the join duration, the
    /// first time only (a reconnection is not a join).
    pub fn media_connected(&self, peer: &PeerId) {
        let started = self.inner().joining.remove(peer);
        if let Some(t) = started {
            metrics::histogram!(names::JOIN_DURATION).record(t.elapsed().as_secs_f64());
        }
    }

    /// Connections of this node, for tests.
    pub fn connections(&self) -> usize {
        self.inner().peers.len()
    }
}

impl Inner {
    fn drop_one(&mut self, room: &RoomId, topology: &'static str) {
        if let Some(n) = self.rooms.get_mut(room) {
            *n -= 1;
            if *n == 0 {
                self.rooms.remove(room);
            }
        }
        if let Some(n) = self.by_topology.get_mut(topology) {
            *n = n.saturating_sub(1);
        }
    }

    fn publish(&self, topology: &'static str) {
        metrics::gauge!(names::MEETINGS_LIVE).set(self.rooms.len() as f64);
        let n = self.by_topology.get(topology).copied().unwrap_or(0);
        metrics::gauge!(names::PARTICIPANTS_LIVE, "topology" => topology).set(n as f64);
    }
}
