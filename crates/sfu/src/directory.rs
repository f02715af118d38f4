//! Which worker holds which room and participant: the invariant "a room lives on one
//! worker" in one type. The handle ([`crate::Sfu`]) places joins and looks workers up;
//! each worker reports what its engine did. Only the named operations below change it.
//!
//! Lock order: rooms, then participants.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::api::{ParticipantId, RoomId};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which worker holds which room and participant. Shared by the handle and workers.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    rooms: Mutex<HashMap<RoomId, Placement>>,
    participants: Mutex<HashMap<ParticipantId, usize>>,
}

#[derive(Debug)]
struct Placement {
    worker: usize,
    /// Joins sent to the worker and not yet handled by it. A room that empties is
    /// forgotten only when none is in flight; otherwise the next join would open the
    /// room on another worker while a queued join reopens it on this one.
    pending_joins: usize,
}

/// A join placed on a worker and counted as pending there. Holds the rooms lock until
/// dropped, so that the join command is queued before any other placement decision
/// about its room.
pub(crate) struct PlacedJoin<'a> {
    rooms: MutexGuard<'a, HashMap<RoomId, Placement>>,
    directory: &'a Directory,
    room: RoomId,
    participant: ParticipantId,
    worker: usize,
}

/// `join` with a participant that is already placed.
#[derive(Debug)]
pub(crate) struct AlreadyPlaced;

impl Directory {
    /// Place a join of `participant` into `room`: on the room's worker, or, for a room
    /// not placed yet, on `pick(rooms placed per worker)`. Counts the join as pending
    /// until the worker reports it with [`Directory::join_handled`].
    pub(crate) fn place_join(
        &self,
        room: &RoomId,
        participant: &ParticipantId,
        workers: usize,
        pick: impl FnOnce(&[usize]) -> usize,
    ) -> Result<PlacedJoin<'_>, AlreadyPlaced> {
        let mut rooms = lock(&self.rooms);
        let mut parts = lock(&self.participants);
        if parts.contains_key(participant) {
            return Err(AlreadyPlaced);
        }
        let worker = match rooms.get_mut(room) {
            Some(p) => {
                p.pending_joins += 1;
                p.worker
            }
            None => {
                let mut placed = vec![0usize; workers];
                for p in rooms.values() {
                    if let Some(n) = placed.get_mut(p.worker) {
                        *n += 1;
                    }
                }
                let worker = pick(&placed);
                rooms.insert(
                    room.clone(),
                    Placement {
                        worker,
                        pending_joins: 1,
                    },
                );
                worker
            }
        };
        parts.insert(participant.clone(), worker);
        drop(parts);
        Ok(PlacedJoin {
            rooms,
            directory: self,
            room: room.clone(),
            participant: participant.clone(),
            worker,
        })
    }

    /// A worker handled a join (placed with [`Directory::place_join`]). When it failed,
    /// the room is forgotten if the engine does not hold it and no other join is on
    /// its way, and the participant if the engine does not hold it.
    pub(crate) fn join_handled(
        &self,
        worker: usize,
        room: &RoomId,
        participant: &ParticipantId,
        failed: bool,
        engine_has_room: bool,
        engine_has_participant: bool,
    ) {
        {
            let mut rooms = lock(&self.rooms);
            if let Some(p) = rooms.get_mut(room) {
                p.pending_joins = p.pending_joins.saturating_sub(1);
                if failed && p.pending_joins == 0 && !engine_has_room {
                    rooms.remove(room);
                }
            }
        }
        if failed && !engine_has_participant {
            self.participant_removed(worker, participant);
        }
    }

    /// `worker`'s engine closed `room` (its last participant left). Forgotten unless a
    /// join is on its way or the room was placed elsewhere since.
    pub(crate) fn room_closed(&self, worker: usize, room: &RoomId) {
        let mut rooms = lock(&self.rooms);
        if rooms
            .get(room)
            .is_some_and(|p| p.worker == worker && p.pending_joins == 0)
        {
            rooms.remove(room);
        }
    }

    /// `worker`'s engine no longer holds `participant`.
    pub(crate) fn participant_removed(&self, worker: usize, participant: &ParticipantId) {
        let mut parts = lock(&self.participants);
        if parts.get(participant) == Some(&worker) {
            parts.remove(participant);
        }
    }

    pub(crate) fn worker_of_participant(&self, participant: &ParticipantId) -> Option<usize> {
        lock(&self.participants).get(participant).copied()
    }

    pub(crate) fn worker_of_room(&self, room: &RoomId) -> Option<usize> {
        lock(&self.rooms).get(room).map(|p| p.worker)
    }
}

impl PlacedJoin<'_> {
    pub(crate) fn worker(&self) -> usize {
        self.worker
    }

    /// The worker is gone: forget the room and the participant, so that the next join
    /// of this room is placed on a live worker.
    pub(crate) fn worker_gone(mut self) {
        self.rooms.remove(&self.room);
        lock(&self.directory.participants).remove(&self.participant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(room: &str, who: &str) -> (RoomId, ParticipantId) {
        (RoomId::from(room), ParticipantId::from(who))
    }

    #[test]
    fn a_room_stays_on_its_worker_while_a_join_is_pending() {
        let d = Directory::default();
        let (room, a) = ids("r", "a");
        let placed = d.place_join(&room, &a, 2, |_| 1).expect("placed");
        assert_eq!(placed.worker(), 1);
        drop(placed);
        // A second join goes to the room's worker, whatever `pick` says.
        let b = ParticipantId::from("b");
        assert_eq!(
            d.place_join(&room, &b, 2, |_| 0).expect("placed").worker(),
            1
        );
        assert!(d.place_join(&room, &a, 2, |_| 0).is_err(), "a is placed");
        d.join_handled(1, &room, &a, false, true, true);
        // The room empties while b's join is queued: it stays placed.
        d.participant_removed(1, &a);
        d.room_closed(1, &room);
        assert_eq!(d.worker_of_room(&room), Some(1));
        d.join_handled(1, &room, &b, true, false, false);
        assert_eq!(
            d.worker_of_room(&room),
            None,
            "failed last join forgets the room"
        );
        assert_eq!(d.worker_of_participant(&b), None);
        assert_eq!(d.worker_of_participant(&a), None);
    }

    #[test]
    fn new_rooms_see_the_rooms_placed_per_worker_and_a_gone_worker_is_undone() {
        let d = Directory::default();
        let (r1, a) = ids("r1", "a");
        drop(d.place_join(&r1, &a, 3, |_| 2).expect("placed"));
        let (r2, b) = ids("r2", "b");
        let mut seen = Vec::new();
        let placed = d
            .place_join(&r2, &b, 3, |placed| {
                seen = placed.to_vec();
                0
            })
            .expect("placed");
        assert_eq!(seen, vec![0, 0, 1]);
        placed.worker_gone();
        assert_eq!(d.worker_of_room(&r2), None);
        assert_eq!(d.worker_of_participant(&b), None);
        assert_eq!(d.worker_of_room(&r1), Some(2));
    }
}
