//! The live participant registry in Redis: the same contract as the in-process one
//! ([`super::local`]), each operation one Lua script so that it is atomic across nodes.
//!
//! Every participant has an entry in the room's hash (its JSON) and a score in the
//! room's "alive" sorted set: the time its node must refresh it by. Scripts first drop
//! the entries whose time has passed, so a crashed node's participants stop counting
//! against the cap after [`PEER_LEASE`].

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use proto::{PeerId, RoomId};
use redis::aio::ConnectionManager;
use redis::{FromRedisValue, Script};

use super::{Admitted, LiveChange, LiveError, LivePeer};
use crate::cluster::{Cluster, HEARTBEAT, PEER_LEASE};

/// Drop expired entries of a room. Shared prologue of every script.
const PRUNE: &str = r#"
local function prune(peers, alive, now)
  local expired = redis.call('ZRANGEBYSCORE', alive, '-inf', now)
  for _, p in ipairs(expired) do
    redis.call('HDEL', peers, p)
    redis.call('ZREM', alive, p)
  end
end
"#;

/// KEYS: peers, alive. ARGV: now, peerId, userId, json, limit, aliveUntil, ttlSecs.
/// Returns {1, present, replaced json…} or {0, others}.
const ADMIT: &str = r#"
prune(KEYS[1], KEYS[2], ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local others = 0
local replaced = {}
for i = 1, #all, 2 do
  local ok, v = pcall(cjson.decode, all[i + 1])
  if ok and v.userId == ARGV[3] then
    table.insert(replaced, all[i + 1])
    redis.call('HDEL', KEYS[1], all[i])
    redis.call('ZREM', KEYS[2], all[i])
  else
    others = others + 1
  end
end
if others >= tonumber(ARGV[5]) then
  -- Put the replaced entries back: a refused join changes nothing.
  for _, r in ipairs(replaced) do
    local v = cjson.decode(r)
    redis.call('HSET', KEYS[1], v.peerId, r)
    redis.call('ZADD', KEYS[2], ARGV[6], v.peerId)
  end
  return {0, others}
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[7])
local out = {1, others + 1}
for _, r in ipairs(replaced) do table.insert(out, r) end
return out
"#;

/// KEYS: peers, alive. ARGV: now, peerId. Returns {json or '', remaining}.
const REMOVE: &str = r#"
prune(KEYS[1], KEYS[2], ARGV[1])
local v = redis.call('HGET', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
return {v or '', redis.call('HLEN', KEYS[1])}
"#;

/// KEYS: peers, alive. ARGV: now. Returns every live entry.
const PEERS: &str = r#"
prune(KEYS[1], KEYS[2], ARGV[1])
return redis.call('HVALS', KEYS[1])
"#;

/// KEYS: peers, alive. ARGV: now, peerId, field, value ('1'/'0'). Returns the new json or ''.
const UPDATE: &str = r#"
prune(KEYS[1], KEYS[2], ARGV[1])
local raw = redis.call('HGET', KEYS[1], ARGV[2])
if not raw then return '' end
local v = cjson.decode(raw)
v[ARGV[3]] = (ARGV[4] == '1')
local out = cjson.encode(v)
redis.call('HSET', KEYS[1], ARGV[2], out)
return out
"#;

/// KEYS: peers, alive. ARGV: aliveUntil, ttlSecs, then pairs of peerId, json.
/// Refreshes this node's participants; re-adds them if Redis lost them (restart).
const REFRESH: &str = r#"
for i = 3, #ARGV, 2 do
  redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRUNE}\n{body}"))
}

/// The registry in Redis, plus this node's own participants (to refresh them).
pub struct RedisLive {
    pub(super) cluster: Cluster,
    ttl: Duration,
    admit: Script,
    remove: Script,
    peers: Script,
    update: Script,
    refresh: Script,
    pub(super) lobby: super::redis_lobby::RedisLobby,
    pub(super) activity: super::redis_activity::RedisActivity,
    /// Participants whose sockets are on this node: room → peer → last known entry.
    local: Mutex<HashMap<RoomId, HashMap<PeerId, LivePeer>>>,
}

impl std::fmt::Debug for RedisLive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLive")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn unavailable(e: redis::RedisError) -> LiveError {
    LiveError::Unavailable(e.to_string())
}

/// A registry entry as read back from Redis; `None` for one that is not ours.
pub(crate) fn decode(raw: &str) -> Option<LivePeer> {
    serde_json::from_str(raw).ok()
}

/// Entries stored as JSON, as read back; one that does not decode is not ours and is
/// skipped.
pub(super) fn decode_all<T: serde::de::DeserializeOwned>(raw: &[String]) -> Vec<T> {
    raw.iter()
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect()
}

/// An entry as stored. Our entries always serialise; the error is there so that a
/// failure would surface as one more way Redis is unavailable, not as a panic.
pub(super) fn to_json<T: serde::Serialize>(entry: &T) -> Result<String, LiveError> {
    serde_json::to_string(entry).map_err(|e| LiveError::Unavailable(e.to_string()))
}

/// What goes to Redis in one round trip: a command, a pipeline or a script call.
pub(super) trait Request {
    fn send<T: FromRedisValue + Send>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send;
}

impl Request for redis::Cmd {
    fn send<T: FromRedisValue + Send>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}

impl Request for redis::Pipeline {
    fn send<T: FromRedisValue + Send>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}

impl Request for redis::ScriptInvocation<'_> {
    fn send<T: FromRedisValue + Send>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send {
        self.invoke_async(conn)
    }
}

impl RedisLive {
    /// Sends `request` on the shared connection, timed under `op` (the
    /// `redis_operation_duration_seconds{op}` histogram, failures in
    /// `redis_errors_total{op}`), a failure mapped to [`LiveError::Unavailable`]. The
    /// registry, the lobby and the meeting activity all reach Redis through here, so
    /// every round trip is measured and fails the same way.
    pub(super) async fn send<T: FromRedisValue + Send>(
        &self,
        op: &'static str,
        request: &impl Request,
    ) -> Result<T, LiveError> {
        let mut conn = self.cluster.conn.clone();
        timed_redis(op, async move {
            request.send(&mut conn).await.map_err(unavailable)
        })
        .await
    }

    /// `ttl` is `MEETING_TTL`: how long a room's keys outlive its last activity.
    pub fn new(cluster: Cluster, ttl: Duration) -> Self {
        RedisLive {
            cluster,
            ttl,
            admit: script(ADMIT),
            remove: script(REMOVE),
            peers: script(PEERS),
            update: script(UPDATE),
            refresh: script(REFRESH),
            lobby: Default::default(),
            activity: Default::default(),
            local: Mutex::default(),
        }
    }

    fn keys(&self, room: &RoomId) -> (String, String) {
        (
            self.cluster.key(format_args!("room:{room}:peers")),
            self.cluster.key(format_args!("room:{room}:alive")),
        )
    }

    fn alive_until(&self) -> i64 {
        now_ms() + PEER_LEASE.as_millis() as i64
    }

    pub(super) fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs().max(PEER_LEASE.as_secs() * 2)
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, HashMap<PeerId, LivePeer>>> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections of this node in the registry.
    pub(crate) fn local_count(&self) -> usize {
        self.local().values().map(HashMap::len).sum()
    }

    /// Refresh `peer` from this node on (its connection resumed here).
    pub(super) fn adopt(&self, room: &RoomId, peer: LivePeer) {
        self.local()
            .entry(room.clone())
            .or_default()
            .insert(peer.peer_id.clone(), peer);
    }

    /// Stop refreshing `peer` (its connection resumed on another node).
    pub(super) fn release(&self, room: &RoomId, peer: &PeerId) {
        self.forget_local(room, peer);
    }

    fn forget_local(&self, room: &RoomId, peer: &PeerId) {
        let mut local = self.local();
        if let Some(peers) = local.get_mut(room) {
            peers.remove(peer);
            if peers.is_empty() {
                local.remove(room);
            }
        }
    }

    pub async fn admit(
        &self,
        room: &RoomId,
        peer: LivePeer,
        limit: usize,
    ) -> Result<Admitted, LiveError> {
        let (peers, alive) = self.keys(room);
        let out: Vec<redis::Value> = self
            .send(
                "admit",
                self.admit
                    .key(peers)
                    .key(alive)
                    .arg(now_ms())
                    .arg(peer.peer_id.as_str())
                    .arg(peer.user_id.as_str())
                    .arg(to_json(&peer)?)
                    .arg(limit)
                    .arg(self.alive_until())
                    .arg(self.ttl_secs()),
            )
            .await?;
        let admitted = matches!(out.first(), Some(redis::Value::Int(1)));
        if !admitted {
            return Err(LiveError::Full { limit });
        }
        let present = match out.get(1) {
            Some(redis::Value::Int(n)) => usize::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        let replaced: Vec<LivePeer> = out[2.min(out.len())..]
            .iter()
            .filter_map(|v| redis::from_redis_value::<String>(v.clone()).ok())
            .filter_map(|s| decode(&s))
            .collect();
        for r in &replaced {
            self.forget_local(room, &r.peer_id);
        }
        self.local()
            .entry(room.clone())
            .or_default()
            .insert(peer.peer_id.clone(), peer);
        Ok(Admitted { replaced, present })
    }

    pub async fn remove(
        &self,
        room: &RoomId,
        peer: &PeerId,
    ) -> Result<Option<(LivePeer, usize)>, LiveError> {
        self.forget_local(room, peer);
        let (peers, alive) = self.keys(room);
        let (raw, remaining): (String, usize) = self
            .send(
                "remove",
                self.remove
                    .key(peers)
                    .key(alive)
                    .arg(now_ms())
                    .arg(peer.as_str()),
            )
            .await?;
        Ok(decode(&raw).map(|p| (p, remaining)))
    }

    pub async fn clear(&self, room: &RoomId) -> Result<Vec<LivePeer>, LiveError> {
        let gone = self.peers(room).await?;
        self.local().remove(room);
        let (peers, alive) = self.keys(room);
        let () = self
            .send("clear", redis::cmd("DEL").arg(peers).arg(alive))
            .await?;
        Ok(gone)
    }

    pub async fn peers(&self, room: &RoomId) -> Result<Vec<LivePeer>, LiveError> {
        let (peers, alive) = self.keys(room);
        let raw: Vec<String> = self
            .send("peers", self.peers.key(peers).key(alive).arg(now_ms()))
            .await?;
        let mut list: Vec<LivePeer> = decode_all(&raw);
        list.sort_by_key(|p| p.joined_at);
        Ok(list)
    }

    pub async fn update(
        &self,
        room: &RoomId,
        peer: &PeerId,
        change: LiveChange,
    ) -> Result<Option<LivePeer>, LiveError> {
        let (field, value) = change.field();
        let (peers, alive) = self.keys(room);
        let raw: String = self
            .send(
                "update",
                self.update
                    .key(peers)
                    .key(alive)
                    .arg(now_ms())
                    .arg(peer.as_str())
                    .arg(field)
                    .arg(if value { "1" } else { "0" }),
            )
            .await?;
        let updated = decode(&raw);
        if let Some(p) = &updated
            && let Some(mine) = self.local().get_mut(room).and_then(|m| m.get_mut(peer))
        {
            *mine = p.clone();
        }
        Ok(updated)
    }

    /// Refresh this node's participants, once. Re-creates entries Redis lost.
    pub async fn refresh(&self) -> Result<(), LiveError> {
        let snapshot: Vec<(RoomId, Vec<LivePeer>)> = self
            .local()
            .iter()
            .map(|(r, ps)| (r.clone(), ps.values().cloned().collect()))
            .collect();
        for (room, peers) in snapshot {
            let (k_peers, k_alive) = self.keys(&room);
            let mut inv = self.refresh.key(k_peers);
            inv.key(k_alive)
                .arg(self.alive_until())
                .arg(self.ttl_secs());
            for p in &peers {
                inv.arg(p.peer_id.as_str()).arg(to_json(p)?);
            }
            let _: i64 = self.send("refresh", &inv).await?;
        }
        Ok(())
    }

    /// Keep refreshing until shutdown. Failures are logged once per outage.
    pub async fn run_heartbeat(&self, shutdown: tokio_util::sync::CancellationToken) {
        let mut down = false;
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.refresh().await {
                Ok(()) if down => {
                    down = false;
                    tracing::info!("Redis is back: live participants re-synced");
                }
                Ok(()) => {}
                Err(e) if !down => {
                    down = true;
                    tracing::warn!(error = %e, "Redis unreachable: media keeps flowing, joins will fail until it returns");
                }
                Err(_) => {}
            }
        }
    }

    /// Rooms with participants on this node.
    pub fn local_rooms(&self) -> HashSet<RoomId> {
        self.local().keys().cloned().collect()
    }
}

/// Times a registry operation into `redis_operation_duration_seconds{op}` and counts
/// its failures in `redis_errors_total{op}` (docs/operations.md).
async fn timed_redis<T>(
    op: &'static str,
    f: impl std::future::Future<Output = Result<T, LiveError>>,
) -> Result<T, LiveError> {
    use crate::monitoring::names::{REDIS_DURATION, REDIS_ERRORS};
    crate::monitoring::timed(REDIS_DURATION, REDIS_ERRORS, op, f).await
}
