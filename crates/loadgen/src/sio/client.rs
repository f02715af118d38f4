//! A Socket.IO v4 client over one WebSocket (no long-polling, default namespace only).
//!
//! A reader task answers the server's heartbeats, resolves acks and forwards events to
//! an unbounded channel; a writer task owns the sink, so emitting never waits on reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::frame::{EioPacket, SioPacket, encode_connect, encode_event, parse_eio, parse_sio};

/// An event the server pushed: name and arguments.
#[derive(Debug)]
pub struct ServerEvent {
    pub name: String,
    pub args: Vec<Value>,
}

impl ServerEvent {
    /// The event as `E`, if it is `E`'s event ([`proto::events::ServerEvent::NAME`]);
    /// an error if it is, but its body does not parse as `E`.
    pub fn decode<E>(&self) -> Option<anyhow::Result<E>>
    where
        E: proto::events::ServerEvent + serde::de::DeserializeOwned,
    {
        if self.name != E::NAME {
            return None;
        }
        let parsed = self
            .args
            .first()
            .cloned()
            .ok_or_else(|| anyhow!("empty {}", E::NAME))
            .and_then(|body| {
                serde_json::from_value(body).with_context(|| format!("malformed {}", E::NAME))
            });
        Some(parsed)
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Vec<Value>>>>>;

/// A connected socket. Dropping it closes the connection (the writer task ends when
/// every sender is gone, and the reader when the server closes).
#[derive(Debug, Clone)]
pub struct SioClient {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
    /// The reader and writer tasks, which own the two halves of the TCP stream.
    tasks: Arc<[tokio::task::AbortHandle; 2]>,
}

/// `http://host:port` → `ws://host:port/socket.io/?EIO=4&transport=websocket`.
pub fn socket_url(base: &str) -> anyhow::Result<String> {
    let base = base.trim_end_matches('/');
    let rest = if let Some(r) = base.strip_prefix("http://") {
        format!("ws://{r}")
    } else if let Some(r) = base.strip_prefix("https://") {
        format!("wss://{r}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        bail!("the URL must start with http:// or ws:// (got {base:?})");
    };
    Ok(format!("{rest}/socket.io/?EIO=4&transport=websocket"))
}

impl SioClient {
    /// Opens the WebSocket, waits for the Engine.IO handshake, connects to the default
    /// namespace with `{ token }` and waits for the server's verdict.
    pub async fn connect(
        base: &str,
        token: &str,
        timeout: Duration,
    ) -> anyhow::Result<(SioClient, mpsc::UnboundedReceiver<ServerEvent>)> {
        SioClient::connect_with_auth(base, serde_json::json!({ "token": token }), timeout).await
    }

    /// [`Self::connect`] with any `auth` payload; `Value::Null` sends none (as a client
    /// of the service we replace does, `io(url)`).
    pub async fn connect_with_auth(
        base: &str,
        auth: Value,
        timeout: Duration,
    ) -> anyhow::Result<(SioClient, mpsc::UnboundedReceiver<ServerEvent>)> {
        let url = socket_url(base)?;
        let (ws, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(url.as_str()))
            .await
            .context("WebSocket connect timed out")?
            .context("WebSocket connect")?;
        let (mut sink, mut stream) = ws.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let (connected_tx, connected_rx) = oneshot::channel::<Result<(), String>>();

        let writer = tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });

        let reader_out = out_tx.clone();
        let reader_pending = pending.clone();
        let reader = tokio::spawn(async move {
            let mut connected = Some(connected_tx);
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(packet) = parse_eio(text.as_str()) else {
                    continue;
                };
                match packet {
                    EioPacket::Open(_) => {
                        let _ = reader_out.send(Message::text(encode_connect(&auth)));
                    }
                    EioPacket::Ping => {
                        let _ = reader_out.send(Message::text("3"));
                    }
                    EioPacket::Close => break,
                    EioPacket::Message(inner) => match parse_sio(inner) {
                        Ok(SioPacket::Connect(_)) => {
                            if let Some(tx) = connected.take() {
                                let _ = tx.send(Ok(()));
                            }
                        }
                        Ok(SioPacket::ConnectError(v)) => {
                            let message = v
                                .get("message")
                                .and_then(Value::as_str)
                                .unwrap_or("refused");
                            if let Some(tx) = connected.take() {
                                let _ = tx.send(Err(message.to_owned()));
                            }
                        }
                        Ok(SioPacket::Event { name, args, .. }) => {
                            let _ = ev_tx.send(ServerEvent { name, args });
                        }
                        Ok(SioPacket::Ack { id, args }) => {
                            if let Some(tx) = reader_pending.lock().await.remove(&id) {
                                let _ = tx.send(args);
                            }
                        }
                        Ok(SioPacket::Disconnect) => break,
                        Err(_) => {}
                    },
                    EioPacket::Pong | EioPacket::Upgrade | EioPacket::Noop => {}
                }
            }
            // Whoever waits for an ack learns that none will come.
            reader_pending.lock().await.clear();
        });

        let tasks = Arc::new([writer.abort_handle(), reader.abort_handle()]);
        let verdict = match tokio::time::timeout(timeout, connected_rx).await {
            Err(_) => Err(anyhow!("Socket.IO connect timed out")),
            Ok(Err(_)) => Err(anyhow!(
                "the server closed the connection during the handshake"
            )),
            Ok(Ok(Err(message))) => Err(anyhow!("connection refused: {message}")),
            Ok(Ok(Ok(()))) => Ok(()),
        };
        if let Err(e) = verdict {
            // Nobody will use this connection: do not leave it open.
            for task in tasks.iter() {
                task.abort();
            }
            return Err(e);
        }
        Ok((
            SioClient {
                out: out_tx,
                pending,
                next_id: Arc::new(AtomicU64::new(0)),
                tasks,
            },
            ev_rx,
        ))
    }

    /// Emits without asking for an ack.
    pub fn emit(&self, name: &str, data: &Value) -> anyhow::Result<()> {
        self.out
            .send(Message::text(encode_event(None, name, data)))
            .map_err(|_| anyhow!("the connection is closed"))
    }

    /// Emits and waits for the ack; returns the ack's first argument.
    pub async fn request(
        &self,
        name: &str,
        data: &Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().await.insert(id, tx);
        self.out
            .send(Message::text(encode_event(Some(id), name, data)))
            .map_err(|_| anyhow!("the connection is closed"))?;
        let args = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(args)) => args,
            Ok(Err(_)) => bail!("connection closed before the `{name}` ack"),
            Err(_) => {
                self.pending.lock().await.remove(&id);
                bail!("no ack for `{name}` within {timeout:?}");
            }
        };
        args.into_iter()
            .next()
            .ok_or_else(|| anyhow!("empty ack for `{name}`"))
    }

    /// [`Self::request`] for the `{ ok, data | error }` acks of our protocol.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        data: &Value,
        timeout: Duration,
    ) -> anyhow::Result<T> {
        let ack = self.request(name, data, timeout).await?;
        parse_ack(name, ack)
    }

    /// Closes the WebSocket.
    pub fn close(&self) {
        let _ = self.out.send(Message::Close(None));
    }

    /// Drops the TCP connection as a crashed client or a lost network would: no
    /// WebSocket close frame, no Socket.IO disconnect, nothing more flushed. The two
    /// tasks that own the stream's halves end, and with them the socket.
    pub fn abort(&self) {
        for task in self.tasks.iter() {
            task.abort();
        }
    }
}

/// The server refused a request (`{ ok: false, error }`): the error it answered, typed,
/// so that a caller tells a refusal's kind by its code
/// (`e.downcast_ref::<Refused>()`, or [`refusal`]) and never by the error's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The request's event name, e.g. `join-meeting`.
    pub event: String,
    pub error: proto::ErrorBody,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` refused: {}: {}",
            self.event,
            self.error.code.as_str(),
            self.error.message
        )
    }
}

impl std::error::Error for Refused {}

/// The code the server refused with, if `e` is (or wraps) a [`Refused`]; `None` for
/// every other failure (a timeout, a closed connection, a malformed ack).
pub fn refusal(e: &anyhow::Error) -> Option<proto::ErrorCode> {
    e.downcast_ref::<Refused>().map(|r| r.error.code)
}

/// Reads a `{ ok, data | error }` ack; a refusal is a [`Refused`]. (Not
/// `proto::Ack<T>`: its derive wants `T: Default`, which the payload types do not
/// implement.)
pub fn parse_ack<T: serde::de::DeserializeOwned>(name: &str, mut ack: Value) -> anyhow::Result<T> {
    if ack.get("ok").and_then(Value::as_bool) == Some(true) {
        let data = ack.get_mut("data").map(Value::take).unwrap_or(Value::Null);
        return serde_json::from_value(data)
            .with_context(|| format!("malformed `{name}` ack data"));
    }
    let error = ack.get("error").cloned().unwrap_or(Value::Null);
    match serde_json::from_value::<proto::ErrorBody>(error) {
        Ok(error) => Err(Refused {
            event: name.to_owned(),
            error,
        }
        .into()),
        Err(_) => bail!("`{name}` refused with a malformed ack: {ack}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_read_both_ways() {
        let v: Value =
            parse_ack("x", serde_json::json!({"ok": true, "data": {"a": 1}})).expect("ok");
        assert_eq!(v["a"], 1);
        let e = parse_ack::<Value>(
            "join-meeting",
            serde_json::json!({"ok": false, "error": {"code": "ROOM_FULL", "message": "full"}}),
        )
        .expect_err("refused");
        assert_eq!(refusal(&e), Some(proto::ErrorCode::RoomFull), "{e}");
        // The text stays what the soak and scenario reports print.
        assert_eq!(e.to_string(), "`join-meeting` refused: ROOM_FULL: full");
        // Context added on the way up does not hide the code.
        assert_eq!(
            refusal(&e.context("seat 3")),
            Some(proto::ErrorCode::RoomFull)
        );
        let malformed =
            parse_ack::<Value>("x", serde_json::json!({"nonsense": 1})).expect_err("malformed");
        assert_eq!(refusal(&malformed), None, "{malformed}");
    }

    #[test]
    fn socket_urls() {
        assert_eq!(
            socket_url("http://127.0.0.1:3000/").expect("url"),
            "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket"
        );
        assert!(socket_url("127.0.0.1:3000").is_err());
    }
}
