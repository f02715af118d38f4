//! The lobby (see [`super::lobby`]) in Redis, each operation one Lua script so that it is
//! atomic across nodes: `room:<id>:lobby` (hash ticket → entry JSON) and
//! `room:<id>:approved` (set of user ids the host let in), and `room:<id>:cohosts` (set
//! of user ids the host made co-host). All expire with the room's
//! other keys (`MEETING_TTL` after the last change).

use proto::{PeerId, RoomId, UserId};
use redis::Script;

use super::LiveError;
use super::lobby::{LobbyEntry, Pick};
use super::redis::{RedisLive, decode_all, to_json};

/// KEYS: lobby. ARGV: ticket, userId, json, ttlSecs. Replaces the user's earlier
/// entries; returns every entry.
const WAIT: &str = r#"
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, v = pcall(cjson.decode, all[i + 1])
  if ok and v.userId == ARGV[2] then redis.call('HDEL', KEYS[1], all[i]) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return redis.call('HVALS', KEYS[1])
"#;

/// KEYS: lobby, approved. ARGV: admit ('1'/'0'), ttlSecs, ticket ('' for all).
/// Returns the entries taken.
const DECIDE: &str = r#"
local taken = {}
if ARGV[3] == '' then
  taken = redis.call('HVALS', KEYS[1])
  redis.call('DEL', KEYS[1])
else
  local v = redis.call('HGET', KEYS[1], ARGV[3])
  if v then
    redis.call('HDEL', KEYS[1], ARGV[3])
    taken = {v}
  end
end
if ARGV[1] == '1' then
  for _, raw in ipairs(taken) do
    local ok, v = pcall(cjson.decode, raw)
    if ok then redis.call('SADD', KEYS[2], v.userId) end
  end
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return taken
"#;

pub(super) struct RedisLobby {
    wait: Script,
    decide: Script,
}

impl std::fmt::Debug for RedisLobby {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisLobby")
    }
}

impl Default for RedisLobby {
    fn default() -> Self {
        RedisLobby {
            wait: Script::new(WAIT),
            decide: Script::new(DECIDE),
        }
    }
}

/// Entries as read back, in the order they asked.
fn decode(raw: &[String]) -> Vec<LobbyEntry> {
    let mut list: Vec<LobbyEntry> = decode_all(raw);
    list.sort_by_key(|e| e.asked_at);
    list
}

impl RedisLive {
    fn lobby_keys(&self, room: &RoomId) -> (String, String) {
        (
            self.cluster.key(format_args!("room:{room}:lobby")),
            self.cluster.key(format_args!("room:{room}:approved")),
        )
    }

    pub(super) async fn lobby_wait(
        &self,
        room: &RoomId,
        entry: LobbyEntry,
    ) -> Result<Vec<LobbyEntry>, LiveError> {
        let (lobby, _) = self.lobby_keys(room);
        let raw: Vec<String> = self
            .send(
                "lobby_wait",
                self.lobby
                    .wait
                    .key(lobby)
                    .arg(entry.peer_id.as_str())
                    .arg(entry.user_id.as_str())
                    .arg(to_json(&entry)?)
                    .arg(self.ttl_secs()),
            )
            .await?;
        Ok(decode(&raw))
    }

    pub(super) async fn lobby_waiting(&self, room: &RoomId) -> Result<Vec<LobbyEntry>, LiveError> {
        let (lobby, _) = self.lobby_keys(room);
        let raw: Vec<String> = self
            .send("lobby_waiting", redis::cmd("HVALS").arg(lobby))
            .await?;
        Ok(decode(&raw))
    }

    pub(super) async fn lobby_decide(
        &self,
        room: &RoomId,
        pick: &Pick,
        admit: bool,
    ) -> Result<Vec<LobbyEntry>, LiveError> {
        let (lobby, approved) = self.lobby_keys(room);
        let ticket = match pick {
            Pick::One(p) => p.as_str(),
            Pick::All => "",
        };
        let raw: Vec<String> = self
            .send(
                "lobby_decide",
                self.lobby
                    .decide
                    .key(lobby)
                    .key(approved)
                    .arg(if admit { "1" } else { "0" })
                    .arg(self.ttl_secs())
                    .arg(ticket),
            )
            .await?;
        Ok(decode(&raw))
    }

    pub(super) async fn lobby_leave(
        &self,
        room: &RoomId,
        peer: &PeerId,
    ) -> Result<bool, LiveError> {
        let (lobby, _) = self.lobby_keys(room);
        let n: i64 = self
            .send(
                "lobby_leave",
                redis::cmd("HDEL").arg(lobby).arg(peer.as_str()),
            )
            .await?;
        Ok(n > 0)
    }

    pub(super) async fn lobby_is_approved(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<bool, LiveError> {
        let (_, approved) = self.lobby_keys(room);
        self.send(
            "lobby_approved",
            redis::cmd("SISMEMBER").arg(approved).arg(user.as_str()),
        )
        .await
    }

    fn co_hosts_key(&self, room: &RoomId) -> String {
        self.cluster.key(format_args!("room:{room}:cohosts"))
    }

    pub(super) async fn co_host_set(
        &self,
        room: &RoomId,
        user: &UserId,
        on: bool,
    ) -> Result<(), LiveError> {
        let key = self.co_hosts_key(room);
        self.send(
            "co_host_set",
            redis::pipe()
                .atomic()
                .cmd(if on { "SADD" } else { "SREM" })
                .arg(&key)
                .arg(user.as_str())
                .ignore()
                .cmd("EXPIRE")
                .arg(&key)
                .arg(self.ttl_secs())
                .ignore(),
        )
        .await
    }

    pub(super) async fn co_host_is(&self, room: &RoomId, user: &UserId) -> Result<bool, LiveError> {
        self.send(
            "co_host_is",
            redis::cmd("SISMEMBER")
                .arg(self.co_hosts_key(room))
                .arg(user.as_str()),
        )
        .await
    }

    pub(super) async fn lobby_clear(&self, room: &RoomId) -> Result<Vec<LobbyEntry>, LiveError> {
        let gone = self.lobby_waiting(room).await?;
        let (lobby, approved) = self.lobby_keys(room);
        let () = self
            .send(
                "lobby_clear",
                redis::cmd("DEL")
                    .arg(lobby)
                    .arg(approved)
                    .arg(self.co_hosts_key(room)),
            )
            .await?;
        Ok(gone)
    }
}
