//! Each room's dominant speaker (`crate::speaker`), decided on the allocation's timer:
//! the packets only feed the detector (`forwarding.rs`), this reports changes.

use std::time::Instant;

use super::Engine;
use crate::api::SfuEvent;

impl Engine {
    /// Decide every room's speaker; report a room whose speaker or speaking set changed.
    pub(super) fn evaluate_speakers(&mut self, now: Instant) {
        let mut events = Vec::new();
        for (id, r) in &mut self.rooms {
            r.speakers.tick(now);
            let changed = r.speakers.evaluate(now).is_some();
            let speaking: Vec<_> = r.speakers.speaking(now).collect();
            let same_set = speaking.len() == r.speaking_reported.len()
                && speaking
                    .iter()
                    .all(|(k, _)| r.speaking_reported.contains(k));
            if !changed && same_set {
                continue;
            }
            r.speaking_reported = speaking.iter().map(|&(k, _)| k).collect();
            let name = |k| self.participants.get(&k).map(|p| p.id.clone());
            events.push(SfuEvent::ActiveSpeaker {
                room: id.clone(),
                speaker: r.speakers.speaker().and_then(name),
                speaking: speaking
                    .into_iter()
                    .filter_map(|(k, level)| Some((name(k)?, level)))
                    .collect(),
            });
        }
        for e in events {
            self.emit(e);
        }
    }
}
