//! Socket.IO signaling on the HTTP port: who joins which meeting, SDP exchange with the
//! SFU (or relay between browsers in mesh mode), media toggles, chat and host controls.
//!
//! - [`crate::live`]: who is in which meeting right now (the participant cap is checked
//!   there, atomically); its implementation is chosen in [`Signaling::new`].
//! - [`session`]: what one socket is: its user, and the meeting it joined.
//! - [`handlers`]: one function per client event; each answers with an [`proto::Ack`].
//! - [`media`]: client payloads to [`crate::media::MediaRouter`] calls, and the engine's
//!   events turned into Socket.IO messages.
//! - [`records`]: what signaling writes to the meeting store (joins, leaves, ends).
//! - [`throttle`]: the per-socket and per-user event limits every handler is wrapped in.
//!
//! Socket.IO rooms carry the addressing, so that the Redis adapter can deliver across
//! nodes: `room:<roomId>` holds every socket of a meeting, `peer:<peerId>` the one
//! socket of a connection.

pub mod error;
pub mod handlers;
pub mod media;
pub mod records;
pub mod session;
pub mod throttle;

use std::sync::Arc;

use proto::{PeerId, RoomId};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide_core::adapter::DefinedAdapter;

pub use crate::live::LiveRooms;
pub use error::SignalError;

use crate::live::RedisLive;
use crate::media::{ClusterMedia, EventReceiver, LocalMedia, MediaRouter};
use crate::state::AppState;

/// Largest Socket.IO message accepted: room for an SDP offer with many m-lines
/// (proto's `limits::SDP`) and its envelope. Larger frames close the connection.
pub const MAX_PAYLOAD: u64 = 256 * 1024;

/// Shared by every socket handler. Cheap to clone.
#[derive(Clone)]
pub struct Signaling {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub app: AppState,
    pub live: LiveRooms,
    /// Where each meeting's media requests go.
    pub media: MediaRouter,
}

impl std::fmt::Debug for Signaling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signaling").finish_non_exhaustive()
    }
}

impl Signaling {
    /// In-process registry without `app.cluster`; shared through Redis with it.
    pub fn new(app: AppState) -> Self {
        let local = LocalMedia::new(app.sfu.clone());
        let (live, media) = match &app.cluster {
            Some(cluster) => (
                LiveRooms::Redis(Arc::new(RedisLive::new(
                    cluster.clone(),
                    app.config.meeting_ttl,
                ))),
                MediaRouter::Cluster(ClusterMedia::new(cluster.clone(), local)),
            ),
            None => (LiveRooms::local(), MediaRouter::Local(local)),
        };
        Signaling {
            inner: Arc::new(Inner { app, live, media }),
        }
    }

    pub fn media(&self) -> &MediaRouter {
        &self.inner.media
    }

    pub fn live(&self) -> &LiveRooms {
        &self.inner.live
    }

    pub fn app(&self) -> &AppState {
        &self.inner.app
    }
}

/// Socket.IO room of every socket in a meeting.
pub fn room_channel(room: &RoomId) -> String {
    format!("room:{room}")
}

/// Socket.IO room of one connection.
pub fn peer_channel(peer: &PeerId) -> String {
    format!("peer:{peer}")
}

/// Register the namespace handlers on `io`, and start the tasks that turn the SFU's
/// events and the meeting lifecycle (REST end/delete, TTL) into messages.
pub fn attach<A: Adapter + DefinedAdapter>(
    io: &SocketIo<A>,
    signaling: Signaling,
    sfu_events: Option<EventReceiver>,
) -> A::InitRes {
    if let Some(events) = sfu_events {
        tokio::spawn(media::pump_events(io.clone(), signaling.clone(), events));
    }
    let shutdown = signaling.app().shutdown.clone();
    if let LiveRooms::Redis(redis) = signaling.live().clone() {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { redis.run_heartbeat(shutdown).await });
    }
    if let Some(cluster) = signaling.media().cluster().cloned() {
        tokio::spawn(cluster.run(shutdown.clone()));
        tokio::spawn(media::watch_placement(io.clone(), signaling.clone()));
    }
    tokio::spawn(records::follow_lifecycle(io.clone(), signaling));
    handlers::register(io)
}
