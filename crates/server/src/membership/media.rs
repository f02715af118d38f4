//! The media side of membership: the [`crate::media::MediaRouter`] requests that
//! joining, leaving, mute and screen-share changes imply, and naming the tracks a
//! participant receives.
//!
//! The requests here are fire-and-forget: the request is made now (so that requests
//! reach the engine in the order they were made) and a failure is logged, because the
//! participant's media stops with its connection anyway.

use futures_util::future::BoxFuture;
use meeting_sfu::{OutgoingTrack, TrackSource};
use proto::signaling::{MediaKind, TrackInfo};
use proto::{PeerId, RoomId, UserId};

use super::{Membership, MembershipError};
use crate::live::{LiveChange, LivePeer};
use crate::media::{MediaError, MediaRouter};

impl Membership {
    fn send(
        &self,
        request: impl FnOnce(&MediaRouter) -> BoxFuture<'static, Result<(), MediaError>>,
    ) {
        if !self.media().has_media() {
            return;
        }
        let outcome = request(self.media());
        tokio::spawn(async move {
            if let Err(e) = outcome.await {
                tracing::debug!(error = %e, "media request failed");
            }
        });
    }

    /// Take `peer` out of the engine (nothing to do if its media never started).
    pub fn leave_media(&self, peer: &PeerId) {
        self.send(|media| media.leave(peer));
    }

    /// Close the meeting's room in the engine.
    pub fn close_media(&self, room: &RoomId) {
        self.send(|media| {
            let closed = media.close_room(room);
            Box::pin(std::future::ready(closed))
        });
    }

    /// Stop (`muted`) or resume forwarding `peer`'s microphone or camera.
    pub fn mute_media(&self, peer: &PeerId, kind: MediaKind, muted: bool) {
        let source = match kind {
            MediaKind::Audio => TrackSource::Microphone,
            MediaKind::Video => TrackSource::Camera,
        };
        self.send(|media| media.set_muted(peer, source, muted));
    }

    /// What `peer` wants to receive of the meeting's simulcast cameras.
    pub fn receive_quality_media(&self, peer: &PeerId, quality: meeting_sfu::ReceiveQuality) {
        self.send(|media| media.set_receive_quality(peer, quality));
    }

    /// The remote videos `peer` shows and their sizes (`tile-views`).
    pub fn tile_views_media(&self, peer: &PeerId, views: Vec<meeting_sfu::TileView>) {
        self.send(|media| media.set_tile_views(peer, views));
    }

    /// Start or stop offering `peer`'s screen share to the others.
    pub fn share_screen_media(&self, peer: &PeerId, on: bool) {
        self.send(|media| media.set_screen_share(peer, on));
    }

    /// Change `peer`'s microphone, camera or screen share: in the registry (what the
    /// others are shown) and in the engine (what is forwarded). The new state.
    pub async fn set_media_state(
        &self,
        room: &RoomId,
        peer: &PeerId,
        change: LiveChange,
    ) -> Result<LivePeer, MembershipError> {
        let updated = self
            .live()
            .update(room, peer, change)
            .await?
            .ok_or(MembershipError::NotInMeeting)?;
        match change {
            LiveChange::Audio(on) => self.mute_media(peer, MediaKind::Audio, !on),
            LiveChange::Video(on) => self.mute_media(peer, MediaKind::Video, !on),
            LiveChange::Screen(on) => self.share_screen_media(peer, on),
            // A role, not media: nothing for the engine.
            LiveChange::CoHost(_) => {}
        }
        Ok(updated)
    }

    /// Name the sender of each track, so the client can put it in the right tile.
    pub async fn track_infos(&self, room: &RoomId, tracks: &[OutgoingTrack]) -> Vec<TrackInfo> {
        // Best effort: without the registry the client still gets the tracks, unnamed.
        let peers = self.live().peers(room).await.unwrap_or_default();
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
}
