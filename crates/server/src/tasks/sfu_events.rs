//! The engine's events ([`meeting_sfu::SfuEvent`]) turned into Socket.IO messages: a
//! server offer when the tracks a participant receives change, and a leave when the
//! engine lost a participant's media connection, and the room's active speaker (the
//! last one kept per room, for a participant whose media connects later).

use std::collections::HashMap;

use meeting_sfu::{GoneReason, ParticipantId, SfuEvent, TrackSource};
use proto::events::{ActiveSpeaker, LayerNeeded, MeetingError, ServerOffer, SpeakingLevel};
use proto::signaling::VideoSource;
use proto::{ErrorBody, ErrorCode, RoomId};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use crate::live::LivePeer;
use crate::media::EventReceiver;
use crate::membership::{LeaveWhy, Membership};
use crate::signaling::emit::emit_to;
use crate::signaling::{announce, peer_channel, room_channel};

/// Turn the engine's events into messages, until the engine stops.
pub async fn pump<A: Adapter>(io: SocketIo<A>, membership: Membership, mut events: EventReceiver) {
    // The engine reports speakers on changes only: a late joiner gets the room's last
    // report when its media connects. Rooms whose media lives here only.
    let mut last_speaker: HashMap<RoomId, ActiveSpeaker> = HashMap::new();
    while let Some(event) = events.recv().await {
        match event {
            SfuEvent::Renegotiate {
                room,
                participant,
                offer_id,
                offer,
                tracks,
            } => {
                if membership.app().is_draining() {
                    // The pages are replacing their media connections to this node
                    // (`server-draining`): an offer for the old one would reach the new
                    // one (a socket on another node gets it through the adapter).
                    tracing::debug!(room = %room, peer = %participant, "draining: server offer not sent");
                    continue;
                }
                let tracks = membership.track_infos(&room, &tracks).await;
                let msg = ServerOffer {
                    room_id: room,
                    offer_id,
                    sdp: offer,
                    tracks,
                };
                emit_to(&io, peer_channel(&participant), &msg).await;
            }
            SfuEvent::ParticipantGone {
                room,
                participant,
                reason,
            } => {
                let peer = participant;
                if membership.app().is_draining() {
                    // The pages move their media off a draining node (`server-draining`):
                    // closing the old connection is their doing, not a failure, and the
                    // participant stays in the meeting (on another node, or resuming).
                    tracing::info!(room = %room, peer = %peer, ?reason, "media connection closed while draining");
                    continue;
                }
                tracing::warn!(room = %room, peer = %peer, ?reason, "media connection lost");
                forget_if_empty(&membership, &mut last_speaker, &room).await;
                let note = MeetingError {
                    error: ErrorBody::new(ErrorCode::MediaFailed, media_failure_hint(&reason)),
                };
                emit_to(&io, peer_channel(&peer), &note).await;
                if let Some(gone) = membership.leave(&room, &peer, LeaveWhy::MediaFailed).await {
                    announce::left(&io, &gone).await;
                }
            }
            SfuEvent::ConnectionState {
                room,
                participant,
                state,
            } => {
                tracing::debug!(room = %room, peer = %participant, ?state, "media connection state");
                if state == meeting_sfu::ConnectionState::Connected {
                    membership.app().monitor.media_connected(&participant);
                    if let Some(last) = last_speaker.get(&room) {
                        emit_to(&io, peer_channel(&participant), last).await;
                    }
                }
            }
            SfuEvent::PublicationAdded {
                room,
                participant,
                source,
            } => {
                tracing::debug!(room = %room, peer = %participant, ?source, "publication added");
            }
            SfuEvent::ActiveSpeaker {
                room,
                speaker,
                speaking,
            } => {
                tracing::debug!(room = %room, ?speaker, speaking = speaking.len(), "active speaker");
                // Only the node that owns the room's media hears this event; the
                // adapter carries the emit to the meeting's sockets on every node.
                let peers = membership.live().peers(&room).await.unwrap_or_default();
                let msg = active_speaker(room, speaker, speaking, &peers);
                emit_to(&io, room_channel(&msg.room_id), &msg).await;
                last_speaker.insert(msg.room_id.clone(), msg);
            }
            SfuEvent::LayerNeeded {
                room,
                participant,
                source,
                rid,
                needed,
            } => {
                tracing::debug!(room = %room, peer = %participant, ?source, %rid, needed, "simulcast layer needed");
                // Only the media node hears this; the adapter carries the emit to the
                // publisher's socket wherever it is connected.
                if let Some(msg) = layer_needed(room, source, rid, needed) {
                    emit_to(&io, peer_channel(&participant), &msg).await;
                }
            }
            SfuEvent::PublicationRemoved {
                room,
                participant,
                source,
            } => {
                tracing::debug!(room = %room, peer = %participant, ?source, "publication removed");
                forget_if_empty(&membership, &mut last_speaker, &room).await;
            }
        }
    }
}

/// Drop a room's last speaker once nobody is left in it (a publisher leaving, or a
/// media connection lost, may have been the last one). A registry error keeps it.
async fn forget_if_empty(
    membership: &Membership,
    last: &mut HashMap<RoomId, ActiveSpeaker>,
    room: &RoomId,
) {
    if !last.contains_key(room) {
        return;
    }
    if let Ok(peers) = membership.live().peers(room).await
        && peers.is_empty()
    {
        last.remove(room);
    }
}

/// The engine's speaker report as the page reads it: the speaker's user id from the
/// room's registry (`None` if they left meanwhile), levels keyed by peer.
fn active_speaker(
    room: RoomId,
    speaker: Option<ParticipantId>,
    speaking: Vec<(ParticipantId, u8)>,
    peers: &[LivePeer],
) -> ActiveSpeaker {
    let user_id = speaker.as_ref().and_then(|s| {
        peers
            .iter()
            .find(|p| &p.peer_id == s)
            .map(|p| p.user_id.clone())
    });
    ActiveSpeaker {
        room_id: room,
        peer_id: speaker,
        user_id,
        speaking: speaking
            .into_iter()
            .map(|(peer_id, level)| SpeakingLevel { peer_id, level })
            .collect(),
    }
}

/// Dynacast's `layer-needed` for the publisher. Only video is sent in simulcast layers;
/// an audio source has none (`None`).
fn layer_needed(
    room: RoomId,
    source: TrackSource,
    rid: String,
    needed: bool,
) -> Option<LayerNeeded> {
    let source = match source {
        TrackSource::Camera => VideoSource::Camera,
        TrackSource::ScreenShare => VideoSource::Screen,
        TrackSource::Microphone | TrackSource::ScreenShareAudio => return None,
    };
    Some(LayerNeeded {
        room_id: room,
        source,
        rid,
        needed,
    })
}

/// The seed's troubleshooting advice, where the failure suggests it.
fn media_failure_hint(reason: &GoneReason) -> String {
    match reason {
        GoneReason::ConnectTimeout => "No media connection could be made to the server. Check that \
            MEDIASOUP_ANNOUNCED_IP is the server's LAN or public address (not 127.0.0.1), that the UDP ports \
            MEDIASOUP_MIN_PORT..MEDIASOUP_MAX_PORT are open in the firewall, and configure a TURN server for \
            networks that block UDP."
            .into(),
        GoneReason::ConnectionLost => {
            "The media connection to the server was lost (network change or firewall). Rejoin to reconnect.".into()
        }
        GoneReason::Failed(why) => format!("The media connection failed: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use proto::PeerId;
    use serde_json::json;

    use super::*;
    use crate::live::tests::peer;

    #[test]
    fn the_speaker_is_named_with_their_user_and_everyone_speaking() {
        let peers = [peer("ann"), peer("bo")];
        let (ann, bo) = (peers[0].peer_id.clone(), peers[1].peer_id.clone());
        let msg = active_speaker(
            RoomId::new("ABC"),
            Some(bo.clone()),
            vec![(bo.clone(), 80), (ann.clone(), 12)],
            &peers,
        );
        assert_eq!(
            serde_json::to_value(&msg).unwrap_or_default(),
            json!({ "roomId": "ABC", "peerId": bo.to_string(), "userId": "bo",
                    "speaking": [{ "peerId": bo.to_string(), "level": 80 }, { "peerId": ann.to_string(), "level": 12 }] })
        );
    }

    #[test]
    fn a_layer_needed_names_the_video_source_and_rid() {
        let msg = layer_needed(RoomId::new("ABC"), TrackSource::Camera, "f".into(), false);
        assert_eq!(
            serde_json::to_value(&msg).unwrap_or_default(),
            json!({ "roomId": "ABC", "source": "camera", "rid": "f", "needed": false })
        );
        let screen = layer_needed(
            RoomId::new("ABC"),
            TrackSource::ScreenShare,
            "q".into(),
            true,
        );
        assert_eq!(screen.map(|m| m.source), Some(VideoSource::Screen));
        assert_eq!(
            layer_needed(
                RoomId::new("ABC"),
                TrackSource::Microphone,
                "q".into(),
                true
            ),
            None
        );
    }

    #[test]
    fn no_speaker_or_one_who_left_has_no_user() {
        let msg = active_speaker(RoomId::new("ABC"), None, vec![], &[peer("ann")]);
        assert_eq!(
            serde_json::to_value(&msg).unwrap_or_default(),
            json!({ "roomId": "ABC", "peerId": null, "userId": null, "speaking": [] })
        );
        let gone = active_speaker(RoomId::new("ABC"), Some(PeerId::new("p9")), vec![], &[]);
        assert_eq!(gone.peer_id, Some(PeerId::new("p9")));
        assert_eq!(gone.user_id, None);
    }
}
