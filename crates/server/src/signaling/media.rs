//! The signaling's side of media: the client's SDP requests in, [`MediaRouter`] calls
//! out.
//!
//! Requests go to the meeting's engine through the [`MediaRouter`] (this node's engine,
//! or in a cluster the node that hosts the meeting's room); its typed
//! [`crate::media::MediaError`] becomes the client's error code here. The engine's own
//! events come back through `crate::tasks::sfu_events`.
//!
//! [`MediaRouter`]: crate::media::MediaRouter

use std::collections::BTreeMap;

use meeting_sfu::{MidSource, TrackSource};
use proto::PeerId;
use proto::signaling::SfuAnswerData;

use super::SignalError;
use super::session::Joined;
use crate::membership::Membership;

/// The client's publishing offer (first one: join the engine; later: renegotiate).
pub async fn offer(
    m: &Membership,
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
    let answer = m
        .media()
        .offer(&joined.room, &joined.peer, joined.in_sfu, sdp, mids)
        .await?;
    let tracks = m.track_infos(&joined.room, &answer.tracks).await;
    Ok(SfuAnswerData {
        sdp: answer.sdp,
        tracks,
    })
}

/// The client's answer to a server offer.
pub async fn answer(
    m: &Membership,
    peer: &PeerId,
    offer_id: u64,
    sdp: String,
) -> Result<(), SignalError> {
    Ok(m.media().answer(peer, offer_id, sdp).await?)
}
