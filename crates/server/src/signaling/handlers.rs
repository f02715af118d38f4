//! One function per client event. Each parses and validates its payload, hands the
//! request to [`crate::membership`] or the media router, tells the sockets what changed,
//! and answers with exactly one acknowledgement (`{ ok, data | error }`). The mesh relay
//! events are in [`super::relay`].

use std::fmt;
use std::time::SystemTime;

use chrono::Utc;
use proto::events::{
    ChatMessage, ExistingParticipants, IceServers, JoinedMeeting, MeetingReplaced,
    ParticipantAudioChanged, ParticipantJoined, ParticipantScreenShareChanged,
    ParticipantVideoChanged, ScreenStarted, ScreenStopped, SessionExpired,
};
use proto::signaling::{
    ChatSend, ChatSent, JoinMeeting, JoinMeetingData, MediaKind, RoomOnly, SfuAnswer, SfuOffer,
    Toggle, ToggleScreenShare,
};
use proto::{ErrorBody, ErrorCode, RoomId};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use socketioxide_core::adapter::DefinedAdapter;
use tokio_util::sync::CancellationToken;

use super::emit::{broadcast, emit_to, tell};
use super::relay::{relay_answer, relay_candidate, relay_offer};
use super::request::{Payload, answer, answer_with, member, parse, session};
use super::session::{Joined, Session};
use super::throttle::limited;
use super::{
    SignalError, Signaling, activity, announce, co_host, host, into_channels, invites, lobby,
    media, original, out_of_channels, peer_channel, recording, resume, room_channel,
};
use crate::access::Action;
use crate::limits::EventKind;
use crate::live::{LiveChange, LivePeer};
use crate::membership::{Candidate, LeaveWhy, MembershipError};

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
    // Without a token (no `auth`, which socketioxide reads as `{}`, or none in it) is how
    // frontends of the service we replace connect (`io(url)`): they are let in to be
    // told, in the event they listen for (`original::tokenless`).
    let token = auth
        .ok()
        .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_owned))
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Ok(());
    };
    // A draining node takes no new sockets: the page retries, and reaches another node
    // (through the load balancer) or the restarted process.
    if sig.app().is_draining() {
        let e = SignalError::Draining;
        return Err(Refused(e.code().as_str(), e.to_string()));
    }
    let claims = sig
        .app()
        .jwt
        .verify(&token)
        .map_err(|e| Refused(e.code(), e.to_string()))?;
    let session = Session::new(claims);
    sig.app()
        .limits
        .check_connect(&session.user)
        .map_err(|limited| Refused(ErrorCode::RateLimited.as_str(), limited.to_string()))?;
    s.extensions.insert(session.clone());
    tokio::spawn(expire(s.clone(), session, sig.app().shutdown.clone()));
    // The event handlers are registered here, in the middleware, and not in the connect
    // handler: socketioxide sends the CONNECT packet before it spawns the (async) connect
    // handler, so a client that emits right after connecting (the web client's
    // `join-meeting`) could reach a socket without handlers: no handler, no ack.
    register_events(&s);
    metrics::gauge!(crate::monitoring::names::SOCKETS_CONNECTED).increment(1.0);
    Ok(())
}

async fn on_connect<A: Adapter>(s: SocketRef<A>, State(sig): State<Signaling>) {
    // Runs after the CONNECT packet is sent, so the client receives what it is told.
    if s.extensions.get::<Session>().is_none() {
        original::tokenless(&s, &sig);
    }
}

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
    tell(&s, &SessionExpired { error: note });
    tracing::info!(user = %session.user, "token expired; disconnecting");
    let _ = s.disconnect();
}

/// Every event is registered through [`limited`]: the rate limit of its kind is checked
/// before its handler runs.
fn register_events<A: Adapter>(s: &SocketRef<A>) {
    use EventKind::{Chat, Control, Join, Leave, Media};
    s.on("join-meeting", limited(Join, join_meeting::<A>));
    s.on(
        "resume-meeting",
        limited(Join, super::resume::resume_meeting::<A>),
    );
    s.on("leave-meeting", limited(Leave, leave_meeting::<A>));
    s.on(
        "meeting:leave",
        limited(Leave, original::meeting_leave::<A>),
    );
    s.on("sfu-offer", limited(Media, sfu_offer::<A>));
    s.on("sfu-answer", limited(Media, sfu_answer::<A>));
    s.on("toggle-audio", limited(Control, toggle_audio::<A>));
    s.on("toggle-video", limited(Control, toggle_video::<A>));
    s.on(
        "toggle-screen-share",
        limited(Control, toggle_screen_share::<A>),
    );
    s.on(
        "change-video-quality",
        limited(Control, original::change_video_quality::<A>),
    );
    s.on("tile-views", limited(Media, super::tiles::tile_views::<A>));
    s.on("meeting-chat-message", limited(Chat, chat::<A>));
    s.on("raise-hand", limited(Control, activity::raise_hand::<A>));
    s.on("reaction", limited(Chat, activity::reaction::<A>));
    s.on("host-mute", limited(Control, host::host_mute::<A>));
    s.on("host-remove", limited(Control, host::host_remove::<A>));
    s.on(
        "host-set-co-host",
        limited(Control, co_host::host_set_co_host::<A>),
    );
    s.on("host-allow", limited(Control, host::host_allow::<A>));
    s.on("end-meeting", limited(Control, host::end_meeting::<A>));
    s.on("lobby-admit", limited(Control, lobby::lobby_admit::<A>));
    s.on("lobby-deny", limited(Control, lobby::lobby_deny::<A>));
    s.on("host-lock", limited(Control, host::host_lock::<A>));
    s.on(
        "invite-create",
        limited(Control, invites::invite_create::<A>),
    );
    s.on("invite-list", limited(Control, invites::invite_list::<A>));
    s.on(
        "invite-revoke",
        limited(Control, invites::invite_revoke::<A>),
    );
    s.on("host-mute-all", limited(Control, host::host_mute_all::<A>));
    s.on(
        "host-ask-unmute",
        limited(Control, host::host_ask_unmute::<A>),
    );
    s.on(
        "host-stop-screen",
        limited(Control, host::host_stop_screen::<A>),
    );
    s.on(
        "recording-start",
        limited(Control, recording::recording_start::<A>),
    );
    s.on(
        "recording-stop",
        limited(Control, recording::recording_stop::<A>),
    );
    s.on("webrtc-offer", limited(Media, relay_offer::<A>));
    s.on("webrtc-answer", limited(Media, relay_answer::<A>));
    s.on("ice-candidate", limited(Media, relay_candidate::<A>));
    s.on_fallback(super::request::unknown_event::<A>);
    s.on_disconnect(on_disconnect::<A>);
}

async fn join_meeting<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let arrived = std::time::Instant::now();
    let result = async {
        let session = session(&s)?;
        let _turn = session.turn().await;
        join(&s, &io, &sig, &session, data).await
    }
    .await
    .map_err(ErrorBody::from);
    // Waiting in the lobby is not a refusal: `lobby:waiting` told the socket already.
    // (The refusal is logged by `answer_with`, with the ids of whoever asked.)
    if let Err(error) = &result
        && error.code != ErrorCode::InLobby
    {
        original::join_failed(&s, error);
    }
    let outcome = match &result {
        Ok(d) => Ok((&d.peer_id, d.topology.as_str())),
        Err(e) => Err(e.code.as_str()),
    };
    sig.app().monitor.join_finished(arrived, outcome);
    answer_with(&s, ack, result);
}

async fn join<A: Adapter>(
    s: &SocketRef<A>,
    io: &SocketIo<A>,
    sig: &Signaling,
    session: &Session,
    data: Payload,
) -> Result<JoinMeetingData, SignalError> {
    let req: JoinMeeting = parse(data)?;
    let room = req.room_id.clone();
    if sig.app().is_draining() {
        return Err(SignalError::Draining);
    }

    leave_others(s, io, sig, session, None).await;

    let candidate = Candidate {
        user: session.user.clone(),
        user_name: req
            .user_name
            .map(|n| n.trim().to_owned())
            .unwrap_or_else(|| session.claims.name.clone()),
        user_picture: req.user_picture.or_else(|| session.claims.picture.clone()),
        audio_enabled: req.is_audio_enabled,
        video_enabled: req.is_video_enabled,
        grants: session.claims.grants.clone(),
    };
    let admission = match sig.membership().admit(&room, candidate.clone()).await {
        Err(MembershipError::ApprovalRequired) => {
            return Err(lobby::knock(s, io, sig, session, &room, candidate).await);
        }
        other => other?,
    };

    for old in &admission.replaced {
        let channel = peer_channel(&old.peer.peer_id);
        let note = MeetingReplaced {
            room_id: room.clone(),
        };
        emit_to(io, channel.clone(), &note).await;
        let _ = io.to(channel).leave(room_channel(&room)).await;
        announce::left(io, old).await;
    }

    let peer = &admission.peer;
    let joined = Joined {
        room: room.clone(),
        peer: peer.peer_id.clone(),
        in_sfu: false,
    };
    into_channels(s, session, &joined, peer.role().moderates());
    // Undo the admission if the meeting ended since it was read (membership gives the
    // seat back), or the socket went away meanwhile (its disconnect handler waits for
    // this turn, but may have run before the turn began and found nothing to leave).
    if let Err(refusal) = sig.membership().confirm(&admission).await {
        out_of_channels(s, session, &joined);
        if let Some(gone) = &refusal.undone {
            announce::left(io, gone).await;
        }
        return Err(refusal.error.into());
    }
    if !s.connected() {
        leave(s, io, sig, session, &joined, LeaveWhy::Disconnected).await;
        return Err(SignalError::NotInMeeting);
    }

    let others: Vec<_> = sig
        .membership()
        .present(&room)
        .await?
        .into_iter()
        .filter(|p| p.peer_id != peer.peer_id)
        .map(|p| p.to_participant())
        .collect();
    let ice_servers =
        crate::ice::ice_servers(&sig.app().config.ice, &session.user, SystemTime::now());
    let me = peer.to_participant();
    let meeting = &admission.meeting;

    // The original protocol's events, for frontends written against it.
    let ice = IceServers {
        ice_servers: ice_servers.clone(),
    };
    tell(s, &ice);
    let joined_note = JoinedMeeting {
        room_id: room.clone(),
        user_id: peer.user_id.clone(),
        peer_id: peer.peer_id.clone(),
        meeting: meeting.json.clone(),
    };
    tell(s, &joined_note);
    let existing = ExistingParticipants {
        participants: others.clone(),
    };
    tell(s, &existing);
    broadcast(s.to(room_channel(&room)), &ParticipantJoined(me.clone())).await;
    if peer.role().moderates() {
        lobby::show_host(s, sig, &room).await;
    }
    activity::tell_joiner(s, sig, &room).await;
    // A late joiner learns that the meeting is being recorded (asked of the node that
    // holds its media, which may be another one).
    if let Some(r) = sig.membership().recording().status(&room).await {
        tell(s, &announce::recording_started(&room, &r));
    }

    tracing::info!(room = %room, peer = %peer.peer_id, user = %peer.user_id, "joined");
    Ok(JoinMeetingData {
        room_id: room.clone(),
        user_id: peer.user_id.clone(),
        peer_id: peer.peer_id.clone(),
        is_host: admission.is_host(),
        topology: meeting.topology.as_str().to_owned(),
        meeting: meeting.json.clone(),
        participants: others,
        me,
        ice_servers,
        resume_token: sig
            .membership()
            .resume_token(&room, &peer.peer_id, &peer.user_id),
    })
}

/// One meeting per socket: joining (or resuming) leaves the meeting it is in, unless
/// that is the connection `keep`, and the lobby it waits in (an admitted guest joins
/// again).
pub(super) async fn leave_others<A: Adapter>(
    s: &SocketRef<A>,
    io: &SocketIo<A>,
    sig: &Signaling,
    session: &Session,
    keep: Option<&proto::PeerId>,
) {
    if let Some(previous) = session.joined().filter(|j| Some(&j.peer) != keep) {
        leave(s, io, sig, session, &previous, LeaveWhy::Left).await;
    }
    lobby::leave_waiting(s, io, sig, session).await;
}

/// Take this socket's connection out of its meeting: socket, membership, and tell the
/// others.
pub(super) async fn leave<A: Adapter>(
    s: &SocketRef<A>,
    io: &SocketIo<A>,
    sig: &Signaling,
    session: &Session,
    joined: &Joined,
    why: LeaveWhy,
) {
    out_of_channels(s, session, joined);
    if let Some(gone) = sig
        .membership()
        .leave(&joined.room, &joined.peer, why)
        .await
    {
        announce::left(io, &gone).await;
    }
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
        let me = session(&s)?;
        let _turn = me.turn().await;
        if me.joined().is_none() {
            // Waiting in the lobby is the only other way to be "in" a meeting.
            lobby::leave_waiting(&s, &io, &sig, &me).await;
        }
        let (session, joined, _) = member(&s, &sig, &req.room_id, Action::Leave).await?;
        leave(&s, &io, &sig, &session, &joined, LeaveWhy::Left).await;
        Ok(json!({}))
    }
    .await;
    answer(&s, ack, result);
}

async fn on_disconnect<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(sig): State<Signaling>,
    reason: DisconnectReason,
) {
    let Ok(session) = session(&s) else { return };
    metrics::gauge!(crate::monitoring::names::SOCKETS_CONNECTED).decrement(1.0);
    session.closed().cancel();
    // After any join still running for this socket: what it admitted is left here.
    let _turn = session.turn().await;
    lobby::leave_waiting(&s, &io, &sig, &session).await;
    if let Some(j) = session.joined() {
        // A dropped connection may be resumed by another socket (`resume-meeting`).
        if resume::leaves_now(&s, &io, &sig, &j, reason).await {
            leave(&s, &io, &sig, &session, &j, LeaveWhy::Disconnected).await;
        } else {
            session.clear_if(&j.peer);
        }
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
        let (session, joined, _) = member(&s, &sig, &req.room_id, Action::SfuOffer).await?;
        let m = sig.membership();
        let grants = &session.claims.grants;
        let reply = media::offer(m, &joined, grants, req.sdp, &req.sources).await?;
        // Replaced by another socket or removed by the host while the SFU worked: their
        // leave dropped the media before this offer created it, so drop it now.
        if m.current(&joined.room, &joined.peer).await?.is_none() {
            m.leave_media(&joined.peer);
            session.clear_if(&joined.peer);
            return Err(SignalError::NotInMeeting);
        }
        session.set_in_sfu(&joined.peer);
        Ok(reply)
    }
    .await;
    answer(&s, ack, result);
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
        let (_, joined, _) = member(&s, &sig, &req.room_id, Action::SfuAnswer).await?;
        media::answer(sig.membership(), &joined.peer, req.offer_id, req.sdp).await?;
        Ok(json!({}))
    }
    .await;
    answer(&s, ack, result);
}

async fn toggle_audio<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: Toggle = parse(data)?;
        let action = if req.is_enabled {
            Action::AudioOn
        } else {
            Action::AudioOff
        };
        let (_, _, me) = member(&s, &sig, &req.room_id, action).await?;
        set_media(
            &s,
            &sig,
            &req.room_id,
            &me,
            MediaKind::Audio,
            req.is_enabled,
        )
        .await
    }
    .await;
    answer(&s, ack, result);
}

async fn toggle_video<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: Toggle = parse(data)?;
        let action = if req.is_enabled {
            Action::VideoOn
        } else {
            Action::VideoOff
        };
        let (_, _, me) = member(&s, &sig, &req.room_id, action).await?;
        set_media(
            &s,
            &sig,
            &req.room_id,
            &me,
            MediaKind::Video,
            req.is_enabled,
        )
        .await
    }
    .await;
    answer(&s, ack, result);
}

/// Turn `peer`'s microphone or camera on or off (the caller's own, or for the host,
/// someone else's), and tell the meeting.
pub(super) async fn set_media<A: Adapter>(
    s: &SocketRef<A>,
    sig: &Signaling,
    room: &RoomId,
    peer: &LivePeer,
    kind: MediaKind,
    enabled: bool,
) -> Result<Value, SignalError> {
    let change = match kind {
        MediaKind::Audio => LiveChange::Audio(enabled),
        MediaKind::Video => LiveChange::Video(enabled),
    };
    let updated = sig
        .membership()
        .set_media_state(room, &peer.peer_id, change)
        .await?;
    let everyone = s.within(room_channel(room));
    let (user_id, peer_id) = (updated.user_id, updated.peer_id);
    match kind {
        MediaKind::Audio => {
            let note = ParticipantAudioChanged {
                user_id,
                peer_id,
                is_enabled: enabled,
            };
            broadcast(everyone, &note).await;
        }
        MediaKind::Video => {
            let note = ParticipantVideoChanged {
                user_id,
                peer_id,
                is_enabled: enabled,
            };
            broadcast(everyone, &note).await;
        }
    }
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
        let action = if req.is_sharing {
            Action::ScreenOn
        } else {
            Action::ScreenOff
        };
        let (_, joined, _) = member(&s, &sig, &req.room_id, action).await?;
        let meeting = sig.membership().meeting(&req.room_id).await?;
        if req.is_sharing && !meeting.allow_screen_share {
            return Err(SignalError::Disabled(
                "screen sharing is turned off in this meeting",
            ));
        }
        let change = LiveChange::Screen(req.is_sharing);
        let updated = sig
            .membership()
            .set_media_state(&req.room_id, &joined.peer, change)
            .await?;
        let (user_id, peer_id) = (updated.user_id, updated.peer_id);
        let note = ParticipantScreenShareChanged {
            user_id: user_id.clone(),
            peer_id: peer_id.clone(),
            is_sharing: req.is_sharing,
        };
        broadcast(s.within(room_channel(&req.room_id)), &note).await;
        let everyone = s.within(room_channel(&req.room_id));
        if req.is_sharing {
            broadcast(everyone, &ScreenStarted { user_id, peer_id }).await;
        } else {
            broadcast(everyone, &ScreenStopped { user_id, peer_id }).await;
        }
        Ok(json!({}))
    }
    .await;
    answer(&s, ack, result);
}

async fn chat<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: ChatSend = parse(data)?;
        let (_, _, me) = member(&s, &sig, &req.room_id, Action::Chat).await?;
        let meeting = sig.membership().meeting(&req.room_id).await?;
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
        broadcast(s.within(room_channel(&req.room_id)), &msg).await;
        activity::remember_chat(&sig, &req.room_id, &msg).await;
        Ok(ChatSent { timestamp })
    }
    .await;
    answer(&s, ack, result);
}
