//! Mesh mode: the events a browser sends to one other participant of its meeting
//! (`webrtc-offer`, `webrtc-answer`, `ice-candidate`), relayed by the server.

use proto::ErrorBody;
use proto::events::{PeerConnectionError, RelayedAnswer, RelayedCandidate, RelayedOffer};
use proto::signaling::{Relay, RelayKind};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};

use super::emit::{broadcast, tell};
use super::request::{Payload, answer, member, parse};
use super::{SignalError, Signaling, peer_channel};
use crate::access::Action;
use crate::membership::Topology;

pub async fn relay_offer<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    answer(&s, ack, relay(&s, &sig, data, RelayKind::Offer).await);
}

pub async fn relay_answer<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    answer(&s, ack, relay(&s, &sig, data, RelayKind::Answer).await);
}

pub async fn relay_candidate<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    answer(&s, ack, relay(&s, &sig, data, RelayKind::Candidate).await);
}

/// Pass an offer, answer or candidate to one participant of the same meeting. Anything
/// addressed elsewhere is refused and never delivered; only the event's documented
/// field is passed on (see [`Relay::forward`]).
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
        let note = PeerConnectionError {
            error: ErrorBody::from(e),
            target_user_id: req.target_user_id.clone(),
        };
        tell(s, &note);
        SignalError::PeerNotFound(req.target_user_id.to_string())
    };
    let action = match kind {
        RelayKind::Offer => Action::RelayOffer,
        RelayKind::Answer => Action::RelayAnswer,
        RelayKind::Candidate => Action::RelayCandidate,
    };
    let (session, _, me) = match member(s, sig, &req.room_id, action).await {
        Ok(m) => m,
        Err(e) => return Err(refuse(s, e)),
    };
    // What the SDP sends and receives must be granted (`crate::access`: OfferedMedia).
    if let Some(sdp) = req.offer.as_ref().or(req.answer.as_ref()) {
        super::media::check_mesh(&session.claims.grants, action, &sdp.sdp)?;
    }
    let meeting = sig.membership().meeting(&req.room_id).await?;
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
    let to = s.within(peer_channel(&target.peer_id));
    match kind {
        RelayKind::Offer => broadcast(to, &RelayedOffer(out)).await,
        RelayKind::Answer => broadcast(to, &RelayedAnswer(out)).await,
        RelayKind::Candidate => broadcast(to, &RelayedCandidate(out)).await,
    }
    Ok(json!({}))
}
