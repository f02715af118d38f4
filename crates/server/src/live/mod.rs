//! Who is in which meeting right now, with their media state.
//!
//! This is live state, not history (history is in the store): it must be right at the
//! moment of a join, because the participant cap is checked against it. Every method is
//! one atomic step, so that two joins racing for the last seat cannot both win.
//!
//! [`LiveRooms`] is that contract, with two implementations:
//! - [`local`]: [`LocalRooms`], a mutex-guarded map in this process, used when there is
//!   no Redis;
//! - [`redis`]: [`RedisLive`], the same contract with Lua scripts on the cluster's Redis
//!   connection, so that several nodes share one registry.
//!
//! The lobby of a meeting that requires approval ([`lobby`]) and whom the host made
//! co-host, and a meeting's chat history and raised hands ([`activity`]), are part of
//! the same contract, in both implementations.
//!
//! This module depends on `cluster` only for the Redis connection; membership picks the
//! implementation when it is assembled (`membership::Membership::new`).

pub mod activity;
pub mod lobby;
pub mod local;
pub mod redis;
mod redis_activity;
mod redis_lobby;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use proto::signaling::Participant;
use proto::{PeerId, Role, RoomId, UserId};
use serde::{Deserialize, Serialize};

pub use self::lobby::{LobbyEntry, Pick};
pub use self::local::LocalRooms;
pub use self::redis::RedisLive;

/// One connection of one user in one meeting. Serialized as camelCase JSON in Redis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LivePeer {
    pub peer_id: PeerId,
    pub user_id: UserId,
    pub user_name: String,
    pub user_picture: Option<String>,
    pub is_host: bool,
    /// Promoted by the host (or so granted by its token).
    #[serde(default)]
    pub co_host: bool,
    /// Its token grants no publishing at all (shown as a viewer).
    #[serde(default)]
    pub viewer: bool,
    pub audio_enabled: bool,
    pub video_enabled: bool,
    pub screen_sharing: bool,
    pub joined_at: DateTime<Utc>,
}

impl LivePeer {
    /// The role in the meeting: the host, a co-host, or as its token's grants say.
    pub fn role(&self) -> Role {
        if self.is_host {
            Role::Host
        } else if self.co_host {
            Role::CoHost
        } else if self.viewer {
            Role::Viewer
        } else {
            Role::Participant
        }
    }

    pub fn to_participant(&self) -> Participant {
        Participant {
            user_id: self.user_id.clone(),
            peer_id: self.peer_id.clone(),
            user_name: self.user_name.clone(),
            user_picture: self.user_picture.clone(),
            is_host: self.is_host,
            role: self.role(),
            audio_enabled: self.audio_enabled,
            video_enabled: self.video_enabled,
            screen_sharing: self.screen_sharing,
            joined_at: self
                .joined_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

/// The outcome of a successful [`LiveRooms::admit`].
#[derive(Debug, Default)]
pub struct Admitted {
    /// Earlier connections of the same user, removed to make room for this one.
    pub replaced: Vec<LivePeer>,
    /// How many are in the room now, the new one included (never more than the limit).
    pub present: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LiveError {
    #[error("the meeting is full ({limit} participants)")]
    Full { limit: usize },
    /// The shared registry (Redis) cannot be reached.
    #[error("the live registry is unavailable: {0}")]
    Unavailable(String),
}

/// A change of one participant's media state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveChange {
    Audio(bool),
    Video(bool),
    Screen(bool),
    CoHost(bool),
}

impl LiveChange {
    /// The JSON field and its new value.
    pub fn field(self) -> (&'static str, bool) {
        match self {
            LiveChange::Audio(on) => ("audioEnabled", on),
            LiveChange::Video(on) => ("videoEnabled", on),
            LiveChange::Screen(on) => ("screenSharing", on),
            LiveChange::CoHost(on) => ("coHost", on),
        }
    }

    fn apply(self, p: &mut LivePeer) {
        match self {
            LiveChange::Audio(on) => p.audio_enabled = on,
            LiveChange::Video(on) => p.video_enabled = on,
            LiveChange::Screen(on) => p.screen_sharing = on,
            LiveChange::CoHost(on) => p.co_host = on,
        }
    }
}

/// The live registry: in this process, or shared through Redis.
#[derive(Debug, Clone)]
pub enum LiveRooms {
    Local(Arc<LocalRooms>),
    Redis(Arc<RedisLive>),
}

impl LiveRooms {
    pub fn local() -> Self {
        LiveRooms::Local(Arc::default())
    }

    pub async fn admit(
        &self,
        room: &RoomId,
        peer: LivePeer,
        limit: usize,
    ) -> Result<Admitted, LiveError> {
        match self {
            LiveRooms::Local(l) => l.admit(room, peer, limit),
            LiveRooms::Redis(r) => r.admit(room, peer, limit).await,
        }
    }

    /// Remove one connection; returns it and how many remain in the room.
    pub async fn remove(
        &self,
        room: &RoomId,
        peer: &PeerId,
    ) -> Result<Option<(LivePeer, usize)>, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.remove(room, peer)),
            LiveRooms::Redis(r) => r.remove(room, peer).await,
        }
    }

    /// Remove everybody (the meeting ended), the lobby included; see [`LiveRooms::clear_lobby`].
    pub async fn clear(&self, room: &RoomId) -> Result<Vec<LivePeer>, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.clear(room)),
            LiveRooms::Redis(r) => r.clear(room).await,
        }
    }

    /// Empty the lobby and forget whom the host let in (the meeting ended); returns who
    /// was waiting.
    pub async fn clear_lobby(&self, room: &RoomId) -> Result<Vec<LobbyEntry>, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.lobby.clear(room)),
            LiveRooms::Redis(r) => r.lobby_clear(room).await,
        }
    }

    /// This node now carries `peer`'s connection (it resumed here): in a cluster, this
    /// node keeps its registry entry alive from now on.
    pub fn adopt(&self, room: &RoomId, peer: LivePeer) {
        if let LiveRooms::Redis(r) = self {
            r.adopt(room, peer);
        }
    }

    /// This node no longer carries `peer`'s connection (it resumed on another node):
    /// stop keeping its entry alive, without removing it.
    pub fn release(&self, room: &RoomId, peer: &PeerId) {
        if let LiveRooms::Redis(r) = self {
            r.release(room, peer);
        }
    }

    /// Everyone in the room, in join order.
    pub async fn peers(&self, room: &RoomId) -> Result<Vec<LivePeer>, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.peers(room)),
            LiveRooms::Redis(r) => r.peers(room).await,
        }
    }

    /// Connections admitted through this process and not yet removed (in a cluster,
    /// this node's share). Never touches Redis, so `GET /health/process` stays cheap.
    pub fn local_count(&self) -> usize {
        match self {
            LiveRooms::Local(l) => l.count(),
            LiveRooms::Redis(r) => r.local_count(),
        }
    }

    /// Without Redis, every connection of the registry (this process carries them
    /// all): what a draining node still has when its time is up. With Redis, none: the
    /// drain takes its own sockets' connections out, and the connections kept for
    /// resuming leave as their grace period's task stops (`signaling::resume`).
    pub fn local_connections(&self) -> Vec<(RoomId, PeerId)> {
        match self {
            LiveRooms::Local(l) => l.connections(),
            LiveRooms::Redis(_) => Vec::new(),
        }
    }

    pub async fn get(&self, room: &RoomId, peer: &PeerId) -> Result<Option<LivePeer>, LiveError> {
        Ok(self
            .peers(room)
            .await?
            .into_iter()
            .find(|p| &p.peer_id == peer))
    }

    /// Change one connection's media state; the new state, or `None` if it is gone.
    pub async fn update(
        &self,
        room: &RoomId,
        peer: &PeerId,
        change: LiveChange,
    ) -> Result<Option<LivePeer>, LiveError> {
        match self {
            LiveRooms::Local(l) => Ok(l.update(room, peer, |p| change.apply(p))),
            LiveRooms::Redis(r) => r.update(room, peer, change).await,
        }
    }

    /// The connections of `user` in `room` (one after a join; a remote node may briefly
    /// disagree).
    pub async fn find_user(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Vec<LivePeer>, LiveError> {
        Ok(self
            .peers(room)
            .await?
            .into_iter()
            .filter(|p| &p.user_id == user)
            .collect())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A participant of `user` with a fresh peer id (also for other modules' tests).
    pub(crate) fn peer(user: &str) -> LivePeer {
        LivePeer {
            peer_id: PeerId::random(),
            user_id: UserId::from(user),
            user_name: user.to_owned(),
            user_picture: None,
            is_host: false,
            co_host: false,
            viewer: false,
            audio_enabled: true,
            video_enabled: true,
            screen_sharing: false,
            joined_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn cap_holds_and_same_user_replaces() {
        let live = LiveRooms::local();
        let room = RoomId::from("R");
        live.admit(&room, peer("a"), 2).await.expect("a");
        live.admit(&room, peer("b"), 2).await.expect("b");
        assert_eq!(
            live.admit(&room, peer("c"), 2).await.expect_err("full"),
            LiveError::Full { limit: 2 }
        );
        // b again: replaces b, room stays at two.
        let again = live.admit(&room, peer("b"), 2).await.expect("b again");
        assert_eq!(again.replaced.len(), 1);
        assert_eq!(live.peers(&room).await.expect("peers").len(), 2);
    }

    #[tokio::test]
    async fn concurrent_admissions_never_exceed_the_limit() {
        let live = LiveRooms::local();
        let room = RoomId::from("R");
        let mut tasks = Vec::new();
        for i in 0..200 {
            let (live, room) = (live.clone(), room.clone());
            tasks.push(tokio::spawn(async move {
                live.admit(&room, peer(&format!("u{i}")), 50).await.is_ok()
            }));
        }
        let mut admitted = 0;
        for t in tasks {
            if t.await.expect("task") {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 50);
        assert_eq!(live.peers(&room).await.expect("peers").len(), 50);
    }

    #[tokio::test]
    async fn removing_the_last_peer_forgets_the_room() {
        let live = LiveRooms::local();
        let room = RoomId::from("R");
        let p = peer("a");
        live.admit(&room, p.clone(), 5).await.expect("a");
        assert_eq!(
            live.remove(&room, &p.peer_id)
                .await
                .expect("remove")
                .map(|(_, n)| n),
            Some(0)
        );
        assert!(
            live.remove(&room, &p.peer_id)
                .await
                .expect("remove")
                .is_none()
        );
        assert!(live.peers(&room).await.expect("peers").is_empty());
    }
}
