//! Fixed-bucket histograms the engine fills on its worker thread with plain integers,
//! for the receiver-report loss and round-trip time of every subscriber stream. One
//! histogram per worker (not per participant): the exported series stay a handful per
//! worker however many people are connected (docs/operations.md, "Cardinality").

/// Upper bounds of the loss buckets, as a fraction of packets (RTCP's `fraction lost`).
pub const LOSS_BOUNDS: [f64; 7] = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5];
/// Upper bounds of the round-trip-time buckets, in seconds.
pub const RTT_BOUNDS: [f64; 7] = [0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8];

/// Counts per bucket (not cumulative; the last slot is `+Inf`), their number and sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    pub counts: [u64; 8],
    pub count: u64,
    /// Sum of the observed values in millionths (of a fraction, or of a second).
    pub sum_micros: u64,
}

impl Histogram {
    /// Count `value` in the first bucket whose bound is at least `value`.
    pub fn observe(&mut self, value: f64, bounds: &[f64; 7]) {
        let value = if value.is_finite() {
            value.max(0.0)
        } else {
            0.0
        };
        let slot = bounds.iter().position(|&b| value <= b).unwrap_or(7);
        self.counts[slot] += 1;
        self.count += 1;
        self.sum_micros = self.sum_micros.saturating_add((value * 1e6) as u64);
    }

    /// The sum of observations, in the observed unit.
    pub fn sum(&self) -> f64 {
        self.sum_micros as f64 / 1e6
    }

    /// Cumulative counts per bound (Prometheus's `le` buckets), `+Inf` last.
    pub fn cumulative(&self) -> [u64; 8] {
        let mut out = self.counts;
        for i in 1..out.len() {
            out[i] += out[i - 1];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_accumulate() {
        let mut h = Histogram::default();
        h.observe(0.0, &LOSS_BOUNDS);
        h.observe(0.03, &LOSS_BOUNDS);
        h.observe(0.9, &LOSS_BOUNDS);
        h.observe(f64::NAN, &LOSS_BOUNDS);
        assert_eq!(h.counts, [2, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(h.cumulative(), [2, 2, 2, 3, 3, 3, 3, 4]);
        assert_eq!(h.count, 4);
        assert!((h.sum() - 0.93).abs() < 1e-9);
    }
}
