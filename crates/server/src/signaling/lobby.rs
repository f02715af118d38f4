//! The lobby at the socket edge (rules in [`crate::membership`]'s lobby): a joiner the
//! meeting makes wait is told `lobby:waiting` and joins only its ticket's channel
//! (`peer:<ticket>`), none of the meeting's, so nothing of the meeting reaches it; the
//! host's connections (in `hosts:<roomId>`) are told `lobby:updated` whenever the lobby
//! changes; `lobby-admit` / `lobby-deny` reach the waiting socket on whichever node it
//! is, through the adapter.

use proto::RoomId;
use proto::events::{LobbyAdmitted, LobbyDenied, LobbyUpdated, LobbyWaiting};
use proto::signaling::LobbyDecision;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};

use super::emit::{emit_to, tell};
use super::request::{Payload, answer, member, parse};
use super::session::Session;
use super::{SignalError, Signaling, hosts_channel, peer_channel};
use crate::access::Action;
use crate::live::{LobbyEntry, Pick};
use crate::membership::Candidate;

fn updated(room: &RoomId, waiting: &[LobbyEntry]) -> LobbyUpdated {
    LobbyUpdated {
        room_id: room.clone(),
        waiting: waiting.iter().map(LobbyEntry::to_waiting).collect(),
    }
}

/// `lobby:updated` to the host's connections of `room`, on every node.
pub async fn tell_hosts<A: Adapter>(io: &SocketIo<A>, room: &RoomId, waiting: &[LobbyEntry]) {
    emit_to(io, hosts_channel(room), &updated(room, waiting)).await;
}

/// A host that just joined learns who is already waiting.
pub async fn show_host<A: Adapter>(s: &SocketRef<A>, sig: &Signaling, room: &RoomId) {
    match sig.membership().waiting(room).await {
        Ok(waiting) if !waiting.is_empty() => tell(s, &updated(room, &waiting)),
        Ok(_) => {}
        Err(e) => tracing::warn!(room = %room, error = %e, "could not read the lobby"),
    }
}

/// Put the joining socket in `room`'s lobby. Answers the join with `IN_LOBBY` (the
/// usual outcome) or with why it could not wait.
pub async fn knock<A: Adapter>(
    s: &SocketRef<A>,
    io: &SocketIo<A>,
    sig: &Signaling,
    session: &Session,
    room: &RoomId,
    candidate: Candidate,
) -> SignalError {
    let knock = match sig.membership().knock(room, candidate).await {
        Ok(k) => k,
        Err(e) => return e.into(),
    };
    let ticket = knock.entry.peer_id.clone();
    s.join(peer_channel(&ticket));
    session.set_waiting(Some((room.clone(), ticket.clone())));
    // Gone while it knocked (its disconnect may have run before this turn began).
    if !s.connected() {
        leave_waiting(s, io, sig, session).await;
        return SignalError::NotInMeeting;
    }
    let note = LobbyWaiting {
        room_id: room.clone(),
        peer_id: ticket.clone(),
        user_name: knock.entry.user_name.clone(),
    };
    tell(s, &note);
    tell_hosts(io, room, &knock.waiting).await;
    tracing::info!(room = %room, ticket = %ticket, user = %knock.entry.user_id, "waiting in the lobby");
    SignalError::InLobby
}

/// Take the socket out of the lobby it waits in, if any (it joins again, leaves or
/// disconnects), and tell the hosts if that changed the lobby.
pub async fn leave_waiting<A: Adapter>(
    s: &SocketRef<A>,
    io: &SocketIo<A>,
    sig: &Signaling,
    session: &Session,
) {
    let Some((room, ticket)) = session.set_waiting(None) else {
        return;
    };
    s.leave(peer_channel(&ticket));
    match sig.membership().leave_lobby(&room, &ticket).await {
        Ok(Some(waiting)) => tell_hosts(io, &room, &waiting).await,
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(room = %room, ticket = %ticket, error = %e, "could not leave the lobby")
        }
    }
}

pub async fn lobby_admit<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    answer(&s, ack, decide(&s, &io, &sig, data, true).await);
}

pub async fn lobby_deny<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    answer(&s, ack, decide(&s, &io, &sig, data, false).await);
}

/// The host's decision: the waiting sockets taken are told (`lobby:admitted`: join
/// again; `lobby:denied`), the hosts see the new lobby. Answers how many were decided.
async fn decide<A: Adapter>(
    s: &SocketRef<A>,
    io: &SocketIo<A>,
    sig: &Signaling,
    data: Payload,
    admit: bool,
) -> Result<Value, SignalError> {
    let req: LobbyDecision = parse(data)?;
    let room = req.room_id.clone();
    let action = if admit {
        Action::LobbyAdmit
    } else {
        Action::LobbyDeny
    };
    let (_, _, me) = member(s, sig, &room, action).await?;
    let pick = match req.peer_id {
        Some(p) if !req.all => Pick::One(p),
        _ => Pick::All,
    };
    let decision = sig.membership().decide(&room, &me, &pick, admit).await?;
    for entry in &decision.taken {
        let channel = peer_channel(&entry.peer_id);
        if admit {
            let note = LobbyAdmitted {
                room_id: room.clone(),
                by: me.user_id.clone(),
            };
            emit_to(io, channel, &note).await;
        } else {
            let note = LobbyDenied {
                room_id: room.clone(),
                by: Some(me.user_id.clone()),
                ended: false,
            };
            emit_to(io, channel, &note).await;
        }
    }
    tell_hosts(io, &room, &decision.waiting).await;
    tracing::info!(room = %room, by = %me.user_id, admit, decided = decision.taken.len(), "lobby decision");
    Ok(json!({ "decided": decision.taken.len() }))
}

/// The meeting ended: everyone still waiting is told so.
pub async fn end<A: Adapter>(io: &SocketIo<A>, sig_live: &crate::live::LiveRooms, room: &RoomId) {
    let waiting = match sig_live.clear_lobby(room).await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(room = %room, error = %e, "could not clear the lobby; its keys will expire");
            return;
        }
    };
    for entry in waiting {
        let note = LobbyDenied {
            room_id: room.clone(),
            by: None,
            ended: true,
        };
        emit_to(io, peer_channel(&entry.peer_id), &note).await;
    }
}
