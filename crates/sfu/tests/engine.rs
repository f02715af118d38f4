//! The SFU core driven through an in-memory network with a simulated clock: str0m
//! client peers publish and subscribe through one [`Engine`]; no sockets, no real time.

mod common;

use std::time::Duration;

use common::{Sim, TAG_CAM, TAG_MIC};
use meeting_sfu::{SfuEvent, TrackSource};

#[test]
fn two_participants_exchange_audio_and_video() {
    let mut sim = Sim::new();
    let a = sim.join(|_| {});
    let b = sim.join(|_| {});
    assert!(sim.run_until(Duration::from_secs(5), |s| s.all_connected()), "ICE/DTLS did not complete");
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.everyone_hears_and_sees_everyone(20)),
        "media did not flow: a got mic {} cam {}, b got mic {} cam {}",
        sim.clients[a].frames_from(2, TAG_MIC),
        sim.clients[a].frames_from(2, TAG_CAM),
        sim.clients[b].frames_from(1, TAG_MIC),
        sim.clients[b].frames_from(1, TAG_CAM),
    );
    // Each frame arrived on the m-line the server announced for that sender and source.
    for c in &sim.clients {
        for r in &c.received {
            let t = c.track(r.mid).expect("media on an announced m-line");
            let want = if r.tag == TAG_MIC { TrackSource::Microphone } else { TrackSource::Camera };
            assert_eq!(t.source, want);
            assert_eq!(t.from.as_str(), format!("p{}", r.sender));
        }
    }
    // The first video frame each subscriber got was a keyframe.
    for c in &sim.clients {
        let first = c.received.iter().find(|r| r.tag == TAG_CAM).expect("video");
        assert!(first.keyframe, "video must start with a keyframe");
    }
    let added = sim.events.iter().filter(|(_, e)| matches!(e, SfuEvent::PublicationAdded { .. })).count();
    assert_eq!(added, 4, "mic and camera of both participants announced once");
}
