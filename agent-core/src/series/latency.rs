//! A fixed-size log histogram of durations for one second of one service: 2 % relative
//! accuracy from 1 µs to about 30 minutes in 544 `u32` bins (2,176 bytes), allocated once and
//! cleared in place. Values outside the range land in the first or last bin.

use crate::aggregate::sketch::ceil_i32;

/// Bin width ratio: a value in bin `i` lies in `(MIN * GAMMA^(i-1), MIN * GAMMA^i]`, and the bin
/// answers with a value within `(GAMMA - 1) / (GAMMA + 1)` (≈ 2 %) of any value in it.
const GAMMA: f64 = 1.04;
/// Lower edge of the histogram, in seconds (1 µs).
const MIN_S: f64 = 1e-6;
/// `ceil(ln(1e9) / ln(GAMMA))` rounded up: covers 1 µs to ~1,780 s.
pub const BINS: usize = 544;

#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    bins: [u32; BINS],
    count: u32,
    /// Lowest and highest bin touched since the last clear (scans and clears stay short).
    lo: u16,
    hi: u16,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            bins: [0; BINS],
            count: 0,
            lo: BINS as u16,
            hi: 0,
        }
    }
}

impl LatencyHistogram {
    /// Records one duration in seconds (negative and NaN count as 0).
    pub fn add(&mut self, seconds: f64) {
        let i = bin_of(seconds);
        self.bins[i] = self.bins[i].saturating_add(1);
        self.count = self.count.saturating_add(1);
        self.lo = self.lo.min(i as u16);
        self.hi = self.hi.max(i as u16);
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// The value at quantile `q` (rank `floor(q * (count - 1))`, as the aggregator's sketches),
    /// in seconds; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * f64::from(self.count - 1)).floor() as u64;
        let mut seen = 0u64;
        for i in usize::from(self.lo)..=usize::from(self.hi) {
            seen += u64::from(self.bins[i]);
            if seen > rank {
                return Some(value_of(i));
            }
        }
        Some(value_of(usize::from(self.hi)))
    }

    /// Forgets every value, keeping the storage.
    pub fn clear(&mut self) {
        if self.count > 0 {
            self.bins[usize::from(self.lo)..=usize::from(self.hi)].fill(0);
        }
        self.count = 0;
        self.lo = BINS as u16;
        self.hi = 0;
    }
}

fn bin_of(seconds: f64) -> usize {
    if seconds.is_nan() || seconds <= MIN_S {
        return 0;
    }
    let i = ceil_i32((seconds / MIN_S).ln() / GAMMA.ln());
    (i as usize).min(BINS - 1)
}

/// The representative value of bin `i`: the point of least relative error in the bin.
fn value_of(i: usize) -> f64 {
    if i == 0 {
        return MIN_S;
    }
    MIN_S * 2.0 * GAMMA.powi(i as i32) / (GAMMA + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::one_millisecond(0.001)]
    #[case::forty_microseconds(0.000_04)]
    #[case::three_seconds(3.0)]
    #[case::ten_minutes(600.0)]
    fn answers_within_two_percent(#[case] v: f64) {
        let mut h = LatencyHistogram::default();
        h.add(v);
        let got = h.quantile(0.95).expect("one value");
        assert!((got - v).abs() / v <= 0.0201, "{got} for {v}");
    }

    #[rstest]
    fn p95_uses_the_lower_rank() {
        let mut h = LatencyHistogram::default();
        for i in 1..=100 {
            h.add(f64::from(i) / 1000.0);
        }
        // rank floor(0.95 * 99) = 94 -> the 95th smallest value, 95 ms.
        let p95 = h.quantile(0.95).expect("values");
        assert!((p95 - 0.095).abs() / 0.095 <= 0.0201, "{p95}");
        assert_eq!(h.count(), 100);
    }

    #[rstest]
    fn empty_has_no_quantile_and_clear_empties() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile(0.95), None);
        h.add(0.5);
        h.clear();
        assert_eq!(h.quantile(0.95), None);
    }

    #[rstest]
    #[case::zero(0.0)]
    #[case::negative(-1.0)]
    #[case::nan(f64::NAN)]
    #[case::huge(1e12)]
    #[case::infinite(f64::INFINITY)]
    fn out_of_range_values_are_clamped(#[case] v: f64) {
        let mut h = LatencyHistogram::default();
        h.add(v);
        assert!(h.quantile(0.5).is_some());
    }
}
