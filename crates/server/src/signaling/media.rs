//! The bridge between signaling and the SFU engine.
//!
//! Requests go to the engine as calls on [`meeting_sfu::Sfu`] whose answers come back
//! through one-shot callbacks; here they become awaits with a deadline, so that a stuck
//! worker turns into an `UNAVAILABLE` acknowledgement instead of a hung request. The
//! engine's own events (a server offer for renegotiation, a participant lost) arrive on
//! one channel and [`pump_events`] turns them into Socket.IO messages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meeting_sfu::{MidSource, ParticipantId, SfuError, SfuEvent, TrackSource};
use proto::signaling::{MediaKind, ServerOffer, SfuAnswerData, TrackInfo};
use proto::{PeerId, RoomId, UserId};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::sync::{mpsc, oneshot};

use super::handlers::{LeaveWhy, forget_peer};
use super::session::Joined;
use super::{SignalError, Signaling, peer_channel};

/// How long a worker may take to answer an SDP request.
const ENGINE_DEADLINE: Duration = Duration::from_secs(10);

pub type EventReceiver = mpsc::UnboundedReceiver<SfuEvent>;

/// The sink the engine is started with, and the receiver [`pump_events`] drains.
pub fn event_channel() -> (meeting_sfu::EventSink, EventReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink: meeting_sfu::EventSink = Arc::new(move |event| {
        // The receiver is gone only during shutdown; nothing is left to tell then.
        let _ = tx.send(event);
    });
    (sink, rx)
}

fn engine(sig: &Signaling) -> Result<&meeting_sfu::Sfu, SignalError> {
    sig.sfu().ok_or(SignalError::Disabled("this server runs without its SFU (SFU_MODE_ENABLED=false)"))
}

fn participant(peer: &PeerId) -> ParticipantId {
    ParticipantId::new(peer.as_str())
}

/// Run one engine request and wait for its reply.
async fn call<T: Send + 'static>(
    start: impl FnOnce(meeting_sfu::Reply<Result<T, SfuError>>),
) -> Result<T, SignalError> {
    let (tx, rx) = oneshot::channel();
    start(Box::new(move |r| {
        let _ = tx.send(r);
    }));
    match tokio::time::timeout(ENGINE_DEADLINE, rx).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(SfuError::WorkerGone))) | Ok(Err(_)) => {
            Err(SignalError::Unavailable("the media worker is not running".into()))
        }
        Ok(Ok(Err(e))) => Err(SignalError::Sfu(e.to_string())),
        Err(_) => Err(SignalError::Unavailable("the media worker did not answer in time".into())),
    }
}

/// The client's publishing offer (first one: join the engine; later: renegotiate).
pub async fn offer(
    sig: &Signaling,
    joined: &Joined,
    sdp: String,
    sources: &BTreeMap<String, String>,
) -> Result<SfuAnswerData, SignalError> {
    let sfu = engine(sig)?;
    let mut mids = Vec::with_capacity(sources.len());
    for (mid, name) in sources {
        let source = TrackSource::parse(name).ok_or_else(|| {
            SignalError::BadRequest(format!("unknown source {name:?} for mid {mid:?} (microphone, camera or screen)"))
        })?;
        mids.push(MidSource { mid: mid.clone(), source });
    }
    let room = meeting_sfu::RoomId::new(joined.room.as_str());
    let who = participant(&joined.peer);
    let answer = if joined.in_sfu {
        call(|reply| sfu.offer(who, sdp, mids, reply)).await?
    } else {
        call(|reply| sfu.join(room, who, sdp, mids, reply)).await?
    };
    let tracks = track_infos(sig, &joined.room, &answer.tracks).await;
    Ok(SfuAnswerData { sdp: answer.sdp, tracks })
}

/// The client's answer to a server offer.
pub async fn answer(sig: &Signaling, peer: &PeerId, offer_id: u64, sdp: String) -> Result<(), SignalError> {
    let sfu = engine(sig)?;
    call(|reply| sfu.answer(participant(peer), offer_id, sdp, reply)).await
}

pub fn leave(sig: &Signaling, peer: &PeerId) {
    if let Some(sfu) = sig.sfu() {
        sfu.leave(participant(peer));
    }
}

pub fn close_room(sig: &Signaling, room: &RoomId) {
    if let Some(sfu) = sig.sfu() {
        sfu.close_room(meeting_sfu::RoomId::new(room.as_str()));
    }
}

pub fn set_muted(sig: &Signaling, peer: &PeerId, kind: MediaKind, muted: bool) {
    if let Some(sfu) = sig.sfu() {
        let source = match kind {
            MediaKind::Audio => TrackSource::Microphone,
            MediaKind::Video => TrackSource::Camera,
        };
        sfu.set_muted(participant(peer), source, muted);
    }
}

pub fn set_screen_share(sig: &Signaling, peer: &PeerId, on: bool) {
    if let Some(sfu) = sig.sfu() {
        sfu.set_publishing(participant(peer), TrackSource::ScreenShare, on);
    }
}

/// Name the sender of each track, so the client can put it in the right tile.
async fn track_infos(sig: &Signaling, room: &RoomId, tracks: &[meeting_sfu::OutgoingTrack]) -> Vec<TrackInfo> {
    let peers = sig.live().peers(room).await;
    tracks
        .iter()
        .map(|t| {
            let user_id = peers
                .iter()
                .find(|p| p.peer_id.as_str() == t.from.as_str())
                .map(|p| p.user_id.clone())
                .unwrap_or_else(|| UserId::new(""));
            TrackInfo {
                mid: t.mid.clone(),
                user_id,
                peer_id: PeerId::new(t.from.as_str()),
                source: t.source.as_str().to_owned(),
            }
        })
        .collect()
}

/// Turn the engine's events into messages, until the engine stops.
pub async fn pump_events<A: Adapter>(io: SocketIo<A>, sig: Signaling, mut events: EventReceiver) {
    while let Some(event) = events.recv().await {
        match event {
            SfuEvent::Renegotiate { room, participant, offer_id, offer, tracks } => {
                let room = RoomId::new(room.as_str());
                let tracks = track_infos(&sig, &room, &tracks).await;
                let msg = ServerOffer { room_id: room, offer_id, sdp: offer, tracks };
                let peer = PeerId::new(participant.as_str());
                let _ = io.to(peer_channel(&peer)).emit("sfu-offer", &msg).await;
            }
            SfuEvent::ParticipantGone { room, participant, reason } => {
                let room = RoomId::new(room.as_str());
                let peer = PeerId::new(participant.as_str());
                tracing::warn!(room = %room, peer = %peer, ?reason, "media connection lost");
                let note = serde_json::json!({
                    "error": { "code": "MEDIA_FAILED", "message": media_failure_hint(&reason) }
                });
                let _ = io.to(peer_channel(&peer)).emit("meeting-error", &note).await;
                if let Some(p) = sig.live().get(&room, &peer).await {
                    forget_peer(&io, &sig, &room, &p, LeaveWhy::MediaFailed).await;
                }
            }
            SfuEvent::ConnectionState { room, participant, state } => {
                tracing::debug!(room = %room, peer = %participant, ?state, "media connection state");
            }
            SfuEvent::PublicationAdded { room, participant, source } => {
                tracing::debug!(room = %room, peer = %participant, ?source, "publication added");
            }
            SfuEvent::PublicationRemoved { room, participant, source } => {
                tracing::debug!(room = %room, peer = %participant, ?source, "publication removed");
            }
        }
    }
}

/// The seed's troubleshooting advice, where the failure suggests it.
fn media_failure_hint(reason: &meeting_sfu::GoneReason) -> String {
    match reason {
        meeting_sfu::GoneReason::ConnectTimeout => "No media connection could be made to the server. Check that \
            MEDIASOUP_ANNOUNCED_IP is the server's LAN or public address (not 127.0.0.1), that the UDP ports \
            MEDIASOUP_MIN_PORT..MEDIASOUP_MAX_PORT are open in the firewall, and configure a TURN server for \
            networks that block UDP."
            .into(),
        meeting_sfu::GoneReason::ConnectionLost => {
            "The media connection to the server was lost (network change or firewall). Rejoin to reconnect.".into()
        }
        meeting_sfu::GoneReason::Failed(why) => format!("The media connection failed: {why}"),
    }
}
