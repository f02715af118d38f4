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
use crate::access::check::{Medium, check_media, check_receiving};
use crate::access::{Action, Grants};
use crate::membership::Membership;

/// The client's publishing offer (first one: join the engine; later: renegotiate).
/// Every source it sends must be granted (`crate::access`): a viewer's offer that
/// sends anything is refused before the engine sees it.
pub async fn offer(
    m: &Membership,
    joined: &Joined,
    grants: &Grants,
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
    let sent: Vec<Medium> = meeting_sfu::offered_sources(&sdp, &mids)
        .into_iter()
        .map(|source| match source {
            TrackSource::Microphone => Medium::Audio,
            TrackSource::Camera => Medium::Video,
            TrackSource::ScreenShare | TrackSource::ScreenShareAudio => Medium::Screen,
        })
        .collect();
    check_media(grants, Action::SfuOffer, &sent)?;
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

/// A mesh SDP (`webrtc-offer` / `webrtc-answer`) checked against the sender's grants:
/// what it sends (each audio m-line the microphone, each video m-line the camera or, by
/// a replaced track, the screen) must be granted, and it may receive only with
/// `canSubscribe`.
pub fn check_mesh(grants: &Grants, action: Action, sdp: &str) -> Result<(), SignalError> {
    let sent: Vec<Medium> = meeting_sfu::offered_sources(sdp, &[])
        .into_iter()
        .map(|source| match source {
            TrackSource::Microphone | TrackSource::ScreenShareAudio => Medium::Audio,
            TrackSource::Camera | TrackSource::ScreenShare => Medium::CameraOrScreen,
        })
        .collect();
    check_media(grants, action, &sent)?;
    check_receiving(grants, action, receives(sdp))?;
    Ok(())
}

/// Whether an SDP has an m-line that receives (`sendrecv`, the default, or `recvonly`).
fn receives(sdp: &str) -> bool {
    let mut any = false;
    let mut current: Option<bool> = None;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix("m=") {
            any |= current.unwrap_or(false);
            // A rejected m-line (port 0) carries nothing.
            current = Some(rest.split_whitespace().nth(1) != Some("0"));
        } else if let Some(c) = current.as_mut()
            && (line == "a=sendonly" || line == "a=inactive")
        {
            *c = false;
        }
    }
    any || current.unwrap_or(false)
}
