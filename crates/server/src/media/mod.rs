//! A meeting's media requests: one contract, two implementations.
//!
//! [`MediaRouter`] is what the signaling calls to drive a participant's media: its
//! publishing offer (the first one joins the engine), its answers to server offers,
//! mute and screen-share changes, leaving, and closing a meeting's room. Every method is
//! typed end to end (ids, SDP, [`meeting_sfu::MidSource`], [`meeting_sfu::SdpAnswer`])
//! and fails with a [`MediaError`].
//!
//! - [`local`]: [`LocalMedia`], this node's engine, awaited with a deadline. A single node
//!   (no `REDIS_URL`) uses nothing else: its requests never become a wire message.
//! - [`cluster`]: [`ClusterMedia`], for a node in a cluster: it runs the request where
//!   the meeting's media lives (`cluster::placement`): on its own [`LocalMedia`], or
//!   relayed over Redis pub/sub to the node that owns the room. The relay's request and
//!   reply types are private to it; [`MediaError`] is serialised only there.
//!
//! The engine's own events ([`meeting_sfu::SfuEvent`]) arrive on the [`EventReceiver`]
//! made by [`event_channel`], which the server hands to the signaling explicitly.

pub mod cluster;
pub mod local;

use std::sync::Arc;

use meeting_sfu::{MidSource, SdpAnswer, SfuError, SfuEvent, TrackSource};
use proto::{PeerId, RoomId};
use tokio::sync::mpsc;

use futures_util::FutureExt;
use futures_util::future::{self, BoxFuture};

pub use cluster::ClusterMedia;
use cluster::Toggle;
pub use local::LocalMedia;

use crate::cluster::placement::PlacementError;

/// The receiving end of the engine's events.
pub type EventReceiver = mpsc::UnboundedReceiver<SfuEvent>;

/// The sink the engine is started with, and the receiver its events are drained from.
pub fn event_channel() -> (meeting_sfu::EventSink, EventReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink: meeting_sfu::EventSink = Arc::new(move |event| {
        // The receiver is gone only during shutdown; nothing is left to tell then.
        let _ = tx.send(event);
    });
    (sink, rx)
}

/// Why the engine on one node did not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The node runs without its SFU (`SFU_MODE_ENABLED=false`, or it failed to start).
    #[error("this server runs without its SFU (SFU_MODE_ENABLED=false)")]
    NoEngine,
    /// The worker thread that owns the participant stopped.
    #[error("the media worker is not running")]
    WorkerGone,
    /// The worker did not answer within the deadline.
    #[error("the media worker did not answer in time")]
    Timeout,
    /// The engine refused the request (bad SDP, unknown participant, stale answer …).
    /// Never [`SfuError::WorkerGone`]: that one is [`EngineError::WorkerGone`].
    #[error("{0}")]
    Refused(SfuError),
}

impl From<SfuError> for EngineError {
    fn from(e: SfuError) -> Self {
        match e {
            SfuError::WorkerGone => EngineError::WorkerGone,
            refused => EngineError::Refused(refused),
        }
    }
}

/// Why a media request failed, wherever it ran.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The engine that hosts the meeting's media (here or on the owner node) said no.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Which node hosts the meeting could not be settled (Redis, or no node with an SFU).
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// Redis refused to carry a relayed request.
    #[error("Redis is unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    /// Nobody listens on the owner node's request channel any more.
    #[error("node {node} hosting this meeting's media is gone")]
    NodeGone { node: String },
    /// The owner node did not answer a relayed request in time.
    #[error("the node hosting this meeting's media did not answer in time")]
    RelayTimeout,
    /// The owner answered with a reply of the wrong kind (a node of another version).
    #[error("the node hosting this meeting's media answered {0}")]
    UnexpectedReply(&'static str),
}

/// Where a meeting's media requests go. Cheap to clone.
#[derive(Clone, Debug)]
pub enum MediaRouter {
    /// A single node: this node's engine.
    Local(LocalMedia),
    /// A node in a cluster: the engine of the node that owns the meeting's room.
    Cluster(Arc<ClusterMedia>),
}

impl MediaRouter {
    /// Whether media requests can go anywhere at all: false on a single node without
    /// an SFU (mesh meetings only), where fire-and-forget requests are skipped.
    pub fn has_media(&self) -> bool {
        match self {
            MediaRouter::Local(local) => local.is_running(),
            MediaRouter::Cluster(_) => true,
        }
    }

    /// The client's publishing offer. `in_engine` says whether an earlier offer of this
    /// connection was answered here: then it renegotiates, else it joins the room.
    pub async fn offer(
        &self,
        room: &RoomId,
        peer: &PeerId,
        in_engine: bool,
        sdp: String,
        sources: Vec<MidSource>,
    ) -> Result<SdpAnswer, MediaError> {
        match self {
            MediaRouter::Local(local) if in_engine => Ok(local.offer(peer, sdp, sources).await?),
            MediaRouter::Local(local) => Ok(local.join(room, peer, sdp, sources).await?),
            MediaRouter::Cluster(c) => c.offer(room, peer, sdp, sources).await,
        }
    }

    /// The client's answer to the server offer `offer_id`.
    pub async fn answer(
        &self,
        peer: &PeerId,
        offer_id: u64,
        sdp: String,
    ) -> Result<(), MediaError> {
        match self {
            MediaRouter::Local(local) => Ok(local.answer(peer, offer_id, sdp).await?),
            MediaRouter::Cluster(c) => c.answer(peer, offer_id, sdp).await,
        }
    }

    // The requests below are fire-and-forget for the signaling. Each takes effect when
    // called (the engine command is sent, the placement is updated), so that they reach
    // the engine in the order they were made; the returned future only reports how the
    // request ended (for a relayed one, when the owner answered).

    /// Stop or resume forwarding one of `peer`'s tracks.
    pub fn set_muted(
        &self,
        peer: &PeerId,
        source: TrackSource,
        muted: bool,
    ) -> BoxFuture<'static, Result<(), MediaError>> {
        match self {
            MediaRouter::Local(local) => done(local.set_muted(peer, source, muted)),
            MediaRouter::Cluster(c) => {
                c.set_publishing_or_muted(peer, source, Toggle::Muted(muted))
            }
        }
    }

    /// Start or stop offering `peer`'s screen share to the others.
    pub fn set_screen_share(
        &self,
        peer: &PeerId,
        on: bool,
    ) -> BoxFuture<'static, Result<(), MediaError>> {
        let source = TrackSource::ScreenShare;
        match self {
            MediaRouter::Local(local) => done(local.set_publishing(peer, source, on)),
            MediaRouter::Cluster(c) => {
                c.set_publishing_or_muted(peer, source, Toggle::Publishing(on))
            }
        }
    }

    /// What `peer` wants to receive of simulcast cameras, where its media is.
    pub fn set_receive_quality(
        &self,
        peer: &PeerId,
        quality: meeting_sfu::ReceiveQuality,
    ) -> BoxFuture<'static, Result<(), MediaError>> {
        match self {
            MediaRouter::Local(local) => done(local.set_receive_quality(peer, quality)),
            MediaRouter::Cluster(c) => c.set_receive_quality(peer, quality),
        }
    }

    /// The remote videos `peer` shows and their sizes, where its media is.
    pub fn set_tile_views(
        &self,
        peer: &PeerId,
        views: Vec<meeting_sfu::TileView>,
    ) -> BoxFuture<'static, Result<(), MediaError>> {
        match self {
            MediaRouter::Local(local) => done(local.set_tile_views(peer, views)),
            MediaRouter::Cluster(c) => c.set_tile_views(peer, views),
        }
    }

    /// Remove `peer` from the engine (nothing to do if its media never started).
    pub fn leave(&self, peer: &PeerId) -> BoxFuture<'static, Result<(), MediaError>> {
        match self {
            MediaRouter::Local(local) => done(local.leave(peer)),
            MediaRouter::Cluster(c) => c.leave(peer),
        }
    }

    /// Close the meeting's room in this node's engine. Only the owner has the room;
    /// elsewhere its participants' leaves already went out.
    pub fn close_room(&self, room: &RoomId) -> Result<(), MediaError> {
        let local = match self {
            MediaRouter::Local(local) => local,
            MediaRouter::Cluster(c) => c.local(),
        };
        Ok(local.close_room(room)?)
    }

    /// The cluster side, when this node is part of one (for the placement watch).
    pub fn cluster(&self) -> Option<&Arc<ClusterMedia>> {
        match self {
            MediaRouter::Local(_) => None,
            MediaRouter::Cluster(c) => Some(c),
        }
    }
}

/// A request that completed at the call, as a future like the relayed ones.
fn done(result: Result<(), EngineError>) -> BoxFuture<'static, Result<(), MediaError>> {
    future::ready(result.map_err(MediaError::from)).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_gone_is_not_a_refusal() {
        assert_eq!(
            EngineError::from(SfuError::WorkerGone),
            EngineError::WorkerGone
        );
        assert_eq!(
            EngineError::from(SfuError::StaleAnswer),
            EngineError::Refused(SfuError::StaleAnswer)
        );
    }

    #[test]
    fn messages_are_the_ones_clients_saw_before() {
        assert_eq!(
            MediaError::from(EngineError::Timeout).to_string(),
            "the media worker did not answer in time"
        );
        assert_eq!(
            MediaError::from(EngineError::from(SfuError::WorkerGone)).to_string(),
            "the media worker is not running"
        );
        assert_eq!(
            MediaError::from(EngineError::Refused(SfuError::UnknownParticipant)).to_string(),
            "no such participant"
        );
        assert_eq!(
            MediaError::NodeGone { node: "n_x".into() }.to_string(),
            "node n_x hosting this meeting's media is gone"
        );
    }
}
