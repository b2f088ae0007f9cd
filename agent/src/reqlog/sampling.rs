//! Which transactions reach the log: every error and every slow request, a deterministic share
//! of the rest.
//!
//! The share is decided by a hash of `request.id` when the request carried one (so every agent
//! of a fleet, and every replay of a capture, keeps the same requests), else by a sequence
//! number spread with a Fibonacci multiplier (so a rate of 0.25 keeps one record in four,
//! evenly, rather than in bursts).

use agent_core::Transaction;

/// Why a record is written, or that it is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// 5xx, 401/403/429 or an `error.type`.
    KeepError,
    /// Duration above the slow threshold.
    KeepSlow,
    /// Chosen by the sample rate.
    KeepSampled,
    Drop,
}

impl Decision {
    pub fn keeps(self) -> bool {
        self != Decision::Drop
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Sampler {
    /// Records with a hash below this are kept; `u64::MAX` with a rate of 1.0 keeps all.
    cutoff: u64,
    keep_all: bool,
    slow_ns: u64,
}

impl Sampler {
    pub fn new(sample_rate: f64, slow_threshold_ms: u64) -> Sampler {
        let rate = sample_rate.clamp(0.0, 1.0);
        Sampler {
            // Truncation is intended: the cutoff only needs to be proportional to the rate.
            cutoff: (rate * u64::MAX as f64) as u64,
            keep_all: rate >= 1.0,
            slow_ns: slow_threshold_ms.saturating_mul(1_000_000),
        }
    }

    /// `seq` is a per-log counter, used when the transaction has no request id.
    pub fn decide(&self, t: &Transaction, seq: u64) -> Decision {
        if is_error(t) {
            return Decision::KeepError;
        }
        if t.duration_ns.is_some_and(|d| d > self.slow_ns) {
            return Decision::KeepSlow;
        }
        if self.keep_all {
            return Decision::KeepSampled;
        }
        let h = match &t.request_id {
            Some(id) => mix_hash(id.as_bytes()),
            None => seq.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        };
        if h < self.cutoff {
            Decision::KeepSampled
        } else {
            Decision::Drop
        }
    }
}

/// Always logged: server errors, auth failures, rate limiting and failed exchanges.
pub fn is_error(t: &Transaction) -> bool {
    t.error.is_some()
        || t.status
            .is_some_and(|s| s >= 500 || matches!(s, 401 | 403 | 429))
}

fn mix_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // FNV's high bits barely change between similar keys (req-1, req-2, ...); the splitmix64
    // finalizer spreads every input bit over the whole word.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_core::transaction::ErrorType;
    use rstest::rstest;

    fn txn(status: Option<u16>, duration_ms: u64, error: Option<ErrorType>) -> Transaction {
        Transaction {
            status,
            duration_ns: Some(duration_ms * 1_000_000),
            error,
            ..Default::default()
        }
    }

    #[rstest]
    #[case::server_error(txn(Some(503), 1, None), Decision::KeepError)]
    #[case::unauthorized(txn(Some(401), 1, None), Decision::KeepError)]
    #[case::forbidden(txn(Some(403), 1, None), Decision::KeepError)]
    #[case::rate_limited(txn(Some(429), 1, None), Decision::KeepError)]
    #[case::no_response(txn(None, 1, Some(ErrorType::Timeout)), Decision::KeepError)]
    #[case::slow(txn(Some(200), 1_001, None), Decision::KeepSlow)]
    #[case::ordinary(txn(Some(200), 5, None), Decision::Drop)]
    #[case::not_found_is_ordinary(txn(Some(404), 5, None), Decision::Drop)]
    fn rate_zero_keeps_only_errors_and_slow(#[case] t: Transaction, #[case] want: Decision) {
        assert_eq!(Sampler::new(0.0, 1_000).decide(&t, 7), want);
    }

    #[test]
    fn rate_one_keeps_everything() {
        let s = Sampler::new(1.0, 1_000);
        assert!((0..1_000).all(|i| s.decide(&txn(Some(200), 1, None), i).keeps()));
    }

    #[rstest]
    #[case::quarter(0.25)]
    #[case::tenth(0.1)]
    #[case::most(0.9)]
    fn sequence_sampling_keeps_the_configured_share(#[case] rate: f64) {
        let s = Sampler::new(rate, 1_000);
        let kept = (0..10_000u64)
            .filter(|i| s.decide(&txn(Some(200), 1, None), *i).keeps())
            .count();
        let share = kept as f64 / 10_000.0;
        assert!((share - rate).abs() < 0.01, "rate {rate}: kept {share}");
    }

    #[test]
    fn request_id_sampling_is_deterministic_and_proportional() {
        let s = Sampler::new(0.5, 1_000);
        let with_id = |i: u32| Transaction {
            request_id: Some(format!("req-{i}")),
            ..txn(Some(200), 1, None)
        };
        let first: Vec<bool> = (0..4_000)
            .map(|i| s.decide(&with_id(i), 0).keeps())
            .collect();
        let again: Vec<bool> = (0..4_000)
            .map(|i| s.decide(&with_id(i), 99).keeps())
            .collect();
        assert_eq!(
            first, again,
            "same ids, same decision whatever the sequence"
        );
        let share = first.iter().filter(|k| **k).count() as f64 / 4_000.0;
        assert!((share - 0.5).abs() < 0.05, "kept {share}");
    }
}
