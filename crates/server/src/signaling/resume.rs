//! Connections that drop and come back: the grace period after a socket drops, and
//! `resume-meeting`, by which a new socket takes the dropped connection's place.
//!
//! A socket that the client closed (`socket.disconnect()`, a WebSocket close frame: the
//! page was closed or reloaded) leaves its meeting at once, as before. A socket that
//! *dropped* (a transport error, a heartbeat that timed out: the network went away)
//! stays in the meeting for `RECONNECT_GRACE_SECONDS`: nobody is told, its media stays
//! in the engine (and keeps flowing if only the signaling was cut). If a socket of the
//! same user resumes it meanwhile (`resume-meeting` with the join's resume token), that
//! socket carries the connection from then on; otherwise it leaves as a disconnect
//! did before (`participant-left`, the history row's leave time).
//!
//! While the node drains (SIGTERM, `crate::tasks::drain`) every socket that goes is
//! kept so, whatever the reason: its page closed it to move to another node or to the
//! restarted process. A resume into a process that does not know the connection (it
//! restarted) re-creates it from its history row (`crate::membership::resume`); the
//! others are then told it is present, and its page opens a new media connection.
//!
//! Which socket carries a connection is told by the Socket.IO room `peer:<peerId>`,
//! which the Redis adapter makes cluster-wide: the node where the socket dropped learns
//! that the connection resumed on another node by asking who is in that room, with no
//! state of its own to share.

use std::time::Duration;

use proto::PeerId;
use proto::events::ParticipantJoined;
use proto::signaling::{ResumeMeeting, ResumeMeetingData};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};
use socketioxide::socket::DisconnectReason;
use tokio::time::Instant;

use super::emit::{broadcast, tell};
use super::request::{Payload, answer, parse, session};
use super::session::{Joined, Session};
use super::{
    SignalError, Signaling, announce, handlers, into_channels, lobby, peer_channel, room_channel,
};
use crate::membership::{LeaveWhy, PageState};

/// How often a dropped connection's node looks for a socket that resumed it.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Where a connection's socket is now, apart from the one that just went.
#[derive(Debug, PartialEq, Eq)]
enum Carrier {
    /// A socket on this node carries it.
    Here,
    /// A socket on another node of the cluster does.
    Elsewhere,
    Nowhere,
}

async fn carrier<A: Adapter>(
    io: &SocketIo<A>,
    peer: &PeerId,
    except: Option<socketioxide::socket::Sid>,
) -> Carrier {
    let channel = peer_channel(peer);
    let others = |id| Some(id) != except;
    if io
        .to(channel.clone())
        .local()
        .sockets()
        .iter()
        .any(|s| others(s.id))
    {
        return Carrier::Here;
    }
    match io.to(channel).fetch_sockets().await {
        Ok(list) if list.iter().any(|s| others(s.data().id)) => Carrier::Elsewhere,
        Ok(_) => Carrier::Nowhere,
        Err(e) => {
            // Without the cluster's answer, nobody is known to carry it: the connection
            // leaves when its time is up, as it did before resuming existed.
            tracing::warn!(peer = %peer, error = %e, "could not ask the cluster who carries a connection");
            Carrier::Nowhere
        }
    }
}

/// What the disconnect of `s`, joined as `joined`, means: `true` when the connection
/// leaves now (the caller takes it out), `false` when it was resumed by another socket
/// or stays for the grace period.
pub(super) async fn leaves_now<A: Adapter>(
    s: &SocketRef<A>,
    io: &SocketIo<A>,
    sig: &Signaling,
    joined: &Joined,
    reason: DisconnectReason,
) -> bool {
    match carrier(io, &joined.peer, Some(s.id)).await {
        Carrier::Here => return false,
        Carrier::Elsewhere => {
            sig.live().release(&joined.room, &joined.peer);
            return false;
        }
        Carrier::Nowhere => {}
    }
    let grace = sig.app().config.reconnect_grace;
    // While the node drains, a page closes its socket to reconnect elsewhere: kept too.
    let dropped = sig.app().is_draining()
        || matches!(
            reason,
            DisconnectReason::TransportError | DisconnectReason::HeartbeatTimeout
        );
    if !dropped || grace.is_zero() {
        return true;
    }
    tracing::info!(room = %joined.room, peer = %joined.peer, ?reason, "connection dropped; kept for resuming");
    tokio::spawn(hold(io.clone(), sig.clone(), joined.clone(), grace));
    false
}

/// Keep a dropped connection for `grace`; then, unless a socket resumed it, take it out
/// of the meeting as a disconnect does. At shutdown it leaves at once (history closed).
async fn hold<A: Adapter>(io: SocketIo<A>, sig: Signaling, joined: Joined, grace: Duration) {
    let until = Instant::now() + grace;
    let shutdown = sig.app().shutdown.clone();
    loop {
        let wait = until
            .saturating_duration_since(Instant::now())
            .min(LOOK_EVERY);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => break,
        }
        match carrier(&io, &joined.peer, None).await {
            Carrier::Here => return,
            Carrier::Elsewhere => {
                sig.live().release(&joined.room, &joined.peer);
                return;
            }
            Carrier::Nowhere if Instant::now() >= until => break,
            Carrier::Nowhere => {}
        }
    }
    // At shutdown: a connection that resumed on another node since the last look (a
    // drained node's pages) is that node's now.
    if shutdown.is_cancelled() && carrier(&io, &joined.peer, None).await == Carrier::Elsewhere {
        sig.live().release(&joined.room, &joined.peer);
        return;
    }
    tracing::info!(room = %joined.room, peer = %joined.peer, "dropped connection not resumed in time; it leaves");
    let why = LeaveWhy::Disconnected;
    if let Some(gone) = sig
        .membership()
        .leave(&joined.room, &joined.peer, why)
        .await
    {
        announce::left(&io, &gone).await;
    }
}

pub(super) async fn resume_meeting<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let session = session(&s)?;
        let _turn = session.turn().await;
        resume(&s, &io, &sig, &session, data).await
    }
    .await;
    answer(&s, ack, result);
}

async fn resume<A: Adapter>(
    s: &SocketRef<A>,
    io: &SocketIo<A>,
    sig: &Signaling,
    session: &Session,
    data: Payload,
) -> Result<ResumeMeetingData, SignalError> {
    let req: ResumeMeeting = parse(data)?;
    let (room, peer) = (req.room_id.clone(), req.peer_id.clone());
    if sig.app().is_draining() {
        return Err(SignalError::Draining);
    }
    handlers::leave_others(s, io, sig, session, Some(&peer)).await;
    let page = PageState {
        grants: &session.claims.grants,
        audio_enabled: req.is_audio_enabled,
        video_enabled: req.is_video_enabled,
    };
    let resumed = sig
        .membership()
        .resume(&room, &peer, &session.user, &req.resume_token, page)
        .await?;
    let joined = Joined {
        room: room.clone(),
        peer: peer.clone(),
        // A re-created connection has no media in the engine: its next offer is a first.
        in_sfu: req.has_media && !resumed.recreated,
    };
    into_channels(s, session, &joined, resumed.me.role().moderates());
    take_over(s, io, &peer).await;
    if resumed.recreated {
        // Those who resumed into the restarted process before it did not find it.
        let me = ParticipantJoined(resumed.me.to_participant());
        broadcast(s.to(room_channel(&room)), &me).await;
    }
    // Read again now that this socket is in the meeting's channel: a connection
    // re-created meanwhile is in this list, or its `participant-joined` reaches us.
    let participants = sig
        .membership()
        .present(&room)
        .await?
        .iter()
        .filter(|p| p.peer_id != peer)
        .map(|p| p.to_participant())
        .collect();
    if !s.connected() {
        // Gone again before it was answered: its disconnect may have found nothing to
        // keep. Start its grace period here, so that the connection does not stay forever.
        tokio::spawn(hold(
            io.clone(),
            sig.clone(),
            joined,
            sig.app().config.reconnect_grace,
        ));
        return Err(SignalError::NotInMeeting);
    }
    // The meeting's kept chat (`live::activity`) from `chatSince` on: RFC 3339 in UTC
    // with milliseconds, as the server stamps them, so the text orders as the time does.
    // The same millisecond is included (two messages may share it); the page drops the
    // one it has.
    let since = req.chat_since.as_deref();
    let chat = sig
        .live()
        .chat_history(&room)
        .await
        .map_err(crate::membership::MembershipError::from)?
        .into_iter()
        .filter(|m| since.is_none_or(|s| m.timestamp.as_str() >= s))
        .collect();
    if resumed.me.role().moderates() {
        lobby::show_host(s, sig, &room).await;
    }
    if let Some(r) = sig.app().recorder.status(&room) {
        tell(s, &announce::recording_started(&room, &r));
    }
    tracing::info!(room = %room, peer = %peer, user = %session.user, "resumed");
    Ok(ResumeMeetingData {
        room_id: room,
        peer_id: peer,
        is_host: resumed.me.is_host,
        meeting: resumed.meeting.json,
        participants,
        me: resumed.me.to_participant(),
        chat,
        media_reset: resumed.recreated,
    })
}

/// The dropped socket may not have noticed yet (its heartbeat runs for a while): it is
/// disconnected now, and its disconnect finds this socket carrying the connection.
async fn take_over<A: Adapter>(s: &SocketRef<A>, io: &SocketIo<A>, peer: &PeerId) {
    let Ok(sockets) = io.to(peer_channel(peer)).fetch_sockets().await else {
        return;
    };
    for old in sockets.into_iter().filter(|o| o.data().id != s.id) {
        let _ = old.disconnect().await;
    }
}
