//! `tile-views`: the page's report of the remote videos it shows, for the SFU's
//! per-subscriber allocation (docs/sfu.md, "Allocation"). The report replaces the last
//! one; it reaches the engine where the connection's media is (this node's, or relayed
//! to the node that owns the meeting's room).

use meeting_sfu::{TileView, TrackSource};
use proto::signaling::{TileViewReport, TileViews, VideoSource};
use serde_json::json;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};

use super::Signaling;
use super::request::{Payload, answer, member, parse};
use crate::access::Action;

/// `tile-views { roomId, views: [{ peerId, source, visible, width, height }] }`. Acks
/// `{ applied }`: false while the connection's media is not in the SFU (a mesh meeting,
/// or before its first `sfu-offer`), when there is nothing to apply it to.
pub async fn tile_views<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: TileViews = parse(data)?;
        let (_, joined, _) = member(&s, &sig, &req.room_id, Action::TileViews).await?;
        if joined.in_sfu {
            let views = req.views.into_iter().map(tile_view).collect();
            sig.membership().tile_views_media(&joined.peer, views);
        }
        Ok(json!({ "applied": joined.in_sfu }))
    }
    .await;
    answer(&s, ack, result);
}

/// A reported tile as the engine takes it.
fn tile_view(v: TileViewReport) -> TileView {
    TileView {
        from: v.peer_id,
        source: match v.source {
            VideoSource::Camera => TrackSource::Camera,
            VideoSource::Screen => TrackSource::ScreenShare,
        },
        visible: v.visible,
        width: v.width,
        height: v.height,
    }
}

#[cfg(test)]
mod tests {
    use proto::PeerId;

    use super::*;

    #[test]
    fn a_screen_tile_is_the_screen_share() {
        let v = tile_view(TileViewReport {
            peer_id: PeerId::from("p_1"),
            source: VideoSource::Screen,
            visible: false,
            width: 0,
            height: 0,
        });
        assert_eq!(v.source, TrackSource::ScreenShare);
        assert_eq!(v.from, PeerId::from("p_1"));
        assert!(!v.visible);
    }
}
