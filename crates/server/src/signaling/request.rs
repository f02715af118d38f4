//! What every event handler does with a request: parse and validate its payload, find
//! the caller's session and connection, and answer with the acknowledgement.

use proto::signaling::Validate;
use proto::{Ack, ErrorBody, ErrorCode, RoomId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};

use super::session::{Joined, Session};
use super::{SignalError, Signaling};
use crate::access::{Action, check};
use crate::live::LivePeer;

/// A client event's payload, not yet parsed.
pub type Payload = TryData<Value>;

/// The payload as `T`, validated. Its `roomId`, whatever the event, is the meeting id
/// of [`crate::room_code::normalise`] from here on: the one place where an event's
/// spelling of a code (`u5hek92qjm`, `U5HE K92 QJM`) becomes the meeting it names. An
/// id that cannot name a meeting is left as sent and finds none.
pub fn parse<T: DeserializeOwned + Validate>(data: Payload) -> Result<T, SignalError> {
    let mut value = data
        .0
        .map_err(|_| SignalError::BadRequest("the payload must be a JSON object".into()))?;
    if let Some(Value::String(room)) = value.get_mut("roomId")
        && let Some(id) = crate::room_code::normalise(room)
    {
        *room = id.into_string();
    }
    let parsed: T = serde_json::from_value(value)
        .map_err(|e| SignalError::BadRequest(format!("invalid payload: {e}")))?;
    parsed.validate()?;
    Ok(parsed)
}

/// Answer the event. A refusal is logged here, once, with the ids that find it later
/// (the socket, its user, and the meeting and connection it is in): every event's
/// answer passes through this one function, so no handler can forget.
pub fn answer<A: Adapter, T: Serialize>(
    s: &SocketRef<A>,
    ack: AckSender<A>,
    result: Result<T, SignalError>,
) {
    answer_with(s, ack, result.map_err(ErrorBody::from));
}

/// [`answer`], for a handler that has already made its error the client's body.
pub fn answer_with<A: Adapter, T: Serialize>(
    s: &SocketRef<A>,
    ack: AckSender<A>,
    result: Result<T, ErrorBody>,
) {
    let ack_body: Ack<T> = match result {
        Ok(v) => Ack::ok(v),
        Err(e) => {
            log_refusal(s, &e);
            Ack::err(e)
        }
    };
    if let Err(e) = ack.send(&ack_body) {
        tracing::debug!(error = %e, "could not send acknowledgement");
    }
}

/// `event refused` at `info`. Waiting in the lobby is not a refusal (`lobby:waiting`
/// told the socket). An `INTERNAL` one's cause was logged at `error` where it was made
/// into the client's body ([`ErrorBody::from`]); this line adds whose request it was.
fn log_refusal<A: Adapter>(s: &SocketRef<A>, e: &ErrorBody) {
    if e.code == ErrorCode::InLobby {
        return;
    }
    let session = s.extensions.get::<Session>();
    let user = session.as_ref().map(|x| x.user.to_string());
    let joined = session.as_ref().and_then(Session::joined);
    tracing::info!(
        socket = %s.id,
        user = user.as_deref().unwrap_or(""),
        room = joined.as_ref().map(|j| j.room.as_str()).unwrap_or(""),
        peer = joined.as_ref().map(|j| j.peer.to_string()).unwrap_or_default(),
        code = e.code.as_str(),
        error = %e.message,
        "event refused"
    );
}

pub fn session<A: Adapter>(s: &SocketRef<A>) -> Result<Session, SignalError> {
    // The middleware inserts it before any handler runs; its absence is a bug.
    s.extensions
        .get::<Session>()
        .ok_or_else(|| SignalError::Internal(anyhow::anyhow!("socket without session")))
}

/// The caller's connection in `room`, checked against the live registry.
pub async fn joined_peer<A: Adapter>(
    s: &SocketRef<A>,
    sig: &Signaling,
    room: &RoomId,
) -> Result<(Session, Joined, LivePeer), SignalError> {
    let session = session(s)?;
    let joined = session
        .joined()
        .filter(|j| &j.room == room)
        .ok_or(SignalError::NotInMeeting)?;
    match sig.membership().current(room, &joined.peer).await? {
        Some(peer) => Ok((session, joined, peer)),
        None => {
            session.clear_if(&joined.peer);
            Err(SignalError::NotInMeeting)
        }
    }
}

/// The caller's connection in `room`, if its grants and role there allow `action`
/// (`crate::access`'s table; `FORBIDDEN` with the grant otherwise). Every handler of an
/// event about a meeting starts here.
pub async fn member<A: Adapter>(
    s: &SocketRef<A>,
    sig: &Signaling,
    room: &RoomId,
    action: Action,
) -> Result<(Session, Joined, LivePeer), SignalError> {
    let (session, joined, me) = joined_peer(s, sig, room).await?;
    check(&session.claims.grants, me.role(), room, action)?;
    Ok((session, joined, me))
}

/// Events nobody handles. Answered, when the client asked for an ack, so that it does
/// not wait for one that never comes.
pub async fn unknown_event<A: Adapter>(s: SocketRef<A>, Event(name): Event, ack: AckSender<A>) {
    let shown: String = name.chars().take(64).collect();
    answer::<A, Value>(
        &s,
        ack,
        Err(SignalError::BadRequest(format!("unknown event `{shown}`"))),
    );
}
