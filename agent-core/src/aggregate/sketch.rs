//! A DDSketch (Masson, Rim, Lee, VLDB 2019) for latency quantiles with bounded relative error.
//!
//! Positive values are counted in logarithmic bins `γ^(i-1) < x <= γ^i` with
//! `γ = (1+α)/(1-α)`; answering a quantile with the bin's midpoint `2γ^i/(γ+1)` is within
//! `α` relative error of the true rank value. Bins live in a dense vector with an offset; when
//! more than `max_bins` would be needed the lowest bins are folded into one (the fast end of
//! latency matters least), so memory is bounded whatever the input. Sketches with the same `α`
//! merge exactly, which is what per-minute windows and per-service roll-ups rely on.

/// Relative accuracy used for every latency sketch in the agent (1 %).
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Default bound on bins: 2,048 bins at 1 % cover a ratio of e^41 between the smallest and
/// largest value, i.e. far more than 1 ns .. 1 h; the bound only bites on absurd input.
pub const DEFAULT_MAX_BINS: usize = 2048;

/// A value and its bin (`None`: counted as a zero), from [`DdSketch::bin`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Binned {
    value: f64,
    index: Option<i32>,
    /// The accuracy it was binned at, checked by [`DdSketch::add_binned`] in debug builds.
    gamma: f64,
}

/// Mergeable quantile sketch over non-negative values.
#[derive(Clone, Debug, PartialEq)]
pub struct DdSketch {
    gamma_ln: f64,
    gamma: f64,
    max_bins: usize,
    /// Index of `bins[0]`.
    offset: i32,
    bins: Vec<u64>,
    /// Values `<= 0` (and NaN, which is never expected).
    zeros: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Default for DdSketch {
    fn default() -> Self {
        DdSketch::new(RELATIVE_ACCURACY, DEFAULT_MAX_BINS)
    }
}

impl DdSketch {
    /// A sketch with relative accuracy `alpha` (clamped to 0.0001..0.5) and at most `max_bins`
    /// bins (at least 16).
    pub fn new(alpha: f64, max_bins: usize) -> DdSketch {
        let alpha = alpha.clamp(0.0001, 0.5);
        let gamma = (1.0 + alpha) / (1.0 - alpha);
        DdSketch {
            gamma_ln: gamma.ln(),
            gamma,
            max_bins: max_bins.max(16),
            offset: 0,
            bins: Vec::new(),
            zeros: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Mean of the recorded values, 0.0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// Records one value.
    pub fn add(&mut self, value: f64) {
        self.add_binned(self.bin(value));
    }

    /// `value` with its bin in this sketch, for [`Self::add_binned`] here and in other sketches
    /// of the same accuracy: the logarithm is taken once (a request's duration goes to its
    /// endpoint's sketch and its service's minute).
    pub fn bin(&self, value: f64) -> Binned {
        let index = (!value.is_nan() && value > 0.0).then(|| self.index_of(value));
        Binned {
            value,
            index,
            gamma: self.gamma,
        }
    }

    /// Records a value binned by a sketch of the same accuracy ([`Self::bin`]).
    pub fn add_binned(&mut self, b: Binned) {
        debug_assert!(
            (self.gamma - b.gamma).abs() < 1e-12,
            "a value binned by a sketch of different accuracy"
        );
        self.count += 1;
        let Some(index) = b.index else {
            self.zeros += 1;
            self.min = self.min.min(0.0);
            self.max = self.max.max(0.0);
            return;
        };
        self.sum += b.value;
        self.min = self.min.min(b.value);
        self.max = self.max.max(b.value);
        self.add_to_bin(index, 1);
    }

    fn index_of(&self, value: f64) -> i32 {
        // Positive here; +inf saturates the cast, and the clamp keeps index arithmetic far from
        // i32 overflow (1e6 bins at 1 % is beyond any finite f64 anyway).
        ceil_i32(value.ln() / self.gamma_ln).clamp(-1_000_000, 1_000_000)
    }

    fn add_to_bin(&mut self, index: i32, n: u64) {
        if self.bins.is_empty() {
            self.offset = index;
            self.bins.push(n);
            return;
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            if self.bins.len() + grow > self.max_bins {
                // Fold into the lowest bin rather than growing below it.
                let room = self.max_bins.saturating_sub(self.bins.len());
                let new_offset = self.offset - room as i32;
                self.prepend(room);
                self.offset = new_offset;
                self.bins[0] += n;
                return;
            }
            self.prepend(grow);
            self.offset = index;
        } else if (index - self.offset) as usize >= self.bins.len() {
            let lowest_kept = index - self.max_bins as i32 + 1;
            if lowest_kept > self.offset {
                self.fold_below(lowest_kept);
            }
            self.bins.resize((index - self.offset) as usize + 1, 0);
        }
        let slot = (index - self.offset) as usize;
        self.bins[slot] += n;
    }

    fn prepend(&mut self, n: usize) {
        if n > 0 {
            self.bins.splice(0..0, std::iter::repeat_n(0, n));
        }
    }

    /// Folds every bin below index `lowest` into the bin at `lowest`, which becomes the first.
    fn fold_below(&mut self, lowest: i32) {
        let k = ((lowest - self.offset) as usize).min(self.bins.len());
        let folded: u64 = self.bins.drain(0..k).sum();
        self.offset = lowest;
        if self.bins.is_empty() {
            self.bins.push(0);
        }
        self.bins[0] += folded;
    }

    /// Adds every value of `other` (same accuracy) to this sketch.
    pub fn merge(&mut self, other: &DdSketch) {
        debug_assert!(
            (self.gamma - other.gamma).abs() < 1e-12,
            "merging sketches of different accuracy"
        );
        for (i, &n) in other.bins.iter().enumerate() {
            if n > 0 {
                self.add_to_bin(other.offset + i as i32, n);
            }
        }
        self.zeros += other.zeros;
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` (0..=1), within the relative accuracy; 0.0 when empty.
    /// Lower-rank convention: the value at rank `floor(q * (count - 1))` of the sorted input.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let q = if q.is_nan() { 0.5 } else { q.clamp(0.0, 1.0) };
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        if rank < self.zeros {
            return 0.0;
        }
        let mut seen = self.zeros;
        for (i, &n) in self.bins.iter().enumerate() {
            seen += n;
            if seen > rank {
                let index = self.offset + i as i32;
                let estimate = 2.0 * self.gamma.powi(index) / (self.gamma + 1.0);
                // Never answer outside what was seen.
                return estimate.clamp(self.min.max(0.0), self.max);
            }
        }
        self.max
    }

    /// Bins currently allocated (memory is `8 * bins` bytes plus a constant).
    pub fn bin_count(&self) -> usize {
        self.bins.len()
    }

    /// Forgets every value, keeping the allocation.
    pub fn clear(&mut self) {
        self.bins.clear();
        self.offset = 0;
        self.zeros = 0;
        self.count = 0;
        self.sum = 0.0;
        self.min = f64::INFINITY;
        self.max = f64::NEG_INFINITY;
    }
}

/// `q.ceil() as i32` (saturating, NaN to 0) without a call into libm, which the baseline
/// x86-64 target makes for `ceil`: truncate towards zero, then step up when that fell short.
pub(crate) fn ceil_i32(q: f64) -> i32 {
    let t = q as i32;
    t.saturating_add(i32::from(f64::from(t) < q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn ceil_i32_is_ceil_then_a_saturating_cast() {
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            2.5,
            -2.5,
            1e-300,
            -1e-300,
            2147483646.5,
            2147483647.0,
            2147483647.5,
            -2147483648.0,
            -2147483648.5,
            3e9,
            -3e9,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MAX,
            f64::MIN,
        ];
        // Quotients of the kind the sketches compute, on both sides of integers.
        let gamma_ln = (1.02f64 / 0.98).ln();
        for i in 0..20_000 {
            let v = 1e-7 * 1.001f64.powi(i);
            values.extend([v.ln() / gamma_ln, -(v.ln() / gamma_ln), f64::from(i) / 8.0]);
        }
        for q in values {
            assert_eq!(ceil_i32(q), q.ceil() as i32, "{q:e}");
        }
    }

    #[test]
    fn a_value_binned_by_one_sketch_adds_to_another_as_itself() {
        let values = [
            0.0,
            -1.0,
            f64::NAN,
            1e-9,
            0.0123,
            0.5,
            1.0,
            7.25,
            3600.0,
            1e300,
        ];
        let (mut direct, mut via, binner) = (
            DdSketch::default(),
            DdSketch::default(),
            // Binning depends on the accuracy alone, not on the bound on bins.
            DdSketch::new(RELATIVE_ACCURACY, 16),
        );
        for v in values {
            direct.add(v);
            via.add_binned(binner.bin(v));
        }
        assert_eq!((direct.bins, direct.offset), (via.bins, via.offset));
        assert_eq!(
            (
                direct.count,
                direct.zeros,
                direct.sum,
                direct.min,
                direct.max
            ),
            (via.count, via.zeros, via.sum, via.min, via.max)
        );
    }

    fn exact(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    /// Deterministic pseudo-random values in (0, 1] (xorshift), no dependency needed.
    fn uniform(n: usize, mut seed: u64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ((seed >> 11) as f64 + 1.0) / (1u64 << 53) as f64
            })
            .collect()
    }

    fn assert_within(sketch: &DdSketch, values: &[f64]) {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let want = exact(&sorted, q);
            let got = sketch.quantile(q);
            let err = (got - want).abs() / want;
            assert!(
                err <= RELATIVE_ACCURACY + 1e-9,
                "q={q} want={want} got={got} err={err}"
            );
        }
    }

    #[rstest]
    #[case::uniform_milliseconds(uniform(10_000, 7).into_iter().map(|u| u * 0.1).collect())]
    #[case::log_spread_microseconds_to_minutes(uniform(20_000, 11).into_iter().map(|u| 1e-6 * (1e8_f64).powf(u)).collect())]
    #[case::heavy_tail(uniform(5_000, 3).into_iter().map(|u| 0.001 / u).collect())]
    #[case::single_value(vec![0.0421])]
    fn quantiles_within_one_percent_of_exact(#[case] values: Vec<f64>) {
        let mut s = DdSketch::default();
        values.iter().for_each(|&v| s.add(v));
        assert_within(&s, &values);
        assert_eq!(s.count(), values.len() as u64);
    }

    #[rstest]
    fn merged_sketches_answer_like_one_sketch_over_all_values() {
        let a = uniform(3_000, 5);
        let b: Vec<f64> = uniform(7_000, 9).into_iter().map(|u| u * 10.0).collect();
        let (mut sa, mut sb, mut all) = (
            DdSketch::default(),
            DdSketch::default(),
            DdSketch::default(),
        );
        a.iter().for_each(|&v| {
            sa.add(v);
            all.add(v)
        });
        b.iter().for_each(|&v| {
            sb.add(v);
            all.add(v)
        });
        sa.merge(&sb);
        assert_eq!(
            (sa.count(), sa.bins.clone(), sa.offset),
            (all.count(), all.bins.clone(), all.offset)
        );
        let joined: Vec<f64> = a.into_iter().chain(b).collect();
        assert_within(&sa, &joined);
    }

    #[rstest]
    fn zeros_count_at_the_bottom() {
        let mut s = DdSketch::default();
        for _ in 0..90 {
            s.add(0.0)
        }
        for _ in 0..10 {
            s.add(1.0)
        }
        assert_eq!(s.quantile(0.5), 0.0);
        assert!((s.quantile(0.99) - 1.0).abs() <= 0.01);
    }

    #[rstest]
    fn memory_stays_bounded_on_absurd_ranges() {
        let mut s = DdSketch::new(RELATIVE_ACCURACY, 64);
        for e in -300..300 {
            s.add(10f64.powi(e));
        }
        assert!(s.bin_count() <= 64);
        // The top of the distribution keeps its accuracy.
        assert!((s.quantile(1.0) - 1e299).abs() / 1e299 <= 0.01);
    }

    #[rstest]
    fn descending_input_and_infinities_stay_bounded() {
        let mut s = DdSketch::new(RELATIVE_ACCURACY, 64);
        for e in (-300..300).rev() {
            s.add(10f64.powi(e));
        }
        s.add(f64::INFINITY);
        s.add(f64::MIN_POSITIVE / 1e10);
        assert!(s.bin_count() <= 64);
        assert_eq!(s.count(), 602);
    }

    #[rstest]
    fn empty_sketch_answers_zero() {
        let s = DdSketch::default();
        assert_eq!((s.quantile(0.99), s.mean()), (0.0, 0.0));
    }
}
