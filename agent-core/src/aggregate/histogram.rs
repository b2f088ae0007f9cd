//! Fixed-bucket histograms for the exposition (`api_request_duration_seconds`, sizes).

use super::snapshot::HistogramValue;

/// OpenTelemetry's default explicit bucket boundaries for HTTP durations, in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Body-size buckets in bytes: `0` isolates body-less messages (most GETs, 204/304), then
/// powers of four from 64 B to 16 MiB, which spans JSON snippets to bulk uploads in 11 buckets.
pub const SIZE_BUCKETS: &[f64] = &[
    0.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];

/// Per-bucket counts (not cumulative); the last slot is the `+Inf` overflow bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Box<[u64]>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1].into_boxed_slice(),
            sum: 0.0,
            count: 0,
        }
    }

    /// Adds one observation; `le` semantics (a value equal to a bound lands in that bucket).
    pub fn observe(&mut self, value: f64) {
        let slot = self.bounds.partition_point(|&b| b < value);
        if let Some(c) = self.counts.get_mut(slot) {
            *c += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn value(&self) -> HistogramValue {
        HistogramValue {
            bounds: self.bounds,
            counts: self.counts.to_vec(),
            sum: self.sum,
            count: self.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::below_first_bound(0.001, 0)]
    #[case::equal_to_a_bound_is_inside_it(0.005, 0)]
    #[case::between_bounds(0.3, 7)]
    #[case::above_last_bound_goes_to_inf(11.0, 14)]
    fn observation_lands_in_le_bucket(#[case] v: f64, #[case] slot: usize) {
        let mut h = Histogram::new(DURATION_BUCKETS);
        h.observe(v);
        let value = h.value();
        assert_eq!(value.counts[slot], 1);
        assert_eq!((value.count, value.sum), (1, v));
    }

    #[rstest]
    fn zero_byte_bodies_land_in_the_zero_bucket() {
        let mut h = Histogram::new(SIZE_BUCKETS);
        h.observe(0.0);
        assert_eq!(h.value().counts[0], 1);
    }
}
