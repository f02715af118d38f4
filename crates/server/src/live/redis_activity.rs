//! A meeting's chat history and raised hands (see [`super::activity`]) in Redis, each
//! change one Lua script so that it is atomic across nodes:
//! - `room:<id>:chat` (list of message JSON, oldest first) and `room:<id>:chatbytes`
//!   (their total size), trimmed from the oldest end to the bounds on every append;
//! - `room:<id>:hands` (hash peer → hand JSON), `room:<id>:handorder` (sorted set peer →
//!   sequence number) and `room:<id>:handseq` (the counter): the order is Redis's, not
//!   any node's clock.
//!
//! All expire with the room's other keys (`MEETING_TTL` after the last change).

use proto::events::{ChatMessage, RaisedHand};
use proto::{PeerId, RoomId};
use redis::Script;

use super::LiveError;
use super::activity::{CHAT_HISTORY_BYTES, CHAT_HISTORY_MESSAGES};
use super::redis::{RedisLive, decode_all, to_json};

/// KEYS: chat, chatbytes. ARGV: json, maxMessages, maxBytes, ttlSecs.
const REMEMBER: &str = r#"
redis.call('RPUSH', KEYS[1], ARGV[1])
local bytes = redis.call('INCRBY', KEYS[2], string.len(ARGV[1]))
while redis.call('LLEN', KEYS[1]) > tonumber(ARGV[2]) or bytes > tonumber(ARGV[3]) do
  local old = redis.call('LPOP', KEYS[1])
  if not old then break end
  bytes = redis.call('DECRBY', KEYS[2], string.len(old))
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return bytes
"#;

/// Shared epilogue of the hand scripts: every raised hand, in order.
const HANDS: &str = r#"
local function ordered(hands, order)
  local out = {}
  for _, p in ipairs(redis.call('ZRANGE', order, 0, -1)) do
    local v = redis.call('HGET', hands, p)
    if v then table.insert(out, v) end
  end
  return out
end
"#;

/// KEYS: hands, order, seq. ARGV: peerId, json, ttlSecs. A raised hand keeps its place.
const RAISE: &str = r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  local n = redis.call('INCR', KEYS[3])
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], n, ARGV[1])
end
for _, k in ipairs(KEYS) do redis.call('EXPIRE', k, ARGV[3]) end
return ordered(KEYS[1], KEYS[2])
"#;

/// KEYS: hands, order. ARGV: peerId. Returns {} if it was not raised, else {1, hands…}.
const LOWER: &str = r#"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return {} end
redis.call('ZREM', KEYS[2], ARGV[1])
local out = ordered(KEYS[1], KEYS[2])
table.insert(out, 1, '1')
return out
"#;

/// KEYS: hands, order.
const LIST: &str = "return ordered(KEYS[1], KEYS[2])";

pub(super) struct RedisActivity {
    remember: Script,
    raise: Script,
    lower: Script,
    list: Script,
}

impl std::fmt::Debug for RedisActivity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisActivity")
    }
}

impl Default for RedisActivity {
    fn default() -> Self {
        let hands = |body: &str| Script::new(&format!("{HANDS}\n{body}"));
        RedisActivity {
            remember: Script::new(REMEMBER),
            raise: hands(RAISE),
            lower: hands(LOWER),
            list: hands(LIST),
        }
    }
}

impl RedisLive {
    fn chat_keys(&self, room: &RoomId) -> (String, String) {
        (
            self.cluster.key(format_args!("room:{room}:chat")),
            self.cluster.key(format_args!("room:{room}:chatbytes")),
        )
    }

    fn hand_keys(&self, room: &RoomId) -> [String; 3] {
        [
            self.cluster.key(format_args!("room:{room}:hands")),
            self.cluster.key(format_args!("room:{room}:handorder")),
            self.cluster.key(format_args!("room:{room}:handseq")),
        ]
    }

    pub(super) async fn remember_chat(&self, room: &RoomId, json: String) -> Result<(), LiveError> {
        let (chat, bytes) = self.chat_keys(room);
        let _: i64 = self
            .send(
                "chat_remember",
                self.activity
                    .remember
                    .key(chat)
                    .key(bytes)
                    .arg(json)
                    .arg(CHAT_HISTORY_MESSAGES)
                    .arg(CHAT_HISTORY_BYTES)
                    .arg(self.ttl_secs()),
            )
            .await?;
        Ok(())
    }

    pub(super) async fn chat_history(&self, room: &RoomId) -> Result<Vec<ChatMessage>, LiveError> {
        let (chat, _) = self.chat_keys(room);
        let raw: Vec<String> = self
            .send(
                "chat_history",
                redis::cmd("LRANGE").arg(chat).arg(0).arg(-1),
            )
            .await?;
        Ok(decode_all(&raw))
    }

    pub(super) async fn raise_hand(
        &self,
        room: &RoomId,
        hand: RaisedHand,
    ) -> Result<Vec<RaisedHand>, LiveError> {
        let [hands, order, seq] = self.hand_keys(room);
        let raw: Vec<String> = self
            .send(
                "hand_raise",
                self.activity
                    .raise
                    .key(hands)
                    .key(order)
                    .key(seq)
                    .arg(hand.peer_id.as_str())
                    .arg(to_json(&hand)?)
                    .arg(self.ttl_secs()),
            )
            .await?;
        Ok(decode_all(&raw))
    }

    pub(super) async fn lower_hand(
        &self,
        room: &RoomId,
        peer: &PeerId,
    ) -> Result<Option<Vec<RaisedHand>>, LiveError> {
        let [hands, order, _] = self.hand_keys(room);
        let raw: Vec<String> = self
            .send(
                "hand_lower",
                self.activity.lower.key(hands).key(order).arg(peer.as_str()),
            )
            .await?;
        Ok((!raw.is_empty()).then(|| decode_all(&raw[1..])))
    }

    pub(super) async fn hands(&self, room: &RoomId) -> Result<Vec<RaisedHand>, LiveError> {
        let [hands, order, _] = self.hand_keys(room);
        let raw: Vec<String> = self
            .send("hands", self.activity.list.key(hands).key(order))
            .await?;
        Ok(decode_all(&raw))
    }

    pub(super) async fn clear_activity(&self, room: &RoomId) -> Result<(), LiveError> {
        let (chat, bytes) = self.chat_keys(room);
        let [hands, order, seq] = self.hand_keys(room);
        self.send(
            "activity_clear",
            redis::cmd("DEL").arg(vec![chat, bytes, hands, order, seq]),
        )
        .await
    }
}
