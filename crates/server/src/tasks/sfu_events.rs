//! The engine's events ([`meeting_sfu::SfuEvent`]) turned into Socket.IO messages: a
//! server offer when the tracks a participant receives change, and a leave when the
//! engine lost a participant's media connection.

use meeting_sfu::{GoneReason, SfuEvent};
use proto::events::{MeetingError, ServerOffer};
use proto::{ErrorBody, ErrorCode};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use crate::media::EventReceiver;
use crate::membership::{LeaveWhy, Membership};
use crate::signaling::emit::emit_to;
use crate::signaling::{announce, peer_channel};

/// Turn the engine's events into messages, until the engine stops.
pub async fn pump<A: Adapter>(io: SocketIo<A>, membership: Membership, mut events: EventReceiver) {
    while let Some(event) = events.recv().await {
        match event {
            SfuEvent::Renegotiate {
                room,
                participant,
                offer_id,
                offer,
                tracks,
            } => {
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
                tracing::warn!(room = %room, peer = %peer, ?reason, "media connection lost");
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
            }
            SfuEvent::LayerNeeded {
                room,
                participant,
                source,
                rid,
                needed,
            } => {
                tracing::debug!(room = %room, peer = %participant, ?source, %rid, needed, "simulcast layer needed");
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
