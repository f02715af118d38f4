//! Per-subscriber allocation, the engine's side: str0m's downlink estimates and the
//! tiles a page reports become each subscriber's [`Grant`]s, which the per-packet path
//! (`forwarding.rs`) only reads. The arithmetic is in `crate::allocate`.
//!
//! When: every [`ALLOCATE_EVERY`] (after the rooms' speakers are decided) for every participant (layers come and go, estimates
//! grow), and at once when a subscriber's estimate falls by a tenth or more (a link that
//! got worse must not wait) or its tiles change. Nothing here runs per packet.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::media::{MediaKind, Mid, Rid};

use super::Engine;
use crate::allocate::{Demand, Priority, allocate, cap_for_tile};
use crate::api::{MAX_TILE_VIEWS, ParticipantId, SfuError, SfuEvent, TileView, TrackSource};
use crate::forward::{LayerStat, gallery_skip};
use crate::model::{Grant, Key, SubState};

/// How often every subscriber's allocation is made again.
pub(super) const ALLOCATE_EVERY: Duration = Duration::from_millis(250);
/// After a track of a subscriber went down, none of its tracks goes up for this long:
/// an estimate that just fell tends to wobble, and every switch up costs a keyframe.
pub(super) const UP_HOLD: Duration = Duration::from_secs(3);
/// What one audio track is assumed to take (Opus at about 24 kbit/s for speech, plus
/// IP, UDP, RTP and SRTP headers at 50 packets a second, about 20 kbit/s): audio is
/// never cut, so it comes first.
const AUDIO_BPS: u64 = 40_000;
/// Headers on top of a layer's payload rate (about 50 bytes on a 1 000-byte packet).
const HEADER_PERCENT: u64 = 5;
/// Dynacast: a layer nobody has needed this long is reported unneeded to its publisher.
/// Needed again, it is reported at once.
pub(super) const UNNEEDED_AFTER: Duration = Duration::from_secs(2);
/// The estimate str0m starts every connection with, until its feedback says more.
pub(crate) const INITIAL_ESTIMATE_BPS: u64 = 1_000_000;

/// One allocated track: its subscription's index and the rids of its layers, lowest
/// first (in the order of [`Demand::rates`]).
struct Slot {
    sub: usize,
    rids: Vec<Option<Rid>>,
}

impl Engine {
    /// The tiles `id` shows (the page's report): layers are capped by their size, and
    /// hidden ones get no video. Applied at once.
    pub fn set_tile_views(
        &mut self,
        now: Instant,
        id: &ParticipantId,
        mut views: Vec<TileView>,
    ) -> Result<(), SfuError> {
        let key = self.routes.key(id).ok_or(SfuError::UnknownParticipant)?;
        let p = self
            .participants
            .get_mut(&key)
            .ok_or(SfuError::UnknownParticipant)?;
        views.truncate(MAX_TILE_VIEWS);
        p.downlink.views = views;
        self.allocate_for(key, now);
        self.drive(now);
        Ok(())
    }

    /// str0m's new TWCC estimate of what `key`'s downlink carries.
    pub(super) fn on_downlink_estimate(&mut self, key: Key, estimate: Bitrate, now: Instant) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        let estimate = estimate.as_u64();
        let before = p.downlink.estimate.replace(estimate);
        if before.is_none_or(|b| estimate < b - b / 10) {
            self.allocate_for(key, now);
        }
    }

    /// The periodic round: every participant's allocation again.
    pub(super) fn allocate_all(&mut self, now: Instant) {
        self.next_allocation = Some(now + ALLOCATE_EVERY);
        let keys: Vec<Key> = self.participants.keys().copied().collect();
        self.evaluate_speakers(now);
        for key in keys {
            self.allocate_for(key, now);
        }
        self.report_layer_use(now);
    }

    /// Dynacast: tell each simulcast publisher which of its layers nobody receives or is
    /// granted (after [`UNNEEDED_AFTER`]), and which are needed again. A subscription not
    /// allocated yet, or a recorded room, needs every layer.
    fn report_layer_use(&mut self, now: Instant) {
        let mut taken: HashSet<(Key, Mid, Rid)> = HashSet::new();
        let mut all_taken: HashSet<(Key, Mid)> = HashSet::new();
        for (&pk, p) in &self.participants {
            let recorded = self
                .rooms
                .get(&p.room)
                .is_some_and(|r| r.recording.is_some());
            for s in &p.subscriptions {
                if s.kind != MediaKind::Video || !matches!(s.state, SubState::Open(_)) {
                    continue;
                }
                match s.grant {
                    Grant::Layer(Some(rid)) => {
                        taken.insert((s.publisher, s.source_mid, rid));
                    }
                    Grant::Room => {
                        all_taken.insert((s.publisher, s.source_mid));
                    }
                    Grant::Layer(None) | Grant::Paused => {}
                }
                if let Some(rid) = s.layer.filter(|_| !s.needs_keyframe) {
                    taken.insert((s.publisher, s.source_mid, rid));
                }
            }
            if recorded {
                // The recorder takes the best layer of every publication of the room.
                for publ in &p.publications {
                    all_taken.insert((pk, publ.mid));
                }
            }
        }
        let mut events = Vec::new();
        for (&key, p) in &mut self.participants {
            for publ in &mut p.publications {
                if publ.kind != MediaKind::Video || publ.layers.len() < 2 {
                    continue;
                }
                let all = all_taken.contains(&(key, publ.mid));
                for l in &mut publ.layers {
                    let Some(rid) = l.rid else { continue };
                    let needed = all || taken.contains(&(key, publ.mid, rid));
                    let change = if needed {
                        l.idle_since = None;
                        std::mem::take(&mut l.unneeded)
                    } else {
                        let since = *l.idle_since.get_or_insert(now);
                        let report = !l.unneeded && now >= since + UNNEEDED_AFTER;
                        l.unneeded |= report;
                        report
                    };
                    if change {
                        events.push(SfuEvent::LayerNeeded {
                            room: p.room.clone(),
                            participant: p.id.clone(),
                            source: publ.source,
                            rid: rid.to_string(),
                            needed,
                        });
                    }
                }
            }
        }
        for e in events {
            self.emit(e);
        }
    }

    /// Make `key`'s allocation: its grants, and what its BWE should probe for.
    pub(super) fn allocate_for(&mut self, key: Key, now: Instant) {
        let Some((demands, slots, audio)) = self.demands_of(key, now) else {
            return;
        };
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        let budget = p
            .downlink
            .estimate
            .map_or(u64::MAX, |e| e.saturating_sub(audio * AUDIO_BPS));
        let plan = allocate(budget, &demands);
        let holding = p.downlink.last_down.is_some_and(|t| now < t + UP_HOLD);
        let mut went_down = false;
        for ((d, slot), grant) in demands.iter().zip(&slots).zip(&plan.grants) {
            let grant = match (*grant, d.current) {
                (Some(g), Some(c)) if g > c && holding => Some(c),
                (g, c) => {
                    went_down |= d.visible && c.is_some_and(|c| g.is_none_or(|g| g < c));
                    g
                }
            };
            let Some(sub) = p.subscriptions.get_mut(slot.sub) else {
                continue;
            };
            sub.grant = match grant {
                Some(g) => Grant::Layer(slot.rids[g]),
                None => Grant::Paused,
            };
        }
        if went_down {
            p.downlink.last_down = Some(now);
        }
        if self.cfg.bwe_initial.is_none() {
            return;
        }
        // Padding up to the next step lets the estimate grow to it (str0m pads up to the
        // minimum, never above its estimate); not while holding after a fall.
        let step = if holding {
            0
        } else {
            plan.next_step.unwrap_or(0)
        };
        let reserve = audio * AUDIO_BPS;
        let minimum = plan.used.saturating_add(step).saturating_add(reserve);
        let desired = plan.wanted.saturating_add(reserve).max(minimum) / 10 * 12;
        let (old_min, old_desired) = p.downlink.bwe_rates;
        let moved = |a: u64, b: u64| a.abs_diff(b) > b / 10;
        if moved(minimum, old_min) || moved(desired, old_desired) {
            p.downlink.bwe_rates = (minimum, desired);
            p.rtc
                .bwe()
                .set_bitrate(Bitrate::bps(minimum), Bitrate::bps(desired));
            self.mark_dirty(key);
        }
    }

    /// What `key` receives, as the allocator's input: one [`Demand`] per open video
    /// subscription whose publisher sends, and the number of audio tracks.
    fn demands_of(&self, key: Key, now: Instant) -> Option<(Vec<Demand>, Vec<Slot>, u64)> {
        let p = self.participants.get(&key)?;
        let room = self.rooms.get(&p.room)?;
        let gallery = gallery_skip(room.cameras);
        let asked = room
            .reduced
            .iter()
            .find(|&&(k, _)| k == key)
            .map_or(0, |&(_, s)| s);
        let (mut demands, mut slots, mut audio) = (Vec::new(), Vec::new(), 0);
        for (i, s) in p.subscriptions.iter().enumerate() {
            if !matches!(s.state, SubState::Open(_)) {
                continue;
            }
            if s.kind == MediaKind::Audio {
                audio += 1;
                continue;
            }
            let Some(publ) = self
                .participants
                .get(&s.publisher)
                .and_then(|o| o.publications.iter().find(|x| x.mid == s.source_mid))
            else {
                continue;
            };
            if publ.muted || !publ.published {
                continue;
            }
            // A layer its publisher stopped because nobody needed it is still offered.
            let mut layers: Vec<&LayerStat> = publ
                .layers
                .iter()
                .filter(|l| l.is_active(now) || l.unneeded)
                .collect();
            if layers.is_empty() {
                continue;
            }
            layers.sort_by_key(|l| l.bitrate());
            let top = layers.len() - 1;
            let view = p
                .downlink
                .views
                .iter()
                .find(|v| v.from == s.publisher_id && v.source == s.source);
            let cap = match view {
                Some(v) => {
                    let heights: Vec<Option<u32>> = layers.iter().map(|l| l.height).collect();
                    cap_for_tile(&heights, v.height).min(top.saturating_sub(asked))
                }
                None => top.saturating_sub(gallery.max(asked)),
            };
            let current = (!s.needs_keyframe)
                .then(|| layers.iter().position(|l| l.rid == s.layer))
                .flatten();
            demands.push(Demand {
                priority: if s.source == TrackSource::ScreenShare {
                    Priority::ScreenShare
                } else if room.speakers.speaker() == Some(s.publisher) {
                    Priority::Speaker
                } else {
                    Priority::Camera
                },
                area: view.map_or(0, |v| u64::from(v.width) * u64::from(v.height)),
                rates: layers
                    .iter()
                    .map(|l| l.bitrate() * (100 + HEADER_PERCENT) / 100)
                    .collect(),
                cap,
                visible: view.is_none_or(|v| v.visible),
                current,
            });
            slots.push(Slot {
                sub: i,
                rids: layers.iter().map(|l| l.rid).collect(),
            });
        }
        Some((demands, slots, audio))
    }
}
