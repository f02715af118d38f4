//! The pub/sub driver under the Socket.IO Redis adapter.
//!
//! socketioxide-redis ships a driver on one `MultiplexedConnection`: when Redis restarts,
//! that connection is gone for good and the node stops hearing the others' broadcasts
//! (a server offer for a participant whose socket is on another node never arrives).
//! This driver uses the redis crate's `ConnectionManager`, which reconnects with backoff
//! and re-subscribes every channel by itself, so a node re-syncs when Redis returns.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, PushInfo, PushKind, Value};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

#[derive(Clone)]
pub struct ResilientDriver {
    handlers: Handlers,
    conn: ConnectionManager,
}

impl std::fmt::Debug for ResilientDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientDriver").finish_non_exhaustive()
    }
}

/// A pushed `message` (channel, payload), or `None` for every other push.
fn message(push: PushInfo) -> Option<(String, Vec<u8>)> {
    if !matches!(push.kind, PushKind::Message | PushKind::SMessage) {
        return None;
    }
    let mut data = push.data.into_iter();
    let channel: String = redis::from_redis_value(data.next()?).ok()?;
    let payload: Vec<u8> = match data.next()? {
        Value::BulkString(b) => b,
        other => redis::from_redis_value(other).ok()?,
    };
    Some((channel, payload))
}

fn deliver(handlers: &Handlers, push: PushInfo) {
    let Some((channel, payload)) = message(push) else {
        return;
    };
    let guard = handlers.read().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = guard.get(&channel)
        && tx.try_send((channel, payload)).is_err()
    {
        tracing::warn!("Socket.IO adapter queue full or closed; a cluster message was dropped");
    }
}

impl ResilientDriver {
    pub async fn connect(client: &redis::Client) -> redis::RedisResult<Self> {
        let handlers: Handlers = Arc::default();
        let sink = handlers.clone();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_max_delay(Duration::from_secs(5))
            .set_automatic_resubscription()
            .set_push_sender(move |push: PushInfo| {
                deliver(&sink, push);
                Ok::<(), std::convert::Infallible>(())
            });
        let conn = ConnectionManager::new_with_config(client.clone(), config).await?;
        Ok(ResilientDriver { handlers, conn })
    }
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DriverError(#[from] redis::RedisError);

impl Driver for ResilientDriver {
    type Error = DriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        let _: Value = self.conn.clone().publish(chan, val).await?;
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        // Register first, so that nothing published right after SUBSCRIBE is lost.
        self.handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(chan.clone(), tx);
        self.conn.clone().subscribe(chan.as_str()).await?;
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&chan);
        self.conn.clone().unsubscribe(chan).await?;
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(count)
    }
}
