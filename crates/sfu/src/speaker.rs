//! Dominant-speaker detection from the audio-level header extension (RFC 6464) of each
//! published microphone.
//!
//! Our own, after reading how Jitsi's `DominantSpeakerIdentification` and mediasoup's
//! `ActiveSpeakerObserver` (its port) work: both compare speech activity over several
//! time scales so that a short burst does not take the floor, and require a challenger
//! to beat the current speaker, not just to be loud. This one is simpler:
//! - each packet says whether the frame is voiced (level above [`VOICE_DBOV`]);
//! - per participant two exponential averages of "voiced": a short one (time constant
//!   [`SHORT_TAU`]) for the "speaking" indicator, a long one ([`LONG_TAU`]) for the floor;
//! - a challenger takes the floor when its long average is above [`FLOOR_MIN`] and
//!   beats the speaker's by [`FLOOR_MARGIN`], continuously for [`FLOOR_HOLD`];
//! - silence never takes the floor away: the last speaker stays until someone else
//!   talks (a speaker view should not go blank between sentences).
//!
//! A cough (300 ms of loud frames) lifts the long average to about 0.26, well under
//! `FLOOR_MIN`; continuous speech reaches it after about 0.7 s and takes the floor about
//! 0.4 s later.

use std::time::{Duration, Instant};

/// A frame at least this loud (−dBov below this number) counts as voiced.
pub const VOICE_DBOV: u8 = 50;
pub const SHORT_TAU: Duration = Duration::from_millis(300);
pub const LONG_TAU: Duration = Duration::from_secs(1);
pub const FLOOR_MIN: f32 = 0.5;
pub const FLOOR_MARGIN: f32 = 0.15;
pub const FLOOR_HOLD: Duration = Duration::from_millis(400);
/// The short average above which a participant shows as speaking.
pub const SPEAKING_MIN: f32 = 0.3;
/// Without packets for this long, a participant's averages count as silence (a muted
/// browser microphone may stop sending altogether).
const SILENT_AFTER: Duration = Duration::from_millis(500);

/// One participant's activity.
#[derive(Debug, Clone)]
struct Activity<K> {
    who: K,
    short: f32,
    long: f32,
    last: Instant,
}

impl<K> Activity<K> {
    fn decay(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f32();
        self.short *= (-dt / SHORT_TAU.as_secs_f32()).exp();
        self.long *= (-dt / LONG_TAU.as_secs_f32()).exp();
        self.last = now;
    }

    fn add(&mut self, voiced: bool, now: Instant) {
        if !voiced {
            self.decay(now);
            return;
        }
        // Exponential averages of "voiced" (1) over the time since the last packet.
        let dt = now.saturating_duration_since(self.last).as_secs_f32();
        self.short += (1.0 - self.short) * (1.0 - (-dt / SHORT_TAU.as_secs_f32()).exp());
        self.long += (1.0 - self.long) * (1.0 - (-dt / LONG_TAU.as_secs_f32()).exp());
        self.last = now;
    }

    fn long_at(&self, now: Instant) -> f32 {
        let dt = now.saturating_duration_since(self.last);
        if dt > SILENT_AFTER {
            self.long * (-dt.as_secs_f32() / LONG_TAU.as_secs_f32()).exp()
        } else {
            self.long
        }
    }

    fn short_at(&self, now: Instant) -> f32 {
        let dt = now.saturating_duration_since(self.last);
        if dt > SILENT_AFTER {
            self.short * (-dt.as_secs_f32() / SHORT_TAU.as_secs_f32()).exp()
        } else {
            self.short
        }
    }
}

/// The dominant speaker of one room. `K` is whatever names a participant.
#[derive(Debug, Clone)]
pub struct SpeakerDetector<K> {
    activity: Vec<Activity<K>>,
    speaker: Option<K>,
    /// A challenger and since when it has beaten the speaker.
    challenger: Option<(K, Instant)>,
}

impl<K> Default for SpeakerDetector<K> {
    fn default() -> Self {
        SpeakerDetector {
            activity: Vec::new(),
            speaker: None,
            challenger: None,
        }
    }
}

impl<K: Copy + PartialEq> SpeakerDetector<K> {
    /// One audio packet of `who` with its RFC 6464 level (0 = loudest, 127 = silence).
    pub fn observe(&mut self, who: K, level: u8, now: Instant) {
        let voiced = level <= VOICE_DBOV;
        match self.activity.iter_mut().find(|a| a.who == who) {
            Some(a) => a.add(voiced, now),
            None => self.activity.push(Activity {
                who,
                short: 0.0,
                long: 0.0,
                last: now,
            }),
        }
    }

    /// `who` left the room.
    pub fn forget(&mut self, who: K) {
        self.activity.retain(|a| a.who != who);
        if self.speaker == Some(who) {
            self.speaker = None;
        }
        if self.challenger.is_some_and(|(c, _)| c == who) {
            self.challenger = None;
        }
    }

    pub fn speaker(&self) -> Option<K> {
        self.speaker
    }

    /// Decide the floor at `now`; returns the new speaker when it changed.
    pub fn evaluate(&mut self, now: Instant) -> Option<K> {
        let best = self
            .activity
            .iter()
            .map(|a| (a.who, a.long_at(now)))
            .filter(|&(_, l)| l >= FLOOR_MIN)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((best, best_long)) = best else {
            self.challenger = None;
            return None;
        };
        if self.speaker == Some(best) {
            self.challenger = None;
            return None;
        }
        let current = self
            .speaker
            .and_then(|s| self.activity.iter().find(|a| a.who == s))
            .map_or(0.0, |a| a.long_at(now));
        if self.speaker.is_some() && best_long < current + FLOOR_MARGIN {
            self.challenger = None;
            return None;
        }
        let since = match self.challenger {
            Some((c, since)) if c == best => since,
            _ => {
                self.challenger = Some((best, now));
                now
            }
        };
        // The first speaker of a room takes the floor at once.
        if self.speaker.is_none() || now >= since + FLOOR_HOLD {
            self.speaker = Some(best);
            self.challenger = None;
            return Some(best);
        }
        None
    }

    /// Who is speaking now (short average above [`SPEAKING_MIN`]), with a level from 0
    /// to 100 for "speaking" indicators.
    pub fn speaking(&self, now: Instant) -> impl Iterator<Item = (K, u8)> + '_ {
        self.activity.iter().filter_map(move |a| {
            let s = a.short_at(now);
            (s >= SPEAKING_MIN).then(|| (a.who, (s * 100.0).round().min(100.0) as u8))
        })
    }

    /// Let the averages of participants that stopped sending decay (call before
    /// [`Self::evaluate`] now and then; packets do it otherwise).
    pub fn tick(&mut self, now: Instant) {
        for a in &mut self.activity {
            if now.saturating_duration_since(a.last) > SILENT_AFTER {
                a.decay(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: u8 = 30;
    const QUIET: u8 = 127;

    /// Feed 20 ms packets for `d`: `levels(who)` each; evaluate every 100 ms. Returns
    /// the changes (time since `t0`, new speaker).
    fn run(
        det: &mut SpeakerDetector<u8>,
        t: &mut Instant,
        t0: Instant,
        d: Duration,
        levels: impl Fn(u8) -> u8,
    ) -> Vec<(Duration, u8)> {
        let mut changes = Vec::new();
        let end = *t + d;
        let mut n = 0u32;
        while *t < end {
            *t += Duration::from_millis(20);
            n += 1;
            for who in 1..=3 {
                det.observe(who, levels(who), *t);
            }
            if n.is_multiple_of(5)
                && let Some(s) = det.evaluate(*t)
            {
                changes.push((*t - t0, s));
            }
        }
        changes
    }

    #[test]
    fn a_cough_does_not_take_the_floor() {
        let t0 = Instant::now();
        let (mut t, mut det) = (t0, SpeakerDetector::default());
        // 1 speaks for 3 s: takes the floor within a second.
        let c = run(&mut det, &mut t, t0, Duration::from_secs(3), |w| {
            if w == 1 { LOUD } else { QUIET }
        });
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].1, 1);
        assert!(c[0].0 <= Duration::from_secs(1), "{c:?}");
        // 2 coughs (300 ms) while 1 goes on, then again while 1 pauses: no change.
        let cough = |w| if w == 1 || w == 2 { LOUD } else { QUIET };
        assert!(run(&mut det, &mut t, t0, Duration::from_millis(300), cough).is_empty());
        assert!(
            run(
                &mut det,
                &mut t,
                t0,
                Duration::from_secs(1),
                |w| if w == 1 { LOUD } else { QUIET }
            )
            .is_empty()
        );
        let _ = run(&mut det, &mut t, t0, Duration::from_secs(2), |_| QUIET);
        assert!(
            run(&mut det, &mut t, t0, Duration::from_millis(300), |w| {
                if w == 2 { LOUD } else { QUIET }
            })
            .is_empty()
        );
        assert!(run(&mut det, &mut t, t0, Duration::from_secs(2), |_| QUIET).is_empty());
        // Silence kept the last speaker.
        assert_eq!(det.speaker(), Some(1));
    }

    #[test]
    fn the_floor_moves_when_another_talks_and_the_first_stops() {
        let t0 = Instant::now();
        let (mut t, mut det) = (t0, SpeakerDetector::default());
        run(&mut det, &mut t, t0, Duration::from_secs(3), |w| {
            if w == 1 { LOUD } else { QUIET }
        });
        let start = t - t0;
        let c = run(&mut det, &mut t, t0, Duration::from_secs(3), |w| {
            if w == 3 { LOUD } else { QUIET }
        });
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].1, 3);
        assert!(c[0].0 - start <= Duration::from_millis(1500), "{c:?}");
        // Both talk: the floor stays with 3 (1 does not beat it by the margin).
        let both = |w| if w == 3 || w == 1 { LOUD } else { QUIET };
        assert!(run(&mut det, &mut t, t0, Duration::from_secs(3), both).is_empty());
        let speaking: Vec<u8> = det.speaking(t).map(|(w, _)| w).collect();
        assert_eq!(speaking, vec![1, 3]);
        // 3 leaves: nobody has the floor until someone talks.
        det.forget(3);
        assert_eq!(det.speaker(), None);
        let c = run(&mut det, &mut t, t0, Duration::from_millis(200), |w| {
            if w == 1 { LOUD } else { QUIET }
        });
        assert_eq!(c.last().map(|c| c.1), Some(1));
    }

    #[test]
    fn a_participant_that_stops_sending_goes_quiet() {
        let t0 = Instant::now();
        let mut det = SpeakerDetector::default();
        let mut t = t0;
        for _ in 0..100 {
            t += Duration::from_millis(20);
            det.observe(1u8, LOUD, t);
        }
        assert_eq!(det.evaluate(t), Some(1));
        assert_eq!(det.speaking(t).count(), 1);
        t += Duration::from_secs(3);
        det.tick(t);
        assert_eq!(det.speaking(t).count(), 0);
        assert_eq!(det.evaluate(t), None);
        assert_eq!(det.speaker(), Some(1));
    }
}
