//! The per-socket (and, for joins, per-user) event limit, in the one place every event
//! passes through: each handler is registered wrapped in [`limited`].
//!
//! The check runs in socketioxide's dispatch, before the handler's task is spawned: a
//! refused event is answered with a `RATE_LIMITED` ack at once and never reaches the
//! database, the registry or the media engine. A socket flooding `join-meeting` used to
//! queue thousands of tasks on the database pool in front of everybody else's joins;
//! now it costs a compare per event. A socket that keeps sending after being refused
//! ([`crate::limits::REFUSALS_BEFORE_DISCONNECT`] in 10 s) is disconnected: even a
//! refused event costs parsing and an answer, and an honest client stops at the first.
//! Its user is then cut off for [`crate::limits::CUT_OFF`]: new connections are refused
//! at the handshake, so the flood cannot simply reconnect and go on.

use std::sync::Arc;

use proto::{Ack, ErrorBody};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, State};
use socketioxide::handler::{FromMessageParts, MessageHandler, Value};
use socketioxide::socket::Socket;

use super::session::Session;
use super::{SignalError, Signaling};
use crate::limits::{EventKind, RateLimited, SocketLimits, UserAction};

/// A handler behind the limits of its [`EventKind`].
#[derive(Clone, Debug)]
pub struct Limited<H> {
    kind: EventKind,
    inner: H,
}

/// `inner`, counted against the socket's `kind` allowance (and the user's, for joins).
pub fn limited<H>(kind: EventKind, inner: H) -> Limited<H> {
    Limited { kind, inner }
}

impl<A, T, H> MessageHandler<A, T> for Limited<H>
where
    A: Adapter,
    T: Send + Sync + 'static,
    H: MessageHandler<A, T>,
{
    fn call(&self, s: Arc<Socket<A>>, mut v: Value, ack_id: Option<i64>) {
        match check(&s, &mut v, &ack_id, self.kind) {
            Ok(()) => self.inner.call(s, v, ack_id),
            Err(Refusal::Disconnect) => {
                tracing::warn!(socket = %s.id, kind = self.kind.as_str(), "disconnecting a socket that kept sending past its rate limit");
                if let Err(e) = s.disconnect() {
                    tracing::debug!(error = %e, "could not disconnect a flooding socket");
                }
            }
            Err(Refusal::Limited(limited)) => {
                tracing::debug!(socket = %s.id, kind = self.kind.as_str(), "event rate limited");
                // Without an ack id the client asked for no answer; the event is dropped.
                if ack_id.is_some() {
                    let Ok(ack) = AckSender::from_message_parts(&s, &mut v, &ack_id);
                    let body: Ack<()> = Ack::err(ErrorBody::from(SignalError::from(limited)));
                    if let Err(e) = ack.send(&body) {
                        tracing::debug!(error = %e, "could not send acknowledgement");
                    }
                }
            }
        }
    }
}

enum Refusal {
    /// Answer `RATE_LIMITED`.
    Limited(RateLimited),
    /// The socket ignores its refusals: close it.
    Disconnect,
}

fn check<A: Adapter>(
    s: &Arc<Socket<A>>,
    v: &mut Value,
    ack_id: &Option<i64>,
    kind: EventKind,
) -> Result<(), Refusal> {
    if kind == EventKind::Leave {
        return Ok(());
    }
    // The state is set when the router is built; without it nothing can be limited.
    let Ok(State(sig)) = State::<Signaling>::from_message_parts(s, v, ack_id) else {
        return Ok(());
    };
    let limits = sig.app().limits.clone();
    // Made on the socket's first event: one socket's events are dispatched one at a
    // time by its connection's reader, so two cannot race to create them.
    let cells = match s.extensions.get::<Arc<SocketLimits>>() {
        Some(cells) => cells,
        None => {
            let cells = Arc::new(limits.socket());
            s.extensions.insert(cells.clone());
            cells
        }
    };
    let verdict = cells.check(kind).and_then(|()| match kind {
        EventKind::Join => match s.extensions.get::<Session>() {
            Some(session) => limits.check_user(UserAction::Join, &session.user),
            None => Ok(()),
        },
        _ => Ok(()),
    });
    match verdict {
        Ok(()) => Ok(()),
        Err(_) if !cells.tolerate_refusal() => {
            // And keep its user from coming straight back (`limits::CUT_OFF`).
            if let Some(session) = s.extensions.get::<Session>() {
                limits.cut_off(&session.user);
            }
            Err(Refusal::Disconnect)
        }
        Err(limited) => Err(Refusal::Limited(limited)),
    }
}
