//! Past values of cumulative counters, to turn "since start" totals into sliding-window deltas.
//!
//! Samples are kept at least `spacing` apart and pruned to one sample at or before the start of
//! the longest window asked for, so a scope costs at most `window / spacing + 2` samples.
//! A scope seen for the first time is assumed to have started from zero when the evaluator
//! started, i.e. the evaluator must be fed snapshots from the agent's start (it is).

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
}

#[derive(Debug, Default)]
pub struct History {
    samples: VecDeque<(u64, Counts)>,
}

impl History {
    /// Records `counts` at `now_ns` (cumulative), keeping what windows up to `keep_ns` need.
    pub fn push(&mut self, now_ns: u64, counts: Counts, spacing_ns: u64, keep_ns: u64) {
        let due = self
            .samples
            .back()
            .is_none_or(|(t, _)| now_ns >= t.saturating_add(spacing_ns));
        if due {
            self.samples.push_back((now_ns, counts));
        }
        let cutoff = now_ns.saturating_sub(keep_ns);
        while self.samples.len() > 1 && self.samples.get(1).is_some_and(|(t, _)| *t <= cutoff) {
            self.samples.pop_front();
        }
    }

    /// What the counters grew by over the last `window_ns` up to `current` (the counters now).
    /// Without a sample that old, the growth since zero.
    pub fn delta(&self, now_ns: u64, window_ns: u64, current: Counts) -> Counts {
        let start = now_ns.saturating_sub(window_ns);
        let base = self
            .samples
            .iter()
            .rev()
            .find(|(t, _)| *t <= start)
            .map(|(_, c)| *c)
            .unwrap_or_default();
        Counts {
            requests: current.requests.saturating_sub(base.requests),
            errors: current.errors.saturating_sub(base.errors),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.samples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn c(requests: u64, errors: u64) -> Counts {
        Counts { requests, errors }
    }

    #[test]
    fn delta_is_the_growth_since_the_window_start() {
        let mut h = History::default();
        for i in 0..=10 {
            h.push(i * 10 * S, c(i * 100, i), S, 60 * S);
        }
        // Now = 100 s, window 60 s: base is the sample at 40 s.
        assert_eq!(h.delta(100 * S, 60 * S, c(1_000, 10)), c(600, 6));
    }

    #[test]
    fn without_an_old_enough_sample_the_delta_is_since_zero() {
        let mut h = History::default();
        h.push(5 * S, c(50, 1), S, 60 * S);
        assert_eq!(h.delta(10 * S, 60 * S, c(80, 2)), c(80, 2));
    }

    #[test]
    fn samples_are_spaced_and_pruned() {
        let mut h = History::default();
        for ms in 0..100_000u64 {
            h.push(ms * 1_000_000, c(ms, 0), 5 * S, 30 * S);
        }
        // 30 s window at 5 s spacing: 65..95 s, the oldest being the last one before the window.
        assert!(h.len() <= 8, "{}", h.len());
        assert_eq!(
            h.delta(99_999_000_000, 30 * S, c(99_999, 0)).requests,
            99_999 - 65_000
        );
    }
}
