//! The bridge between signaling and the SFU engine.
//!
//! Requests go to the engine as [`MediaOp`]s whose answers come back through one-shot
//! callbacks; here they become awaits with a deadline, so that a stuck worker turns into
//! an `UNAVAILABLE` acknowledgement instead of a hung request. In a cluster the op runs
//! on the node that hosts the meeting's media, relayed over Redis when that is another
//! node (see `cluster::placement`). The
//! engine's own events (a server offer for renegotiation, a participant lost) arrive on
//! one channel and [`pump_events`] turns them into Socket.IO messages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meeting_sfu::{MidSource, OutgoingTrack, SfuEvent, TrackSource};
use proto::signaling::{MediaKind, ServerOffer, SfuAnswerData, TrackInfo};
use proto::{PeerId, RoomId, UserId};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::sync::{mpsc, oneshot};

use super::handlers::{LeaveWhy, forget_peer};
use super::session::Joined;
use super::{SignalError, Signaling, peer_channel};
use crate::cluster::placement::{self, MediaOp, OpReply, Owner};

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
    sig.sfu().ok_or(SignalError::Disabled(
        "this server runs without its SFU (SFU_MODE_ENABLED=false)",
    ))
}

/// Run `op` on this node's engine and wait for its reply, within the deadline.
async fn run_here(sig: &Signaling, op: MediaOp) -> Result<OpReply, SignalError> {
    let sfu = engine(sig)?;
    let (tx, rx) = oneshot::channel();
    placement::execute(sfu, op, move |r| {
        let _ = tx.send(r);
    });
    match tokio::time::timeout(ENGINE_DEADLINE, rx).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(_)) => Err(SignalError::Unavailable(
            "the media worker is not running".into(),
        )),
        Err(_) => Err(SignalError::Unavailable(
            "the media worker did not answer in time".into(),
        )),
    }
}

/// Run `op` where `owner` says: here, or relayed to the node hosting the room.
async fn run_at(sig: &Signaling, owner: &Owner, op: MediaOp) -> Result<OpReply, SignalError> {
    let reply = match (owner, sig.placement()) {
        (Owner::Node(node), Some(pl)) => pl
            .relay(node, op)
            .await
            .map_err(|e| SignalError::Unavailable(e.to_string()))?,
        _ => run_here(sig, op).await?,
    };
    match reply {
        OpReply::Failed { kind, message } if kind == "worker-gone" => {
            Err(SignalError::Unavailable(message))
        }
        OpReply::Failed { message, .. } => Err(SignalError::Sfu(message)),
        ok => Ok(ok),
    }
}

/// Where `peer`'s requests go: the node its media was placed on.
fn placed_owner(sig: &Signaling, peer: &PeerId) -> Owner {
    sig.placement()
        .and_then(|pl| pl.placed(peer))
        .map(|(_, owner)| owner)
        .unwrap_or(Owner::Here)
}

/// The client's publishing offer (first one: join the engine; later: renegotiate).
pub async fn offer(
    sig: &Signaling,
    joined: &Joined,
    sdp: String,
    sources: &BTreeMap<String, String>,
) -> Result<SfuAnswerData, SignalError> {
    let mut mids = Vec::with_capacity(sources.len());
    for (mid, name) in sources {
        let source = TrackSource::parse(name).ok_or_else(|| {
            SignalError::BadRequest(format!(
                "unknown source {name:?} for mid {mid:?} (microphone, camera or screen)"
            ))
        })?;
        mids.push(MidSource {
            mid: mid.clone(),
            source,
        });
    }
    let participant = joined.peer.clone();
    let sources = placement::sources_to_wire(&mids);
    let (owner, rejoin) = match sig.placement() {
        None => (Owner::Here, !joined.in_sfu),
        Some(pl) => {
            let owner = pl
                .owner(&joined.room)
                .await
                .map_err(|e| SignalError::Unavailable(e.to_string()))?;
            let known = pl.placed(&joined.peer).is_some_and(|(_, o)| o == owner);
            (owner, !known)
        }
    };
    let op = if rejoin {
        MediaOp::Join {
            room: joined.room.clone(),
            participant,
            sdp,
            sources,
        }
    } else {
        MediaOp::Offer {
            participant,
            sdp,
            sources,
        }
    };
    let OpReply::Answer { sdp, tracks } = run_at(sig, &owner, op).await? else {
        return Err(SignalError::Internal(anyhow::anyhow!(
            "the engine answered an offer without SDP"
        )));
    };
    if let Some(pl) = sig.placement() {
        pl.set_placed(&joined.peer, &joined.room, owner);
    }
    let tracks: Vec<OutgoingTrack> = tracks
        .into_iter()
        .filter_map(|(mid, from, source): (String, PeerId, String)| {
            Some(OutgoingTrack {
                mid,
                from,
                source: TrackSource::parse(&source)?,
            })
        })
        .collect();
    let tracks = track_infos(sig, &joined.room, &tracks).await;
    Ok(SfuAnswerData { sdp, tracks })
}

/// The client's answer to a server offer.
pub async fn answer(
    sig: &Signaling,
    peer: &PeerId,
    offer_id: u64,
    sdp: String,
) -> Result<(), SignalError> {
    let owner = placed_owner(sig, peer);
    run_at(
        sig,
        &owner,
        MediaOp::Answer {
            participant: peer.clone(),
            offer_id,
            sdp,
        },
    )
    .await?;
    Ok(())
}

/// Fire-and-forget requests: a failure is logged (the participant's media stops with
/// its connection anyway).
fn send(sig: &Signaling, owner: Owner, op: MediaOp) {
    if sig.sfu().is_none() && sig.placement().is_none() {
        return;
    }
    let sig = sig.clone();
    tokio::spawn(async move {
        if let Err(e) = run_at(&sig, &owner, op).await {
            tracing::debug!(error = %e, "media request failed");
        }
    });
}

pub fn leave(sig: &Signaling, peer: &PeerId) {
    let owner = match sig.placement() {
        Some(pl) => match pl.forget(peer) {
            Some((_, owner)) => owner,
            None => return,
        },
        None => Owner::Here,
    };
    send(
        sig,
        owner,
        MediaOp::Leave {
            participant: peer.clone(),
        },
    );
}

pub fn close_room(sig: &Signaling, room: &RoomId) {
    // Only the owner has the room; elsewhere its participants' leaves already went out.
    send(sig, Owner::Here, MediaOp::CloseRoom { room: room.clone() });
}

pub fn set_muted(sig: &Signaling, peer: &PeerId, kind: MediaKind, muted: bool) {
    let source = match kind {
        MediaKind::Audio => TrackSource::Microphone,
        MediaKind::Video => TrackSource::Camera,
    };
    let op = MediaOp::SetMuted {
        participant: peer.clone(),
        source: source.as_str().to_owned(),
        muted,
    };
    send(sig, placed_owner(sig, peer), op);
}

pub fn set_screen_share(sig: &Signaling, peer: &PeerId, on: bool) {
    let source = TrackSource::ScreenShare.as_str().to_owned();
    let op = MediaOp::SetPublishing {
        participant: peer.clone(),
        source,
        on,
    };
    send(sig, placed_owner(sig, peer), op);
}

/// Name the sender of each track, so the client can put it in the right tile.
async fn track_infos(
    sig: &Signaling,
    room: &RoomId,
    tracks: &[meeting_sfu::OutgoingTrack],
) -> Vec<TrackInfo> {
    // Best effort: without the registry the client still gets the tracks, unnamed.
    let peers = sig.live().peers(room).await.unwrap_or_default();
    tracks
        .iter()
        .map(|t| {
            let user_id = peers
                .iter()
                .find(|p| p.peer_id == t.from)
                .map(|p| p.user_id.clone())
                .unwrap_or_else(|| UserId::new(""));
            TrackInfo {
                mid: t.mid.clone(),
                user_id,
                peer_id: t.from.clone(),
                source: t.source.as_str().to_owned(),
            }
        })
        .collect()
}

/// Turn the engine's events into messages, until the engine stops.
pub async fn pump_events<A: Adapter>(io: SocketIo<A>, sig: Signaling, mut events: EventReceiver) {
    while let Some(event) = events.recv().await {
        match event {
            SfuEvent::Renegotiate {
                room,
                participant,
                offer_id,
                offer,
                tracks,
            } => {
                let tracks = track_infos(&sig, &room, &tracks).await;
                let msg = ServerOffer {
                    room_id: room,
                    offer_id,
                    sdp: offer,
                    tracks,
                };
                let _ = io
                    .to(peer_channel(&participant))
                    .emit("sfu-offer", &msg)
                    .await;
            }
            SfuEvent::ParticipantGone {
                room,
                participant,
                reason,
            } => {
                let peer = participant;
                tracing::warn!(room = %room, peer = %peer, ?reason, "media connection lost");
                let note = serde_json::json!({
                    "error": { "code": "MEDIA_FAILED", "message": media_failure_hint(&reason) }
                });
                let _ = io
                    .to(peer_channel(&peer))
                    .emit("meeting-error", &note)
                    .await;
                forget_peer(&io, &sig, &room, &peer, LeaveWhy::MediaFailed).await;
            }
            SfuEvent::ConnectionState {
                room,
                participant,
                state,
            } => {
                tracing::debug!(room = %room, peer = %participant, ?state, "media connection state");
            }
            SfuEvent::PublicationAdded {
                room,
                participant,
                source,
            } => {
                tracing::debug!(room = %room, peer = %participant, ?source, "publication added");
            }
            SfuEvent::PublicationRemoved {
                room,
                participant,
                source,
            } => {
                tracing::debug!(room = %room, peer = %participant, ?source, "publication removed");
            }
        }
    }
}

/// Heartbeats a hosted room must be seen empty before its lease is released.
const RELEASE_AFTER_EMPTY_CHECKS: u32 = 2;

/// In a cluster: keep the leases of the rooms this node hosts, and tell participants
/// whose media node died to rejoin (their next join places the room on a live node).
pub async fn watch_placement<A: Adapter>(io: SocketIo<A>, sig: Signaling) {
    let Some(pl) = sig.placement().cloned() else {
        return;
    };
    let shutdown = sig.app().shutdown.clone();
    let mut tick = tokio::time::interval(crate::cluster::HEARTBEAT);
    let mut empty_checks: std::collections::HashMap<RoomId, u32> = std::collections::HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut keep = std::collections::HashSet::new();
        for room in pl.hosted() {
            let empty = matches!(sig.live().peers(&room).await, Ok(peers) if peers.is_empty());
            // Unknown (Redis down) or briefly empty (Redis just restarted and the nodes
            // have not re-registered their participants yet): keep hosting.
            let count = empty_checks.entry(room.clone()).or_insert(0);
            *count = if empty { *count + 1 } else { 0 };
            if *count < RELEASE_AFTER_EMPTY_CHECKS {
                keep.insert(room);
            } else {
                empty_checks.remove(&room);
            }
        }
        match pl.renew(&keep).await {
            Ok(lost) => {
                for room in lost {
                    tracing::warn!(room = %room, "another node took over this meeting's media");
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not renew room leases"),
        }
        let orphans = match pl.orphaned().await {
            Ok(o) => o,
            Err(_) => continue,
        };
        for (peer, room) in orphans {
            pl.forget(&peer);
            tracing::warn!(room = %room, peer = %peer, "the node hosting this meeting's media is gone; asking the client to rejoin");
            let note = serde_json::json!({ "roomId": room, "reason": "media-node-lost" });
            let _ = io
                .to(peer_channel(&peer))
                .emit("meeting:rejoin", &note)
                .await;
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
