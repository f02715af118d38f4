//! Several nodes behaving as one service, through Redis.
//!
//! - [`Cluster`]: this node's identity and its Redis connection (reconnects by itself,
//!   with backoff, through the redis crate's connection manager).
//! - [`adapter_driver`]: the Socket.IO Redis adapter's connection, which reconnects.
//! - [`placement`]: which node hosts a meeting's SFU room (a lease in Redis). The
//!   request/reply channel that lets any node drive a room on another one is the media
//!   router's (`crate::media::cluster`), and the live registry's Redis implementation is
//!   `crate::live::redis`: both use this module, never the other way round.
//!
//! Keys (all under `REDIS_KEY_PREFIX`, default `meeting-service:`):
//!
//! | key | type | what |
//! |---|---|---|
//! | `room:{roomId}:peers` | hash | peerId → participant JSON (who, media state, node) |
//! | `room:{roomId}:alive` | sorted set | peerId → expiry (ms); refreshed by the peer's node |
//! | `room:{roomId}:owner` | string | node id hosting the SFU room; a lease (`PX`) renewed by it |
//! | `node:{nodeId}:rpc` | pub/sub channel | SFU and recording requests for rooms that node hosts |
//! | `reply:{nodeId}` | pub/sub channel | answers to the requests a node sent |
//!
//! Socket.IO's own channels (the socketioxide-redis adapter) use the prefix
//! `{REDIS_KEY_PREFIX}socket.io`.

pub mod adapter_driver;
pub mod placement;

use std::time::Duration;

use redis::aio::ConnectionManager;

/// How long a participant stays in the registry without its node refreshing it. A node
/// that crashes leaves entries that count against the cap for at most this long.
pub const PEER_LEASE: Duration = Duration::from_secs(30);
/// How often a node refreshes its participants and its room leases.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// This node's handle on the cluster.
#[derive(Clone)]
pub struct Cluster {
    pub node_id: String,
    pub prefix: String,
    pub client: redis::Client,
    pub conn: ConnectionManager,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "Redis at {url} is unreachable ({cause}); start it, fix REDIS_URL, or unset REDIS_URL to run as a single node"
    )]
    Unreachable {
        url: String,
        cause: redis::RedisError,
    },
}

impl Cluster {
    /// Connects and checks that Redis answers; refusing to start beats starting a node
    /// that cannot see the others.
    pub async fn connect(url: &str, prefix: &str) -> Result<Cluster, ClusterError> {
        let redacted = crate::config::redact_url(url);
        let unreachable = |cause| ClusterError::Unreachable {
            url: redacted.clone(),
            cause,
        };
        let client = redis::Client::open(with_resp3(url)).map_err(unreachable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(3);
        let mut conn = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| unreachable(redis::RedisError::from((redis::ErrorKind::Io, "timed out"))))?
        .map_err(unreachable)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unreachable)?;
        let node_id = format!(
            "n_{}",
            proto::PeerId::random().as_str().trim_start_matches("p_")
        );
        Ok(Cluster {
            node_id,
            prefix: prefix.to_owned(),
            client,
            conn,
        })
    }

    /// Builds a namespaced key: `cluster.key(format_args!("room:{id}:peers"))`.
    pub fn key(&self, parts: std::fmt::Arguments<'_>) -> String {
        format!("{}{}", self.prefix, parts)
    }
}

/// The Socket.IO adapter's pub/sub needs RESP3; add `protocol=resp3` unless the URL
/// chose a protocol itself.
fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn resp3_is_added_once() {
        assert_eq!(
            super::with_resp3("redis://h:6379"),
            "redis://h:6379?protocol=resp3"
        );
        assert_eq!(
            super::with_resp3("redis://h/0?x=1"),
            "redis://h/0?x=1&protocol=resp3"
        );
        assert_eq!(
            super::with_resp3("redis://h?protocol=resp2"),
            "redis://h?protocol=resp2"
        );
    }
}
