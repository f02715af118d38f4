//! str0m's stream statistics (`Event::MediaEgressStats` / `MediaIngressStats`, once a
//! second per stream when `EngineConfig::media_stats`) folded into the engine's counters:
//! NACK totals as deltas, and each new receiver report's loss and round-trip time into
//! the worker's histograms. Nothing here runs per packet.

use str0m::media::{Mid, Rid};
use str0m::stats::{MediaEgressStats, MediaIngressStats};

use super::Engine;
use crate::histogram::{LOSS_BOUNDS, RTT_BOUNDS};
use crate::model::{Key, Participant};

impl Engine {
    /// What a subscriber reported about a stream we send it.
    pub(super) fn on_egress_stats(&mut self, key: Key, s: &MediaEgressStats) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        self.stats.nacks_received += new_nacks(p, s.mid, s.rid, true, s.nacks);
        // `loss` is `None` unless a receiver report arrived since the last event: one
        // observation per report, with the RTT that report gave.
        if let Some(loss) = s.loss {
            self.stats.rr_loss.observe(f64::from(loss), &LOSS_BOUNDS);
            if let Some(rtt) = s.rtt {
                self.stats.rr_rtt.observe(rtt.as_secs_f64(), &RTT_BOUNDS);
            }
        }
    }

    /// What we asked a publisher for on a stream we receive.
    pub(super) fn on_ingress_stats(&mut self, key: Key, s: &MediaIngressStats) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        self.stats.nacks_sent += new_nacks(p, s.mid, s.rid, false, s.nacks);
    }
}

/// The part of a stream's NACK total not counted yet (a renegotiated stream that starts
/// again from zero counts from there).
fn new_nacks(p: &mut Participant, mid: Mid, rid: Option<Rid>, outgoing: bool, total: u64) -> u64 {
    let seen = p.nacks_seen.entry((mid, rid, outgoing)).or_insert(0);
    let new = total.checked_sub(*seen).unwrap_or(total);
    *seen = total;
    new
}
