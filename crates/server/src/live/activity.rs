//! What a meeting keeps besides who is in it: its chat, for those who join late, and its
//! raised hands, in the order they went up. Both last as long as the meeting (its end
//! clears them; in Redis they also expire with the room's other keys) and are part of
//! the live registry's contract, in both implementations: here in this process
//! ([`LocalActivity`]), and in Redis ([`super::redis_activity`]) so that every node
//! sees the same history and the same order.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use proto::events::{ChatMessage, RaisedHand};
use proto::{PeerId, RoomId};

use super::{LiveError, LiveRooms};

/// The chat history keeps at most this many messages of a meeting (the newest)…
pub const CHAT_HISTORY_MESSAGES: usize = 200;
/// …and at most this many bytes of them (their JSON), so that a meeting's chat cannot
/// grow the registry without bound whatever its length.
pub const CHAT_HISTORY_BYTES: usize = 128 * 1024;

/// The size a message counts for against [`CHAT_HISTORY_BYTES`]: its JSON, as Redis
/// stores it.
pub(super) fn encode(msg: &ChatMessage) -> Result<String, LiveError> {
    serde_json::to_string(msg).map_err(|e| LiveError::Unavailable(e.to_string()))
}

/// The in-process store (no Redis).
#[derive(Debug, Default)]
pub struct LocalActivity {
    rooms: Mutex<HashMap<RoomId, Activity>>,
}

#[derive(Debug, Default)]
struct Activity {
    /// Oldest first, each with its size.
    chat: VecDeque<(ChatMessage, usize)>,
    chat_bytes: usize,
    /// First raised first.
    hands: Vec<RaisedHand>,
}

impl LocalActivity {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<RoomId, Activity>) -> R) -> R {
        // Every mutation below leaves the map consistent, so a poisoned lock is usable.
        let mut guard = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    fn remember(&self, room: &RoomId, msg: ChatMessage, size: usize) {
        self.with(|rooms| {
            let a = rooms.entry(room.clone()).or_default();
            a.chat.push_back((msg, size));
            a.chat_bytes += size;
            while a.chat.len() > CHAT_HISTORY_MESSAGES || a.chat_bytes > CHAT_HISTORY_BYTES {
                let Some((_, n)) = a.chat.pop_front() else {
                    break;
                };
                a.chat_bytes -= n;
            }
        })
    }

    fn history(&self, room: &RoomId) -> Vec<ChatMessage> {
        self.with(|rooms| {
            rooms
                .get(room)
                .map(|a| a.chat.iter().map(|(m, _)| m.clone()).collect())
                .unwrap_or_default()
        })
    }

    fn raise(&self, room: &RoomId, hand: RaisedHand) -> Vec<RaisedHand> {
        self.with(|rooms| {
            let a = rooms.entry(room.clone()).or_default();
            // Raising a raised hand keeps its place in the queue.
            if !a.hands.iter().any(|h| h.peer_id == hand.peer_id) {
                a.hands.push(hand);
            }
            a.hands.clone()
        })
    }

    fn lower(&self, room: &RoomId, peer: &PeerId) -> Option<Vec<RaisedHand>> {
        self.with(|rooms| {
            let a = rooms.get_mut(room)?;
            let before = a.hands.len();
            a.hands.retain(|h| &h.peer_id != peer);
            (a.hands.len() != before).then(|| a.hands.clone())
        })
    }

    fn hands(&self, room: &RoomId) -> Vec<RaisedHand> {
        self.with(|rooms| rooms.get(room).map(|a| a.hands.clone()).unwrap_or_default())
    }

    fn clear(&self, room: &RoomId) {
        self.with(|rooms| rooms.remove(room));
    }
}

impl LiveRooms {
    /// Keep `msg` in `room`'s chat history, dropping the oldest beyond the bounds.
    pub async fn remember_chat(&self, room: &RoomId, msg: &ChatMessage) -> Result<(), LiveError> {
        let json = encode(msg)?;
        match self {
            LiveRooms::Local(l) => {
                l.activity.remember(room, msg.clone(), json.len());
                Ok(())
            }
            LiveRooms::Redis(r) => r.remember_chat(room, json).await,
        }
    }

    /// `room`'s kept chat, oldest first.
    pub async fn chat_history(&self, room: &RoomId) -> Result<Vec<ChatMessage>, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.activity.history(room)),
            LiveRooms::Redis(r) => r.chat_history(room).await,
        }
    }

    /// Raise a hand (a raised one keeps its place); returns every raised hand in order.
    pub async fn raise_hand(
        &self,
        room: &RoomId,
        hand: RaisedHand,
    ) -> Result<Vec<RaisedHand>, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.activity.raise(room, hand)),
            LiveRooms::Redis(r) => r.raise_hand(room, hand).await,
        }
    }

    /// Lower `peer`'s hand: the hands still raised, or `None` if it was not raised.
    pub async fn lower_hand(
        &self,
        room: &RoomId,
        peer: &PeerId,
    ) -> Result<Option<Vec<RaisedHand>>, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.activity.lower(room, peer)),
            LiveRooms::Redis(r) => r.lower_hand(room, peer).await,
        }
    }

    /// Every raised hand of `room`, first raised first.
    pub async fn hands(&self, room: &RoomId) -> Result<Vec<RaisedHand>, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.activity.hands(room)),
            LiveRooms::Redis(r) => r.hands(room).await,
        }
    }

    /// Forget `room`'s chat and hands (the meeting ended).
    pub async fn clear_activity(&self, room: &RoomId) -> Result<(), LiveError> {
        match self {
            LiveRooms::Local(l) => {
                l.activity.clear(room);
                Ok(())
            }
            LiveRooms::Redis(r) => r.clear_activity(room).await,
        }
    }
}
