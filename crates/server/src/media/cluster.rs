//! Media requests of a node in a cluster: run where the meeting's room lives.
//!
//! [`Placement`] says which node owns a meeting's SFU room. A request for a room owned
//! here goes to this node's [`LocalMedia`], typed all the way; a request for a room owned
//! elsewhere is relayed over Redis pub/sub: published on the owner's `node:{id}:rpc`
//! channel, run there on its [`LocalMedia`], and answered on the sender's `reply:{id}`
//! channel. The wire forms of requests, replies and errors are private to this module
//! (`wire.rs`); callers only see [`MediaError`].
//!
//! Recording commands take the same way ([`ClusterMedia`] is the cluster's
//! `recording::control::Relay`): the node that owns the room records it, whichever
//! node's socket or REST request asked.

mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{self, BoxFuture};
use meeting_sfu::{MidSource, SdpAnswer, TrackSource};
use proto::{PeerId, RoomId};
use redis::AsyncCommands;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{EngineError, LocalMedia, MediaError};
use crate::cluster::Cluster;
use crate::cluster::placement::{Owner, Placement};
use crate::recording::control::{Command, ControlError, Host, Outcome, Relay};
use wire::{Envelope, Reply, ReplyEnvelope, Request, WireError};

/// How long a relayed request may take before the caller gives up.
const RELAY_DEADLINE: Duration = Duration::from_secs(10);

/// Which of a track's switches a request flips.
#[derive(Clone, Copy, Debug)]
pub(super) enum Toggle {
    /// Forwarding stopped (`true`) or resumed.
    Muted(bool),
    /// Offered to the others (`true`) or withdrawn.
    Publishing(bool),
}

/// The media side of one cluster node: its engine, room placement, and the relay.
pub struct ClusterMedia {
    cluster: Cluster,
    local: LocalMedia,
    /// This node's recorder, for the rooms it owns.
    recording: Host,
    placement: Arc<Placement>,
    /// Relayed requests awaiting their reply, by request id.
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<Reply, WireError>>>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for ClusterMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterMedia")
            .field("node", &self.cluster.node_id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClusterMedia {
    pub fn new(cluster: Cluster, local: LocalMedia, recording: Host) -> Arc<Self> {
        let placement = Placement::new(cluster.clone(), local.is_running());
        Arc::new(ClusterMedia {
            cluster,
            local,
            recording,
            placement,
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
        })
    }

    /// Room ownership as this node sees it (leases, relayed participants).
    pub fn placement(&self) -> &Arc<Placement> {
        &self.placement
    }

    /// This node's own engine.
    pub fn local(&self) -> &LocalMedia {
        &self.local
    }

    /// Where `peer`'s requests go: the node its media was placed on.
    fn placed_owner(&self, peer: &PeerId) -> Owner {
        self.placement
            .placed(peer)
            .map(|(_, owner)| owner)
            .unwrap_or(Owner::Here)
    }

    /// A publishing offer: a join on the room's owner unless this peer's media is
    /// already placed there (a participant whose owner changed joins the new one).
    pub async fn offer(
        &self,
        room: &RoomId,
        peer: &PeerId,
        sdp: String,
        sources: Vec<MidSource>,
    ) -> Result<SdpAnswer, MediaError> {
        let owner = self.placement.owner(room).await?;
        let known = self.placement.placed(peer).is_some_and(|(_, o)| o == owner);
        let answer = match (&owner, known) {
            (Owner::Here, false) => self.local.join(room, peer, sdp, sources).await?,
            (Owner::Here, true) => self.local.offer(peer, sdp, sources).await?,
            (Owner::Node(node), _) => {
                let request = if known {
                    Request::offer(peer, sdp, &sources)
                } else {
                    Request::join(room, peer, sdp, &sources)
                };
                match self.relay(node, request).await? {
                    Reply::Answer { sdp, tracks } => wire::answer_from_wire(sdp, tracks),
                    Reply::Done | Reply::Recording { .. } => {
                        return Err(MediaError::UnexpectedReply("no SDP to an offer"));
                    }
                }
            }
        };
        self.placement.set_placed(peer, room, owner);
        Ok(answer)
    }

    pub async fn answer(
        &self,
        peer: &PeerId,
        offer_id: u64,
        sdp: String,
    ) -> Result<(), MediaError> {
        match self.placed_owner(peer) {
            Owner::Here => Ok(self.local.answer(peer, offer_id, sdp).await?),
            Owner::Node(node) => {
                let request = Request::Answer {
                    participant: peer.clone(),
                    offer_id,
                    sdp,
                };
                self.relay_done(&node, request).await
            }
        }
    }

    /// Mute or (un)publish one of `peer`'s tracks where its media was placed.
    pub(super) fn set_publishing_or_muted(
        self: &Arc<Self>,
        peer: &PeerId,
        source: TrackSource,
        toggle: Toggle,
    ) -> BoxFuture<'static, Result<(), MediaError>> {
        let node = match self.placed_owner(peer) {
            Owner::Here => {
                let result = match toggle {
                    Toggle::Muted(muted) => self.local.set_muted(peer, source, muted),
                    Toggle::Publishing(on) => self.local.set_publishing(peer, source, on),
                };
                return future::ready(result.map_err(MediaError::from)).boxed();
            }
            Owner::Node(node) => node,
        };
        let (participant, source) = (peer.clone(), source.into());
        let request = match toggle {
            Toggle::Muted(muted) => Request::SetMuted {
                participant,
                source,
                muted,
            },
            Toggle::Publishing(on) => Request::SetPublishing {
                participant,
                source,
                on,
            },
        };
        self.relay_later(node, request)
    }

    /// Remove `peer` where its media was placed; nothing if it never was. The placement
    /// is forgotten at once, so that a later offer of the same peer joins afresh.
    pub(super) fn leave(
        self: &Arc<Self>,
        peer: &PeerId,
    ) -> BoxFuture<'static, Result<(), MediaError>> {
        match self.placement.forget(peer) {
            None => future::ready(Ok(())).boxed(),
            Some((_, Owner::Here)) => {
                future::ready(self.local.leave(peer).map_err(MediaError::from)).boxed()
            }
            Some((_, Owner::Node(node))) => {
                let request = Request::Leave {
                    participant: peer.clone(),
                };
                self.relay_later(node, request)
            }
        }
    }

    /// [`super::MediaRouter::set_receive_quality`] where `peer`'s media was placed.
    pub(super) fn set_receive_quality(
        self: &Arc<Self>,
        peer: &PeerId,
        quality: meeting_sfu::ReceiveQuality,
    ) -> BoxFuture<'static, Result<(), MediaError>> {
        match self.placed_owner(peer) {
            Owner::Here => future::ready(
                self.local
                    .set_receive_quality(peer, quality)
                    .map_err(MediaError::from),
            )
            .boxed(),
            Owner::Node(node) => {
                let request = Request::SetReceiveQuality {
                    participant: peer.clone(),
                    quality: quality.into(),
                };
                self.relay_later(node, request)
            }
        }
    }

    /// [`super::MediaRouter::set_tile_views`] where `peer`'s media was placed.
    pub(super) fn set_tile_views(
        self: &Arc<Self>,
        peer: &PeerId,
        views: Vec<meeting_sfu::TileView>,
    ) -> BoxFuture<'static, Result<(), MediaError>> {
        match self.placed_owner(peer) {
            Owner::Here => future::ready(
                self.local
                    .set_tile_views(peer, views)
                    .map_err(MediaError::from),
            )
            .boxed(),
            Owner::Node(node) => {
                let request = Request::SetTileViews {
                    participant: peer.clone(),
                    views: views.into_iter().map(Into::into).collect(),
                };
                self.relay_later(node, request)
            }
        }
    }

    /// [`Self::relay_done`] as a future that owns what it needs.
    fn relay_later(
        self: &Arc<Self>,
        node: String,
        request: Request,
    ) -> BoxFuture<'static, Result<(), MediaError>> {
        let this = self.clone();
        async move { this.relay_done(&node, request).await }.boxed()
    }

    /// Relay a request that answers nothing but success.
    async fn relay_done(&self, node: &str, request: Request) -> Result<(), MediaError> {
        match self.relay(node, request).await? {
            Reply::Done => Ok(()),
            Reply::Answer { .. } | Reply::Recording { .. } => Err(MediaError::UnexpectedReply(
                "more than success to a request",
            )),
        }
    }

    /// Send `request` to `node` and wait for its reply.
    async fn relay(&self, node: &str, request: Request) -> Result<Reply, MediaError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let payload = wire::encode(&Envelope {
            id,
            from: self.cluster.node_id.clone(),
            request,
        });
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let mut conn = self.cluster.conn.clone();
        let receivers: i64 = match conn.publish(self.rpc_channel(node), payload).await {
            Ok(n) => n,
            Err(e) => {
                lock(&self.pending).remove(&id);
                return Err(e.into());
            }
        };
        if receivers == 0 {
            lock(&self.pending).remove(&id);
            return Err(MediaError::NodeGone {
                node: node.to_owned(),
            });
        }
        match tokio::time::timeout(RELAY_DEADLINE, rx).await {
            Ok(Ok(reply)) => reply.map_err(|e| MediaError::Engine(e.into())),
            _ => {
                lock(&self.pending).remove(&id);
                Err(MediaError::RelayTimeout)
            }
        }
    }

    fn rpc_channel(&self, node: &str) -> String {
        self.cluster.key(format_args!("node:{node}:rpc"))
    }

    fn reply_channel(&self, node: &str) -> String {
        self.cluster.key(format_args!("reply:{node}"))
    }

    /// Serve requests for the rooms this node hosts and collect replies to its own, until
    /// shutdown; reconnects with backoff when Redis goes away.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.clone().serve_once() => r,
            };
            if let Err(e) = outcome {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cluster relay lost its Redis subscription");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn serve_once(self: Arc<Self>) -> Result<(), redis::RedisError> {
        use futures_util::StreamExt;
        let mut pubsub = self.cluster.client.get_async_pubsub().await?;
        let rpc = self.rpc_channel(&self.cluster.node_id);
        let replies = self.reply_channel(&self.cluster.node_id);
        pubsub.subscribe(&rpc).await?;
        pubsub.subscribe(&replies).await?;
        tracing::info!(node = %self.cluster.node_id, "cluster relay subscribed");
        let mut stream = pubsub.on_message();
        while let Some(msg) = stream.next().await {
            let Ok(payload) = msg.get_payload::<String>() else {
                continue;
            };
            if msg.get_channel_name() == rpc {
                match wire::parse_request(&payload) {
                    Ok(env) => self.serve_request(env),
                    Err(e) => tracing::warn!(error = %e, "malformed relay request ignored"),
                }
            } else {
                match wire::parse_reply(&payload) {
                    Ok(r) => {
                        if let Some(tx) = lock(&self.pending).remove(&r.id) {
                            let _ = tx.send(r.reply);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "malformed relay reply ignored"),
                }
            }
        }
        Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "subscription closed",
        )))
    }

    /// Run one relayed request on this node's engine and publish the reply. The request
    /// reaches the engine now, so requests run in the order they arrived; only the wait
    /// for the answer happens on a task of its own.
    fn serve_request(&self, env: Envelope) {
        let answer = self.execute(env.request);
        let reply_to = self.reply_channel(&env.from);
        let mut conn = self.cluster.conn.clone();
        tokio::spawn(async move {
            let reply = answer.await.map_err(|e| WireError::from(&e));
            let payload = wire::encode(&ReplyEnvelope { id: env.id, reply });
            let sent: Result<i64, _> = conn.publish(reply_to, payload).await;
            if let Err(e) = sent {
                tracing::debug!(error = %e, "could not publish a relay reply");
            }
        });
    }

    fn execute(&self, request: Request) -> BoxFuture<'static, Result<Reply, EngineError>> {
        let local = &self.local;
        let done = |r: Result<(), EngineError>| future::ready(r.map(|()| Reply::Done)).boxed();
        match request {
            Request::Join {
                room,
                participant,
                sdp,
                sources,
            } => {
                let sources = wire::sources_from_wire(sources);
                let answer = local.join(&room, &participant, sdp, sources);
                async move { Ok(wire::answer_to_wire(answer.await?)) }.boxed()
            }
            Request::Offer {
                participant,
                sdp,
                sources,
            } => {
                let sources = wire::sources_from_wire(sources);
                let answer = local.offer(&participant, sdp, sources);
                async move { Ok(wire::answer_to_wire(answer.await?)) }.boxed()
            }
            Request::Answer {
                participant,
                offer_id,
                sdp,
            } => {
                let answer = local.answer(&participant, offer_id, sdp);
                async move { answer.await.map(|()| Reply::Done) }.boxed()
            }
            Request::SetMuted {
                participant,
                source,
                muted,
            } => done(local.set_muted(&participant, source.into(), muted)),
            Request::SetPublishing {
                participant,
                source,
                on,
            } => done(local.set_publishing(&participant, source.into(), on)),
            Request::SetReceiveQuality {
                participant,
                quality,
            } => done(local.set_receive_quality(&participant, quality.into())),
            Request::SetTileViews { participant, views } => done(
                local.set_tile_views(&participant, views.into_iter().map(Into::into).collect()),
            ),
            Request::Leave { participant } => done(local.leave(&participant)),
            Request::Recording { room, command } => {
                let host = self.recording.clone();
                async move {
                    let result = host.run(&room, command.into()).await;
                    Ok(wire::recording_to_wire(result))
                }
                .boxed()
            }
        }
    }

    /// [`Relay::run`]: where the room's media is, that node's recorder runs `command`.
    async fn record(&self, room: &RoomId, command: Command) -> Result<Outcome, ControlError> {
        let unreachable = |e: MediaError| ControlError::Unreachable(Box::new(e));
        // Starting places the room like a first join would (the recording then holds
        // the lease); the other commands never claim it: without an owner, nothing runs.
        let owner = match command {
            Command::Start => Some(
                self.placement
                    .owner(room)
                    .await
                    .map_err(|e| unreachable(e.into()))?,
            ),
            Command::Stop(_) | Command::Status => self
                .placement
                .current(room)
                .await
                .map_err(|e| unreachable(e.into()))?,
        };
        match owner {
            Some(Owner::Here) => Ok(self.recording.run(room, command).await?),
            Some(Owner::Node(node)) => {
                let request = Request::Recording {
                    room: room.clone(),
                    command: command.into(),
                };
                match self.relay(&node, request).await.map_err(unreachable)? {
                    Reply::Recording { outcome } => Ok(wire::recording_from_wire(outcome)?),
                    Reply::Done | Reply::Answer { .. } => Err(unreachable(
                        MediaError::UnexpectedReply("no recording answer to a recording command"),
                    )),
                }
            }
            None => Ok(match command {
                Command::Status => Outcome::Status(None),
                _ => Outcome::Stopped(None),
            }),
        }
    }
}

impl Relay for ClusterMedia {
    fn run(&self, room: &RoomId, command: Command) -> BoxFuture<'_, Result<Outcome, ControlError>> {
        let room = room.clone();
        async move { self.record(&room, command).await }.boxed()
    }
}

/// The relay's half of the `redis_relay` fuzz target (`crate::fuzzing`): whether a
/// payload read from this node's `rpc:` channel (`reply` false) or `reply:` channel
/// parses. Panics, the fuzzer's finding, if what parsed does not survive being written
/// back.
#[doc(hidden)]
pub fn fuzz_relay_message(reply: bool, payload: &str) -> bool {
    if reply {
        wire::parse_reply(payload)
            .map(|r| wire::assert_round_trip(&r))
            .is_ok()
    } else {
        wire::parse_request(payload)
            .map(|r| wire::assert_round_trip(&r))
            .is_ok()
    }
}
