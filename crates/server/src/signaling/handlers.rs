//! One function per client event. Each parses and validates its payload, does its work
//! and answers with exactly one acknowledgement (`{ ok, data | error }`).

use std::fmt;

use chrono::Utc;
use proto::signaling::{
    ChatMessage, ChatSend, HostMute, HostRemove, JoinMeeting, MediaKind, ParticipantLeft, Relay,
    RelayKind, RoomOnly, SfuAnswer, SfuOffer, Toggle, ToggleScreenShare, Validate,
};
use proto::{Ack, ErrorBody, ErrorCode, PeerId, RoomId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::DefinedAdapter;
use tokio_util::sync::CancellationToken;

use super::records::{self, Topology};
use super::session::{Joined, Session};
use super::throttle::limited;
use super::{SignalError, Signaling, media, peer_channel, room_channel};
use crate::limits::EventKind;
use crate::live::{LiveChange, LivePeer};

/// Register the `/` namespace. With a remote adapter (Redis) the result is a future
/// that completes once the adapter is subscribed.
pub fn register<A: Adapter + DefinedAdapter>(io: &SocketIo<A>) -> A::InitRes {
    io.ns("/", on_connect::<A>.with(authenticate::<A>))
}

/// Why a connection was refused. Socket.IO's `connect_error` carries only a message, so
/// the code leads it (`TOKEN_EXPIRED: …`).
#[derive(Debug)]
pub struct Refused(&'static str, String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0, self.1)
    }
}

async fn authenticate<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    TryData(auth): TryData<Value>,
) -> Result<(), Refused> {
    let token = auth
        .ok()
        .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_owned))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Refused("TOKEN_MISSING", "connect with auth: { token }".into()))?;
    let claims = sig
        .app()
        .jwt
        .verify(&token)
        .map_err(|e| Refused(e.code(), e.to_string()))?;
    let session = Session::new(claims);
    s.extensions.insert(session.clone());
    tokio::spawn(expire(s.clone(), session, sig.app().shutdown.clone()));
    // The event handlers are registered here, in the middleware, and not in the connect
    // handler: socketioxide sends the CONNECT packet before it spawns the (async) connect
    // handler, so a client that emits right after connecting (the web client's
    // `join-meeting`) could reach a socket without handlers: no handler, no ack.
    register_events(&s);
    Ok(())
}

async fn on_connect<A: Adapter>(_s: SocketRef<A>) {}

/// A socket lives no longer than its token: at `exp` (plus the leeway a connect gets) it
/// is told `session:expired` and disconnected, which leaves its meeting as any
/// disconnect does. The client reconnects with a fresh token.
async fn expire<A: Adapter>(s: SocketRef<A>, session: Session, shutdown: CancellationToken) {
    let left = session
        .expires_at()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    tokio::select! {
        _ = tokio::time::sleep(left) => {}
        _ = session.closed().cancelled() => return,
        _ = shutdown.cancelled() => return,
    }
    let note = ErrorBody::new(
        ErrorCode::TokenExpired,
        "the token has expired; connect again with a fresh one",
    );
    let _ = s.emit("session:expired", &json!({ "error": note }));
    tracing::info!(user = %session.user, "token expired; disconnecting");
    let _ = s.disconnect();
}

/// Events nobody handles. Answered, when the client asked for an ack, so that it does
/// not wait for one that never comes.
async fn unknown_event<A: Adapter>(Event(name): Event, ack: AckSender<A>) {
    let shown: String = name.chars().take(64).collect();
    answer::<A, Value>(
        ack,
        Err(SignalError::BadRequest(format!("unknown event `{shown}`"))),
    );
}

/// Every event is registered through [`limited`]: the rate limit of its kind is checked
/// before its handler runs.
fn register_events<A: Adapter>(s: &SocketRef<A>) {
    use EventKind::{Chat, Control, Join, Leave, Media};
    s.on("join-meeting", limited(Join, join_meeting::<A>));
    s.on("leave-meeting", limited(Leave, leave_meeting::<A>));
    s.on("sfu-offer", limited(Media, sfu_offer::<A>));
    s.on("sfu-answer", limited(Media, sfu_answer::<A>));
    s.on("toggle-audio", limited(Control, toggle_audio::<A>));
    s.on("toggle-video", limited(Control, toggle_video::<A>));
    s.on(
        "toggle-screen-share",
        limited(Control, toggle_screen_share::<A>),
    );
    s.on("meeting-chat-message", limited(Chat, chat::<A>));
    s.on("host-mute", limited(Control, host_mute::<A>));
    s.on("host-remove", limited(Control, host_remove::<A>));
    s.on("host-allow", limited(Control, host_allow::<A>));
    s.on("end-meeting", limited(Control, end_meeting::<A>));
    s.on("webrtc-offer", limited(Media, relay_offer::<A>));
    s.on("webrtc-answer", limited(Media, relay_answer::<A>));
    s.on("ice-candidate", limited(Media, relay_candidate::<A>));
    s.on_fallback(unknown_event::<A>);
    s.on_disconnect(on_disconnect::<A>);
}

type Payload = TryData<Value>;

fn parse<T: DeserializeOwned + Validate>(data: Payload) -> Result<T, SignalError> {
    let value = data
        .0
        .map_err(|_| SignalError::BadRequest("the payload must be a JSON object".into()))?;
    let parsed: T = serde_json::from_value(value)
        .map_err(|e| SignalError::BadRequest(format!("invalid payload: {e}")))?;
    parsed.validate()?;
    Ok(parsed)
}

fn answer<A: Adapter, T: Serialize>(ack: AckSender<A>, result: Result<T, SignalError>) {
    let ack_body: Ack<T> = match result {
        Ok(v) => Ack::ok(v),
        Err(e) => Ack::err(ErrorBody::from(e)),
    };
    if let Err(e) = ack.send(&ack_body) {
        tracing::debug!(error = %e, "could not send acknowledgement");
    }
}

fn session<A: Adapter>(s: &SocketRef<A>) -> Result<Session, SignalError> {
    // The middleware inserts it before any handler runs; its absence is a bug.
    s.extensions
        .get::<Session>()
        .ok_or_else(|| SignalError::Internal(anyhow::anyhow!("socket without session")))
}

/// The caller's connection in `room`, checked against the live registry.
async fn membership<A: Adapter>(
    s: &SocketRef<A>,
    sig: &Signaling,
    room: &RoomId,
) -> Result<(Session, Joined, LivePeer), SignalError> {
    let session = session(s)?;
    let joined = session
        .joined()
        .filter(|j| &j.room == room)
        .ok_or(SignalError::NotInMeeting)?;
    match sig.live().get(room, &joined.peer).await? {
        Some(peer) => Ok((session, joined, peer)),
        None => {
            session.clear_if(&joined.peer);
            Err(SignalError::NotInMeeting)
        }
    }
}

async fn join_meeting<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let session = session(&s)?;
        let _turn = session.turn().await;
        join(&s, &io, &sig, &session, data).await
    }
    .await;
    answer(ack, result);
}

async fn join<A: Adapter>(
    s: &SocketRef<A>,
    io: &SocketIo<A>,
    sig: &Signaling,
    session: &Session,
    data: Payload,
) -> Result<Value, SignalError> {
    let req: JoinMeeting = parse(data)?;
    let room = RoomId::new(req.room_id.as_str().trim().to_ascii_uppercase());

    // One meeting per socket: joining another one leaves the first.
    if let Some(previous) = session.joined() {
        leave(
            s,
            io,
            sig,
            session,
            &previous.room,
            &previous.peer,
            LeaveWhy::Left,
        )
        .await;
    }

    let meeting = records::load(sig, &room).await?;
    if meeting.ended {
        return Err(SignalError::MeetingEnded);
    }
    let is_host = meeting.host_id == session.user.as_str();
    if meeting.locked && !is_host {
        return Err(SignalError::RoomLocked);
    }
    if !is_host && records::is_removed(sig, &room, &session.user).await? {
        return Err(SignalError::Removed);
    }
    let limit = records::participant_cap(sig, &meeting);

    let peer = LivePeer {
        peer_id: PeerId::random(),
        user_id: session.user.clone(),
        user_name: req
            .user_name
            .map(|n| n.trim().to_owned())
            .unwrap_or_else(|| session.claims.name.clone()),
        user_picture: req.user_picture.or_else(|| session.claims.picture.clone()),
        is_host,
        audio_enabled: req.is_audio_enabled,
        video_enabled: req.is_video_enabled,
        screen_sharing: false,
        joined_at: Utc::now(),
    };
    let admitted = sig.live().admit(&room, peer.clone(), limit).await?;

    for old in admitted.replaced {
        let io_note = json!({ "roomId": room });
        let _ = io
            .to(peer_channel(&old.peer_id))
            .emit("meeting:replaced", &io_note)
            .await;
        let _ = io
            .to(peer_channel(&old.peer_id))
            .leave(room_channel(&room))
            .await;
        after_removal(io, sig, &room, &old, LeaveWhy::Replaced).await;
    }

    s.join(vec![room_channel(&room), peer_channel(&peer.peer_id)]);
    session.set_joined(Some(Joined {
        room: room.clone(),
        peer: peer.peer_id.clone(),
        in_sfu: false,
    }));
    // Undo the admission if the socket went away meanwhile (its disconnect handler
    // waits for this turn, but may have run before the turn began and found nothing to
    // leave), or the meeting ended since it was read: otherwise the peer would hold a
    // seat, and its history row stay open, for a socket or meeting that is gone.
    let refused = match records::joined(sig, &room, &peer, admitted.present).await {
        Err(e) => Some((e, LeaveWhy::Refused)),
        Ok(()) if !s.connected() => Some((SignalError::NotInMeeting, LeaveWhy::Disconnected)),
        Ok(()) => None,
    };
    if let Some((e, why)) = refused {
        leave(s, io, sig, session, &room, &peer.peer_id, why).await;
        return Err(e);
    }

    let others: Vec<_> = sig
        .live()
        .peers(&room)
        .await?
        .into_iter()
        .filter(|p| p.peer_id != peer.peer_id)
        .map(|p| p.to_participant())
        .collect();
    let ice_servers = records::ice_servers(sig, session);
    let me = peer.to_participant();

    // The original protocol's events, for frontends written against it.
    let _ = s.emit("ice-servers", &json!({ "iceServers": ice_servers }));
    let _ = s.emit(
        "joined-meeting",
        &json!({ "roomId": room, "userId": peer.user_id, "peerId": peer.peer_id, "meeting": meeting.json }),
    );
    let _ = s.emit("existing-participants", &json!({ "participants": others }));
    let _ = s
        .to(room_channel(&room))
        .emit("participant-joined", &me)
        .await;

    tracing::info!(room = %room, peer = %peer.peer_id, user = %peer.user_id, "joined");
    Ok(json!({
        "roomId": room,
        "userId": peer.user_id,
        "peerId": peer.peer_id,
        "isHost": is_host,
        "topology": meeting.topology.as_str(),
        "meeting": meeting.json,
        "participants": others,
        "self": me,
        "iceServers": ice_servers,
    }))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaveWhy {
    Left,
    Disconnected,
    Replaced,
    Removed,
    MediaFailed,
    /// Admitted, then undone: the socket or the meeting was gone by then.
    Refused,
}

/// Take `peer` out of `room`: registry, SFU, socket rooms, history, and tell the others.
#[allow(clippy::too_many_arguments)]
async fn leave<A: Adapter>(
    s: &SocketRef<A>,
    io: &SocketIo<A>,
    sig: &Signaling,
    session: &Session,
    room: &RoomId,
    peer: &PeerId,
    why: LeaveWhy,
) {
    session.clear_if(peer);
    s.leave(vec![room_channel(room), peer_channel(peer)]);
    forget_peer(io, sig, room, peer, why).await;
}

/// The part of leaving that does not need the peer's own socket, so that it also serves
/// for connections replaced, removed by the host, or failed in the SFU.
pub(crate) async fn forget_peer<A: Adapter>(
    io: &SocketIo<A>,
    sig: &Signaling,
    room: &RoomId,
    peer: &PeerId,
    why: LeaveWhy,
) {
    match sig.live().remove(room, peer).await {
        Ok(Some((gone, _remaining))) => after_removal(io, sig, room, &gone, why).await,
        Ok(None) => {}
        Err(e) => {
            // The registry entry expires by itself once this node stops refreshing it;
            // the media must stop now.
            tracing::warn!(room = %room, peer = %peer, error = %e, "could not remove a participant from the registry");
            media::leave(sig, peer);
        }
    }
}

/// Everything that follows a participant's removal from the registry.
async fn after_removal<A: Adapter>(
    io: &SocketIo<A>,
    sig: &Signaling,
    room: &RoomId,
    gone: &LivePeer,
    why: LeaveWhy,
) {
    media::leave(sig, &gone.peer_id);
    records::left(sig, room, gone).await;
    let note = ParticipantLeft {
        user_id: gone.user_id.clone(),
        peer_id: gone.peer_id.clone(),
    };
    let _ = io
        .to(room_channel(room))
        .emit("participant-left", &note)
        .await;
    tracing::info!(room = %room, peer = %gone.peer_id, ?why, "left");
}

async fn leave_meeting<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: RoomOnly = parse(data)?;
        let _turn = session(&s)?.turn().await;
        let (session, joined, _) = membership(&s, &sig, &req.room_id).await?;
        leave(
            &s,
            &io,
            &sig,
            &session,
            &joined.room,
            &joined.peer,
            LeaveWhy::Left,
        )
        .await;
        Ok(json!({}))
    }
    .await;
    answer(ack, result);
}

async fn on_disconnect<A: Adapter>(s: SocketRef<A>, io: SocketIo<A>, State(sig): State<Signaling>) {
    let Ok(session) = session(&s) else { return };
    session.closed().cancel();
    // After any join still running for this socket: what it admitted is left here.
    let _turn = session.turn().await;
    if let Some(j) = session.joined() {
        leave(
            &s,
            &io,
            &sig,
            &session,
            &j.room,
            &j.peer,
            LeaveWhy::Disconnected,
        )
        .await;
    }
}

async fn sfu_offer<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: SfuOffer = parse(data)?;
        let _turn = session(&s)?.turn().await;
        let (session, joined, _) = membership(&s, &sig, &req.room_id).await?;
        let reply = media::offer(&sig, &joined, req.sdp, &req.sources).await?;
        // Replaced by another socket or removed by the host while the SFU worked: their
        // leave dropped the media before this offer created it, so drop it now.
        if sig.live().get(&joined.room, &joined.peer).await?.is_none() {
            media::leave(&sig, &joined.peer);
            session.clear_if(&joined.peer);
            return Err(SignalError::NotInMeeting);
        }
        session.set_in_sfu(&joined.peer);
        Ok(reply)
    }
    .await;
    answer(ack, result);
}

async fn sfu_answer<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: SfuAnswer = parse(data)?;
        let _turn = session(&s)?.turn().await;
        let (_, joined, _) = membership(&s, &sig, &req.room_id).await?;
        media::answer(&sig, &joined.peer, req.offer_id, req.sdp).await?;
        Ok(json!({}))
    }
    .await;
    answer(ack, result);
}

async fn toggle_audio<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: Toggle = parse(data)?;
        set_media(
            &s,
            &sig,
            &req.room_id,
            None,
            MediaKind::Audio,
            req.is_enabled,
        )
        .await
    }
    .await;
    answer(ack, result);
}

async fn toggle_video<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: Toggle = parse(data)?;
        set_media(
            &s,
            &sig,
            &req.room_id,
            None,
            MediaKind::Video,
            req.is_enabled,
        )
        .await
    }
    .await;
    answer(ack, result);
}

/// Turn a participant's microphone or camera on or off: the caller's own (`target` None)
/// or, for the host, someone else's.
async fn set_media<A: Adapter>(
    s: &SocketRef<A>,
    sig: &Signaling,
    room: &RoomId,
    target: Option<&LivePeer>,
    kind: MediaKind,
    enabled: bool,
) -> Result<Value, SignalError> {
    let peer = match target {
        Some(p) => p.clone(),
        None => membership(s, sig, room).await?.2,
    };
    let change = match kind {
        MediaKind::Audio => LiveChange::Audio(enabled),
        MediaKind::Video => LiveChange::Video(enabled),
    };
    let updated = sig
        .live()
        .update(room, &peer.peer_id, change)
        .await?
        .ok_or(SignalError::NotInMeeting)?;
    media::set_muted(sig, &peer.peer_id, kind, !enabled);
    let (event, _) = match kind {
        MediaKind::Audio => ("participant-audio-changed", ()),
        MediaKind::Video => ("participant-video-changed", ()),
    };
    let note =
        json!({ "userId": updated.user_id, "peerId": updated.peer_id, "isEnabled": enabled });
    let _ = s.within(room_channel(room)).emit(event, &note).await;
    records::media_changed(sig, room, &updated).await;
    Ok(json!({}))
}

async fn toggle_screen_share<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: ToggleScreenShare = parse(data)?;
        let (_, joined, _) = membership(&s, &sig, &req.room_id).await?;
        let meeting = records::load(&sig, &req.room_id).await?;
        if req.is_sharing && !meeting.allow_screen_share {
            return Err(SignalError::Disabled("screen sharing is turned off in this meeting"));
        }
        let updated = sig
            .live()
            .update(&req.room_id, &joined.peer, LiveChange::Screen(req.is_sharing))
            .await?
            .ok_or(SignalError::NotInMeeting)?;
        media::set_screen_share(&sig, &joined.peer, req.is_sharing);
        let note = json!({ "userId": updated.user_id, "peerId": updated.peer_id, "isSharing": req.is_sharing });
        let ops = s.within(room_channel(&req.room_id));
        let _ = ops.emit("participant-screen-share-changed", &note).await;
        let short = json!({ "userId": updated.user_id, "peerId": updated.peer_id });
        let name = if req.is_sharing { "screen:started" } else { "screen:stopped" };
        let _ = s.within(room_channel(&req.room_id)).emit(name, &short).await;
        records::media_changed(&sig, &req.room_id, &updated).await;
        Ok(json!({}))
    }
    .await;
    answer(ack, result);
}

async fn chat<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: ChatSend = parse(data)?;
        let (_, _, me) = membership(&s, &sig, &req.room_id).await?;
        let meeting = records::load(&sig, &req.room_id).await?;
        if !meeting.allow_chat {
            return Err(SignalError::Disabled("chat is turned off in this meeting"));
        }
        let timestamp = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let msg = ChatMessage {
            user_id: me.user_id,
            peer_id: me.peer_id,
            user_name: me.user_name,
            message: req.message.trim().to_owned(),
            timestamp: timestamp.clone(),
        };
        // Everyone, the sender included, so that every chat shows the same order.
        let _ = s
            .within(room_channel(&req.room_id))
            .emit("meeting-chat-message", &msg)
            .await;
        Ok(json!({ "timestamp": timestamp }))
    }
    .await;
    answer(ack, result);
}

/// The caller must be the host of `room`; returns the caller's connection.
async fn as_host<A: Adapter>(
    s: &SocketRef<A>,
    sig: &Signaling,
    room: &RoomId,
    action: &'static str,
) -> Result<LivePeer, SignalError> {
    let (_, _, me) = membership(s, sig, room).await?;
    if !me.is_host {
        return Err(SignalError::Forbidden(action));
    }
    Ok(me)
}

async fn host_mute<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: HostMute = parse(data)?;
        let me = as_host(&s, &sig, &req.room_id, "mute other participants").await?;
        let targets = sig
            .live()
            .find_user(&req.room_id, &req.target_user_id)
            .await?;
        if targets.is_empty() {
            return Err(SignalError::PeerNotFound(req.target_user_id.to_string()));
        }
        for t in &targets {
            let note = json!({ "roomId": req.room_id, "kind": req.kind, "by": me.user_id });
            let _ = s
                .within(peer_channel(&t.peer_id))
                .emit("control:mute", &note)
                .await;
            set_media(&s, &sig, &req.room_id, Some(t), req.kind, false).await?;
        }
        Ok(json!({}))
    }
    .await;
    answer(ack, result);
}

async fn host_remove<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: HostRemove = parse(data)?;
        let me = as_host(&s, &sig, &req.room_id, "remove participants").await?;
        let targets = sig
            .live()
            .find_user(&req.room_id, &req.target_user_id)
            .await?;
        if targets.is_empty() {
            return Err(SignalError::PeerNotFound(req.target_user_id.to_string()));
        }
        // Recorded first: a join of the same user racing this removal is refused.
        records::removed(&sig, &req.room_id, &req.target_user_id, &me.user_id).await?;
        for t in &targets {
            let note = json!({ "roomId": req.room_id, "by": me.user_id });
            let channel = peer_channel(&t.peer_id);
            let _ = s
                .within(channel.clone())
                .emit("control:removed", &note)
                .await;
            let _ = s.within(channel).leave(room_channel(&req.room_id)).await;
            forget_peer(&io, &sig, &req.room_id, &t.peer_id, LeaveWhy::Removed).await;
        }
        Ok(json!({}))
    }
    .await;
    answer(ack, result);
}

/// Let a user the host removed join again.
async fn host_allow<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: HostRemove = parse(data)?;
        as_host(&s, &sig, &req.room_id, "let removed participants back").await?;
        records::allow(&sig, &req.room_id, &req.target_user_id).await?;
        Ok(json!({}))
    }
    .await;
    answer(ack, result);
}

async fn end_meeting<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: RoomOnly = parse(data)?;
        as_host(&s, &sig, &req.room_id, "end the meeting").await?;
        records::end(&sig, &req.room_id).await?;
        end_for_everyone(&io, &sig, &req.room_id, "host-ended").await;
        Ok(json!({}))
    }
    .await;
    answer(ack, result);
}

/// Tell every socket of the meeting it ended, and drop all its live state and media.
/// Also called when the host ends the meeting over REST.
pub(crate) async fn end_for_everyone<A: Adapter>(
    io: &SocketIo<A>,
    sig: &Signaling,
    room: &RoomId,
    reason: &str,
) {
    let channel = room_channel(room);
    let note = json!({ "roomId": room, "reason": reason });
    let _ = io.to(channel.clone()).emit("meeting:ended", &note).await;
    let _ = io.to(channel.clone()).leave(channel).await;
    let gone = sig.live().clear(room).await.unwrap_or_else(|e| {
        tracing::warn!(room = %room, error = %e, "could not clear the live registry; entries will expire");
        Vec::new()
    });
    for p in &gone {
        media::leave(sig, &p.peer_id);
        records::left(sig, room, p).await;
    }
    media::close_room(sig, room);
    tracing::info!(room = %room, reason, participants = gone.len(), "meeting ended");
}

async fn relay_offer<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    answer(ack, relay(&s, &sig, data, RelayKind::Offer).await);
}

async fn relay_answer<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    answer(ack, relay(&s, &sig, data, RelayKind::Answer).await);
}

async fn relay_candidate<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    answer(ack, relay(&s, &sig, data, RelayKind::Candidate).await);
}

/// Mesh mode: pass an offer, answer or candidate to one participant of the same
/// meeting. Anything addressed elsewhere is refused and never delivered; only the
/// event's documented field is passed on (see [`Relay::forward`]).
async fn relay<A: Adapter>(
    s: &SocketRef<A>,
    sig: &Signaling,
    data: Payload,
    kind: RelayKind,
) -> Result<Value, SignalError> {
    let req: Relay = parse(data)?;
    req.validate_as(kind)?;
    let event = kind.event();
    let refuse = |s: &SocketRef<A>, e: SignalError| {
        let body = ErrorBody::from(e);
        let _ = s.emit(
            "peer-connection-error",
            &json!({ "error": body, "targetUserId": req.target_user_id }),
        );
        SignalError::PeerNotFound(req.target_user_id.to_string())
    };
    let (_, _, me) = match membership(s, sig, &req.room_id).await {
        Ok(m) => m,
        Err(e) => return Err(refuse(s, e)),
    };
    let meeting = records::load(sig, &req.room_id).await?;
    if meeting.topology != Topology::Mesh {
        return Err(SignalError::BadRequest(format!(
            "{event} is for mesh meetings; this one uses the SFU"
        )));
    }
    let targets = sig
        .live()
        .find_user(&req.room_id, &req.target_user_id)
        .await?;
    let Some(target) = targets.into_iter().find(|t| t.peer_id != me.peer_id) else {
        return Err(refuse(
            s,
            SignalError::PeerNotFound(req.target_user_id.to_string()),
        ));
    };
    let out = req.forward(kind, me.user_id, me.peer_id);
    let _ = s
        .within(peer_channel(&target.peer_id))
        .emit(event, &out)
        .await;
    Ok(json!({}))
}
