//! The lobby of a meeting that requires approval: who waits to be let in, and which
//! users the host has let in (for the rest of the meeting, so that a reconnect does
//! not wait again); and with it which users the host made co-host (also for the rest
//! of the meeting: a co-host who reconnects is still one). Part of the live registry's contract, with the same two
//! implementations: [`LocalLobby`] in this process, and Redis (`super::redis`) across
//! nodes, so that a host on one node decides about a guest waiting on another.
//!
//! Each operation is one atomic step: when two co-deciders (or "admit all" and a
//! single "deny") race, every waiting entry is taken by exactly one decision.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use proto::events::Waiting;
use proto::{PeerId, RoomId, UserId};
use serde::{Deserialize, Serialize};

use super::{LiveError, LiveRooms};

/// One connection waiting in a lobby. Serialized as camelCase JSON in Redis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LobbyEntry {
    /// The ticket: the Socket.IO channel `peer:<ticket>` reaches the waiting socket.
    pub peer_id: PeerId,
    pub user_id: UserId,
    pub user_name: String,
    pub user_picture: Option<String>,
    pub asked_at: DateTime<Utc>,
}

impl LobbyEntry {
    pub fn to_waiting(&self) -> Waiting {
        Waiting {
            peer_id: self.peer_id.clone(),
            user_id: self.user_id.clone(),
            user_name: self.user_name.clone(),
            user_picture: self.user_picture.clone(),
            asked_at: self
                .asked_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

/// Which waiting connections a host's decision is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    One(PeerId),
    All,
}

/// The in-process lobbies (no Redis).
#[derive(Debug, Default)]
pub struct LocalLobby {
    rooms: Mutex<HashMap<RoomId, Lobby>>,
}

#[derive(Debug, Default)]
struct Lobby {
    waiting: Vec<LobbyEntry>,
    approved: HashSet<UserId>,
    co_hosts: HashSet<UserId>,
}

impl LocalLobby {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<RoomId, Lobby>) -> R) -> R {
        // As in `LocalRooms::with`: every mutation is one step, so a poisoned map is
        // still consistent.
        let mut guard = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    pub(super) fn wait(&self, room: &RoomId, entry: LobbyEntry) -> Vec<LobbyEntry> {
        self.with(|rooms| {
            let lobby = rooms.entry(room.clone()).or_default();
            // A user waits once: a second tab (or a reconnect) takes the earlier place.
            lobby.waiting.retain(|w| w.user_id != entry.user_id);
            lobby.waiting.push(entry);
            lobby.waiting.clone()
        })
    }

    pub(super) fn waiting(&self, room: &RoomId) -> Vec<LobbyEntry> {
        self.with(|rooms| {
            rooms
                .get(room)
                .map(|l| l.waiting.clone())
                .unwrap_or_default()
        })
    }

    pub(super) fn decide(&self, room: &RoomId, pick: &Pick, admit: bool) -> Vec<LobbyEntry> {
        self.with(|rooms| {
            let Some(lobby) = rooms.get_mut(room) else {
                return Vec::new();
            };
            let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut lobby.waiting)
                .into_iter()
                .partition(|w| match pick {
                    Pick::All => true,
                    Pick::One(p) => &w.peer_id == p,
                });
            lobby.waiting = kept;
            if admit {
                lobby
                    .approved
                    .extend(taken.iter().map(|w| w.user_id.clone()));
            }
            taken
        })
    }

    pub(super) fn leave(&self, room: &RoomId, peer: &PeerId) -> bool {
        self.with(|rooms| {
            let Some(lobby) = rooms.get_mut(room) else {
                return false;
            };
            let before = lobby.waiting.len();
            lobby.waiting.retain(|w| &w.peer_id != peer);
            before != lobby.waiting.len()
        })
    }

    pub(super) fn is_approved(&self, room: &RoomId, user: &UserId) -> bool {
        self.with(|rooms| rooms.get(room).is_some_and(|l| l.approved.contains(user)))
    }

    pub(super) fn set_co_host(&self, room: &RoomId, user: &UserId, on: bool) {
        self.with(|rooms| {
            let lobby = rooms.entry(room.clone()).or_default();
            if on {
                lobby.co_hosts.insert(user.clone());
            } else {
                lobby.co_hosts.remove(user);
            }
        });
    }

    pub(super) fn is_co_host(&self, room: &RoomId, user: &UserId) -> bool {
        self.with(|rooms| rooms.get(room).is_some_and(|l| l.co_hosts.contains(user)))
    }

    pub(super) fn clear(&self, room: &RoomId) -> Vec<LobbyEntry> {
        self.with(|rooms| rooms.remove(room).map(|l| l.waiting).unwrap_or_default())
    }
}

impl LiveRooms {
    /// Put `entry` in `room`'s lobby (replacing the same user's earlier place); returns
    /// everyone waiting now, in arrival order.
    pub async fn wait(
        &self,
        room: &RoomId,
        entry: LobbyEntry,
    ) -> Result<Vec<LobbyEntry>, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.lobby.wait(room, entry)),
            LiveRooms::Redis(r) => r.lobby_wait(room, entry).await,
        }
    }

    /// Everyone waiting in `room`'s lobby, in arrival order.
    pub async fn waiting(&self, room: &RoomId) -> Result<Vec<LobbyEntry>, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.lobby.waiting(room)),
            LiveRooms::Redis(r) => r.lobby_waiting(room).await,
        }
    }

    /// Take the picked entries out of the lobby; with `admit`, their users are let in
    /// for the rest of the meeting. Returns what was taken (empty if somebody else
    /// decided first).
    pub async fn decide(
        &self,
        room: &RoomId,
        pick: &Pick,
        admit: bool,
    ) -> Result<Vec<LobbyEntry>, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.lobby.decide(room, pick, admit)),
            LiveRooms::Redis(r) => r.lobby_decide(room, pick, admit).await,
        }
    }

    /// A waiting connection went away; whether it was still waiting.
    pub async fn leave_lobby(&self, room: &RoomId, peer: &PeerId) -> Result<bool, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.lobby.leave(room, peer)),
            LiveRooms::Redis(r) => r.lobby_leave(room, peer).await,
        }
    }

    /// Remember (or forget) that the host made `user` co-host of `room`, for its later
    /// connections; the present ones are changed with [`LiveRooms::update`].
    pub async fn set_co_host(
        &self,
        room: &RoomId,
        user: &UserId,
        on: bool,
    ) -> Result<(), LiveError> {
        match self {
            LiveRooms::Local(l) => {
                l.lobby.set_co_host(room, user, on);
                Ok(())
            }
            LiveRooms::Redis(r) => r.co_host_set(room, user, on).await,
        }
    }

    /// Whether the host made `user` co-host of `room`.
    pub async fn is_co_host(&self, room: &RoomId, user: &UserId) -> Result<bool, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.lobby.is_co_host(room, user)),
            LiveRooms::Redis(r) => r.co_host_is(room, user).await,
        }
    }

    /// Whether the host let `user` into `room`.
    pub async fn is_approved(&self, room: &RoomId, user: &UserId) -> Result<bool, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.lobby.is_approved(room, user)),
            LiveRooms::Redis(r) => r.lobby_is_approved(room, user).await,
        }
    }
}
