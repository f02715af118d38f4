//! Counting what arrives: a mergeable latency histogram, sequence-number loss per
//! stream, and percentiles of small samples (join times).

use serde::Serialize;

/// A log-linear histogram of microsecond values: exact below 1024, then 64 buckets per
/// power of two (≤ 1.6 % error). Fixed size, so recording never allocates.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

const LINEAR: u64 = 1024;
const SUB: u64 = 64;
const OCTAVES: u64 = 30;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; (LINEAR + SUB * OCTAVES) as usize],
            total: 0,
            max: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let octave = (63 - v.leading_zeros() as u64) - 10; // v in [2^(10+octave), 2^(11+octave))
    let octave = octave.min(OCTAVES - 1);
    let base = 1u64 << (10 + octave);
    // SUB = 2^6 sub-buckets per octave: the offset's top bits.
    let sub = ((v - base) >> (octave + 4)).min(SUB - 1);
    (LINEAR + octave * SUB + sub) as usize
}

/// The lower bound of a bucket's values.
fn bucket_value(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let octave = (i - LINEAR) / SUB;
    let sub = (i - LINEAR) % SUB;
    let base = 1u64 << (10 + octave);
    base + sub * base / SUB
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` (0..=1), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        if q >= 1.0 {
            return Some(self.max);
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_value(i).min(self.max));
            }
        }
        Some(self.max)
    }

    pub fn summary(&self) -> Percentiles {
        let f = |q| self.quantile(q).map(|v| v as f64 / 1000.0);
        Percentiles {
            count: self.total,
            p50: f(0.5),
            p90: f(0.9),
            p99: f(0.99),
            max: f(1.0),
        }
    }
}

/// Percentiles in milliseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// Percentiles (ms) of a small sample given in milliseconds.
pub fn percentiles_ms(samples: &[f64]) -> Percentiles {
    let mut s: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if s.is_empty() {
            return None;
        }
        let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
        Some(s[i])
    };
    Percentiles {
        count: s.len() as u64,
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: at(1.0),
    }
}

/// Loss of one incoming RTP stream from its extended sequence numbers: expected is the
/// span seen, received what arrived (duplicates are not counted twice).
#[derive(Clone, Debug, Default)]
pub struct SeqTracker {
    first: Option<u64>,
    max: u64,
    /// Bit `d` set: `max - d` arrived. Catches duplicates among the last 64.
    window: u64,
    received: u64,
    duplicates: u64,
}

impl SeqTracker {
    pub fn record(&mut self, ext_seq: u64) {
        let Some(first) = self.first else {
            self.first = Some(ext_seq);
            self.max = ext_seq;
            self.window = 1;
            self.received = 1;
            return;
        };
        if ext_seq > self.max {
            let shift = ext_seq - self.max;
            self.window = if shift >= 64 { 0 } else { self.window << shift };
            self.window |= 1;
            self.max = ext_seq;
        } else {
            let d = self.max - ext_seq;
            if d < 64 {
                if self.window & (1 << d) != 0 {
                    self.duplicates += 1;
                    return;
                }
                self.window |= 1 << d;
            }
            if ext_seq < first {
                self.first = Some(ext_seq);
            }
        }
        self.received += 1;
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn expected(&self) -> u64 {
        self.first.map_or(0, |f| self.max - f + 1)
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_close() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 10); // 10 µs .. 100 ms
        }
        let p50 = h.quantile(0.5).expect("p50") as f64;
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.02, "{p50}");
        let p99 = h.quantile(0.99).expect("p99") as f64;
        assert!((p99 - 99_000.0).abs() / 99_000.0 < 0.02, "{p99}");
        assert_eq!(h.quantile(1.0), Some(100_000));
        assert_eq!(Histogram::default().quantile(0.5), None);
        // Huge values land in the last bucket instead of overflowing.
        h.record(u64::MAX / 2);
        assert_eq!(h.count(), 10_001);
    }

    #[test]
    fn merging_adds_counts() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(5);
        b.record(500);
        b.record(5000);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.quantile(0.34), Some(500));
    }

    #[test]
    fn small_sample_percentiles() {
        let p = percentiles_ms(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(p.p50, Some(3.0));
        assert_eq!(p.max, Some(5.0));
        assert_eq!(percentiles_ms(&[]).p50, None);
    }

    #[test]
    fn loss_from_gaps_reordering_and_duplicates() {
        let mut s = SeqTracker::default();
        for seq in [100, 101, 103, 102, 102, 106] {
            s.record(seq);
        }
        assert_eq!(s.expected(), 7);
        assert_eq!(s.received(), 5);
        assert_eq!(s.lost(), 2);
    }
}
