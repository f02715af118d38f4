//! Which node hosts a meeting's SFU room, and how the other nodes drive it.
//!
//! A room's media must live on one node: every participant's RTP goes to that node's
//! workers. The first node that needs the room claims it with a lease
//! (`SET room:{id}:owner <node> NX PX`) and renews it while the room has participants.
//! A participant whose socket reaches another node never notices: that node relays its
//! SFU requests to the owner over Redis pub/sub ([`MediaOp`] in, [`OpReply`] out), and the
//! owner's answers and server offers reach the socket through the Socket.IO Redis
//! adapter (`peer:{peerId}` rooms are cluster-wide). The browser then sends media
//! straight to the owner's announced address.
//!
//! Why relay instead of redirecting the client: the client keeps one socket and one
//! origin (no CORS, no second token check, no reconnect logic in every frontend), and a
//! node only has to announce its media address, which it does already.
//!
//! When an owner dies its lease expires; the next join claims the room elsewhere, and the
//! nodes that relayed for it tell their clients to rejoin (`meeting:rejoin`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meeting_sfu::{MidSource, SfuError, TrackSource};
use proto::{PeerId, RoomId};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{Cluster, HEARTBEAT};

/// How long an owner's claim lasts without renewal.
pub const ROOM_LEASE: Duration = Duration::from_secs(15);
/// How long a relayed request may take before the caller gives up.
const RELAY_DEADLINE: Duration = Duration::from_secs(10);

/// One request to a room's SFU, as it crosses the wire between nodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum MediaOp {
    Join {
        room: RoomId,
        participant: PeerId,
        sdp: String,
        sources: Vec<(String, String)>,
    },
    Offer {
        participant: PeerId,
        sdp: String,
        sources: Vec<(String, String)>,
    },
    Answer {
        participant: PeerId,
        offer_id: u64,
        sdp: String,
    },
    SetMuted {
        participant: PeerId,
        source: String,
        muted: bool,
    },
    SetPublishing {
        participant: PeerId,
        source: String,
        on: bool,
    },
    Leave {
        participant: PeerId,
    },
    CloseRoom {
        room: RoomId,
    },
}

/// What an op answers: an SDP answer with its tracks, nothing, or an error text.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OpReply {
    Answer {
        sdp: String,
        tracks: Vec<(String, PeerId, String)>,
    },
    Done,
    Failed {
        kind: String,
        message: String,
    },
}

/// A relayed request as published on the owner's `rpc:` channel.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) id: u64,
    pub(crate) from: String,
    pub(crate) op: MediaOp,
}

/// The owner's answer to [`Envelope`] `id`, on the requester's `reply:` channel.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ReplyEnvelope {
    pub(crate) id: u64,
    pub(crate) reply: OpReply,
}

/// Read a request from the `rpc:` channel. Anyone who can publish on Redis can send
/// one, so this is a parser of network input (the `redis_relay` fuzz target drives it).
pub(crate) fn parse_request(payload: &str) -> Result<Envelope, serde_json::Error> {
    serde_json::from_str(payload)
}

/// Read a reply from the `reply:` channel; `None` for anything else.
pub(crate) fn parse_reply(payload: &str) -> Option<ReplyEnvelope> {
    serde_json::from_str(payload).ok()
}

pub fn sources_to_wire(sources: &[MidSource]) -> Vec<(String, String)> {
    sources
        .iter()
        .map(|s| (s.mid.clone(), s.source.as_str().to_owned()))
        .collect()
}

pub(crate) fn sources_from_wire(sources: &[(String, String)]) -> Vec<MidSource> {
    sources
        .iter()
        .filter_map(|(mid, s)| {
            TrackSource::parse(s).map(|source| MidSource {
                mid: mid.clone(),
                source,
            })
        })
        .collect()
}

fn failed(e: SfuError) -> OpReply {
    let kind = match e {
        SfuError::WorkerGone => "worker-gone",
        _ => "sfu",
    };
    OpReply::Failed {
        kind: kind.into(),
        message: e.to_string(),
    }
}

/// Run `op` on this node's engine; `done` gets the reply.
pub fn execute(sfu: &meeting_sfu::Sfu, op: MediaOp, done: impl FnOnce(OpReply) + Send + 'static) {
    let answer_reply = |done: Box<dyn FnOnce(OpReply) + Send>| -> meeting_sfu::Reply<Result<meeting_sfu::SdpAnswer, SfuError>> {
        Box::new(move |r| {
            done(match r {
                Ok(a) => OpReply::Answer {
                    sdp: a.sdp,
                    tracks: a
                        .tracks
                        .into_iter()
                        .map(|t| (t.mid, t.from, t.source.as_str().to_owned()))
                        .collect(),
                },
                Err(e) => failed(e),
            })
        })
    };
    let done: Box<dyn FnOnce(OpReply) + Send> = Box::new(done);
    match op {
        MediaOp::Join {
            room,
            participant,
            sdp,
            sources,
        } => sfu.join(
            room,
            participant,
            sdp,
            sources_from_wire(&sources),
            answer_reply(done),
        ),
        MediaOp::Offer {
            participant,
            sdp,
            sources,
        } => sfu.offer(
            participant,
            sdp,
            sources_from_wire(&sources),
            answer_reply(done),
        ),
        MediaOp::Answer {
            participant,
            offer_id,
            sdp,
        } => sfu.answer(
            participant,
            offer_id,
            sdp,
            Box::new(move |r| done(r.map(|()| OpReply::Done).unwrap_or_else(failed))),
        ),
        MediaOp::SetMuted {
            participant,
            source,
            muted,
        } => {
            if let Some(source) = TrackSource::parse(&source) {
                sfu.set_muted(participant, source, muted);
            }
            done(OpReply::Done);
        }
        MediaOp::SetPublishing {
            participant,
            source,
            on,
        } => {
            if let Some(source) = TrackSource::parse(&source) {
                sfu.set_publishing(participant, source, on);
            }
            done(OpReply::Done);
        }
        MediaOp::Leave { participant } => {
            sfu.leave(participant);
            done(OpReply::Done);
        }
        MediaOp::CloseRoom { room } => {
            sfu.close_room(room);
            done(OpReply::Done);
        }
    }
}

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
    #[error("the node hosting this meeting's media did not answer in time")]
    Timeout,
    #[error("{0}")]
    Failed(String),
}

/// Room ownership and the relay, for one node.
pub struct Placement {
    cluster: Cluster,
    sfu: Option<Arc<meeting_sfu::Sfu>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<OpReply>>>,
    next_id: AtomicU64,
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
    pub fn new(cluster: Cluster, sfu: Option<Arc<meeting_sfu::Sfu>>) -> Arc<Self> {
        Arc::new(Placement {
            cluster,
            sfu,
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
            hosted: Mutex::default(),
            placed: Mutex::default(),
            misses: Mutex::default(),
        })
    }

    pub fn node_id(&self) -> &str {
        &self.cluster.node_id
    }

    fn owner_key(&self, room: &RoomId) -> String {
        self.cluster.key(format_args!("room:{room}:owner"))
    }

    fn rpc_channel(&self, node: &str) -> String {
        self.cluster.key(format_args!("node:{node}:rpc"))
    }

    fn reply_channel(&self, node: &str) -> String {
        self.cluster.key(format_args!("reply:{node}"))
    }

    /// The room's owner, claiming it for this node if nobody holds it (and this node
    /// runs an SFU).
    pub async fn owner(&self, room: &RoomId) -> Result<Owner, PlacementError> {
        let key = self.owner_key(room);
        let mut conn = self.cluster.conn.clone();
        if self.sfu.is_some() {
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
            None => Err(PlacementError::Failed(
                "no node with an SFU is available for this meeting".into(),
            )),
        }
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

    /// Send `op` to `node` and wait for its reply.
    pub async fn relay(&self, node: &str, op: MediaOp) -> Result<OpReply, PlacementError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let env = Envelope {
            id,
            from: self.cluster.node_id.clone(),
            op,
        };
        let payload =
            serde_json::to_string(&env).map_err(|e| PlacementError::Failed(e.to_string()))?;
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
            return Err(PlacementError::Failed(format!(
                "node {node} hosting this meeting's media is gone"
            )));
        }
        match tokio::time::timeout(RELAY_DEADLINE, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            _ => {
                lock(&self.pending).remove(&id);
                Err(PlacementError::Timeout)
            }
        }
    }

    /// Serve requests for the rooms this node hosts and collect replies to its own, until
    /// shutdown; reconnects with backoff when Redis goes away.
    pub async fn run(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
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
                match parse_request(&payload) {
                    Ok(env) => self.serve_request(env),
                    Err(e) => tracing::warn!(error = %e, "malformed relay request ignored"),
                }
            } else if let Some(r) = parse_reply(&payload)
                && let Some(tx) = lock(&self.pending).remove(&r.id)
            {
                let _ = tx.send(r.reply);
            }
        }
        Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "subscription closed",
        )))
    }

    fn serve_request(self: &Arc<Self>, env: Envelope) {
        let Some(sfu) = self.sfu.clone() else { return };
        let this = self.clone();
        let reply_to = self.reply_channel(&env.from);
        let id = env.id;
        let handle = tokio::runtime::Handle::current();
        execute(&sfu, env.op, move |reply| {
            // Called on a worker thread: hop back onto the runtime to publish.
            handle.spawn(async move {
                let body = ReplyEnvelope { id, reply };
                if let Ok(payload) = serde_json::to_string(&body) {
                    let mut conn = this.cluster.conn.clone();
                    let _: Result<i64, _> = conn.publish(reply_to, payload).await;
                }
            });
        });
    }

    /// Rooms whose lease this node holds.
    pub fn hosted(&self) -> Vec<RoomId> {
        lock(&self.hosted).iter().cloned().collect()
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
    /// is merely missing counts only after [`ORPHAN_AFTER`] checks in a row, so that a
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

    pub fn heartbeat_period() -> Duration {
        HEARTBEAT
    }
}
