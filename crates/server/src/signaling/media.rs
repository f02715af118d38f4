//! The signaling's side of media: client payloads in, [`MediaRouter`] calls out, and the
//! engine's events back to the clients.
//!
//! Requests go to the meeting's engine through the signaling's [`MediaRouter`] (this
//! node's engine, or in a cluster the node that hosts the meeting's room); its typed
//! [`crate::media::MediaError`] becomes the client's error code here. The engine's own
//! events (a server offer for renegotiation, a participant lost) arrive on one channel
//! and [`pump_events`] turns them into Socket.IO messages.

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use meeting_sfu::{MidSource, SfuEvent, TrackSource};
use proto::signaling::{MediaKind, ServerOffer, SfuAnswerData, TrackInfo};
use proto::{PeerId, RoomId, UserId};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use super::handlers::{LeaveWhy, forget_peer};
use super::session::Joined;
use super::{SignalError, Signaling, peer_channel};
use crate::media::{EventReceiver, MediaError, MediaRouter};

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
    let answer = sig
        .media()
        .offer(&joined.room, &joined.peer, joined.in_sfu, sdp, mids)
        .await?;
    let tracks = track_infos(sig, &joined.room, &answer.tracks).await;
    Ok(SfuAnswerData {
        sdp: answer.sdp,
        tracks,
    })
}

/// The client's answer to a server offer.
pub async fn answer(
    sig: &Signaling,
    peer: &PeerId,
    offer_id: u64,
    sdp: String,
) -> Result<(), SignalError> {
    Ok(sig.media().answer(peer, offer_id, sdp).await?)
}

/// Fire-and-forget requests: the request is made now; a failure is logged (the
/// participant's media stops with its connection anyway).
fn send(
    sig: &Signaling,
    request: impl FnOnce(&MediaRouter) -> BoxFuture<'static, Result<(), MediaError>>,
) {
    if !sig.media().has_media() {
        return;
    }
    let outcome = request(sig.media());
    tokio::spawn(async move {
        if let Err(e) = outcome.await {
            tracing::debug!(error = %e, "media request failed");
        }
    });
}

pub fn leave(sig: &Signaling, peer: &PeerId) {
    send(sig, |media| media.leave(peer));
}

pub fn close_room(sig: &Signaling, room: &RoomId) {
    send(sig, |media| {
        let closed = media.close_room(room);
        Box::pin(std::future::ready(closed))
    });
}

pub fn set_muted(sig: &Signaling, peer: &PeerId, kind: MediaKind, muted: bool) {
    let source = match kind {
        MediaKind::Audio => TrackSource::Microphone,
        MediaKind::Video => TrackSource::Camera,
    };
    send(sig, |media| media.set_muted(peer, source, muted));
}

pub fn set_screen_share(sig: &Signaling, peer: &PeerId, on: bool) {
    send(sig, |media| media.set_screen_share(peer, on));
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
    let Some(pl) = sig.media().cluster().map(|c| c.placement().clone()) else {
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
