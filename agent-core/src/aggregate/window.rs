//! Rolling windows per service: availability over 5 min / 1 h / 24 h from per-minute buckets,
//! requests in the last 60 s from per-second buckets, and a 5-minute p95 from per-minute
//! sketches. Buckets are stamped with their minute (second) number, so a stale bucket is
//! recognised and reused without a sweeper, and time is whatever the caller says it is
//! (transaction time), which makes the windows testable with synthetic clocks and replayable.
//!
//! A window of `n` minutes at time `now` covers the current (partial) minute and the `n-1`
//! minutes before it.

use super::sketch::{Binned, DdSketch, RELATIVE_ACCURACY};

const DAY_MINUTES: usize = 24 * 60;
const P95_MINUTES: usize = 5;
const NS_PER_S: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, Default)]
struct MinuteBucket {
    minute: u64,
    total: u64,
    failures: u64,
}

#[derive(Clone, Debug)]
pub struct Windows {
    minutes: Vec<MinuteBucket>,
    seconds: [(u64, u64); 60],
    latency: Vec<(u64, DdSketch)>,
}

impl Default for Windows {
    fn default() -> Self {
        Windows {
            minutes: vec![
                MinuteBucket {
                    minute: u64::MAX,
                    ..Default::default()
                };
                DAY_MINUTES
            ],
            seconds: [(u64::MAX, 0); 60],
            latency: (0..P95_MINUTES)
                .map(|_| (u64::MAX, DdSketch::new(RELATIVE_ACCURACY, 512)))
                .collect(),
        }
    }
}

/// `at` lies in the `n` units ending with `now` (inclusive).
fn in_window(at: u64, now: u64, n: u64) -> bool {
    at != u64::MAX && at <= now && now - at < n
}

impl Windows {
    /// Records one transaction that started at `ts_ns`.
    /// `duration` is binned at [`RELATIVE_ACCURACY`] ([`DdSketch::bin`]).
    pub fn record(&mut self, ts_ns: u64, failure: bool, duration: Option<Binned>) {
        let second = ts_ns / NS_PER_S;
        let minute = second / 60;
        let b = &mut self.minutes[(minute % DAY_MINUTES as u64) as usize];
        if b.minute != minute {
            if b.minute != u64::MAX && b.minute > minute {
                return; // older than the ring reaches: outside every window
            }
            *b = MinuteBucket {
                minute,
                total: 0,
                failures: 0,
            };
        }
        b.total += 1;
        b.failures += u64::from(failure);

        let s = &mut self.seconds[(second % 60) as usize];
        if s.0 != second {
            if s.0 != u64::MAX && s.0 > second {
                return;
            }
            *s = (second, 0);
        }
        s.1 += 1;

        if let Some(d) = duration {
            let (m, sketch) = &mut self.latency[(minute % P95_MINUTES as u64) as usize];
            if *m != minute {
                if *m != u64::MAX && *m > minute {
                    return;
                }
                *m = minute;
                sketch.clear();
            }
            sketch.add_binned(d);
        }
    }

    fn totals(&self, now_ns: u64, minutes: u64) -> (u64, u64) {
        let now = now_ns / NS_PER_S / 60;
        self.minutes
            .iter()
            .filter(|b| in_window(b.minute, now, minutes))
            .fold((0, 0), |(t, f), b| (t + b.total, f + b.failures))
    }

    /// Share of requests without a failure over the last `minutes`; 1.0 without traffic.
    pub fn availability(&self, now_ns: u64, minutes: u64) -> f64 {
        match self.totals(now_ns, minutes) {
            (0, _) => 1.0,
            (total, failures) => (total - failures) as f64 / total as f64,
        }
    }

    /// Failures / requests over the last `minutes`; 0.0 without traffic.
    pub fn error_rate(&self, now_ns: u64, minutes: u64) -> f64 {
        match self.totals(now_ns, minutes) {
            (0, _) => 0.0,
            (total, failures) => failures as f64 / total as f64,
        }
    }

    /// Requests that started in the 60 seconds ending at `now_ns`.
    pub fn last_minute(&self, now_ns: u64) -> u64 {
        let now = now_ns / NS_PER_S;
        self.seconds
            .iter()
            .filter(|s| in_window(s.0, now, 60))
            .map(|s| s.1)
            .sum()
    }

    /// p95 duration over the last 5 minutes, seconds; 0.0 without traffic.
    pub fn p95_5m(&self, now_ns: u64) -> f64 {
        let now = now_ns / NS_PER_S / 60;
        let mut merged = DdSketch::new(RELATIVE_ACCURACY, 512);
        for (m, s) in &self.latency {
            if in_window(*m, now, P95_MINUTES as u64) {
                merged.merge(s);
            }
        }
        merged.quantile(0.95)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const MIN: u64 = 60 * NS_PER_S;
    const T0: u64 = 1_795_000_000 * NS_PER_S;

    fn binned(seconds: f64) -> Binned {
        DdSketch::default().bin(seconds)
    }

    #[rstest]
    fn no_traffic_is_fully_available() {
        let w = Windows::default();
        assert_eq!(w.availability(T0, 5), 1.0);
        assert_eq!(w.error_rate(T0, 5), 0.0);
    }

    #[rstest]
    #[case::five_minutes(5, 0.5)]
    #[case::one_hour(60, 4.0 / 6.0)]
    #[case::one_day(1440, 0.8)]
    fn availability_counts_only_the_window(#[case] minutes: u64, #[case] want: f64) {
        let mut w = Windows::default();
        let now = T0 + 2000 * MIN;
        // 23 h ago: 4 ok; 30 min ago: 2 ok; now: 2 ok and 2 failures.
        for _ in 0..4 {
            w.record(now - 23 * 60 * MIN, false, None);
        }
        for _ in 0..2 {
            w.record(now - 30 * MIN, false, None);
            w.record(now, false, None);
            w.record(now, true, None);
        }
        // 25 h ago: outside every window.
        w.record(now - 25 * 60 * MIN, true, None);
        assert!((w.availability(now, minutes) - want).abs() < 1e-12);
    }

    #[rstest]
    fn old_minutes_fall_out_of_the_window() {
        let mut w = Windows::default();
        w.record(T0, true, None);
        assert_eq!(w.availability(T0 + 4 * MIN, 5), 0.0);
        assert_eq!(w.availability(T0 + 5 * MIN, 5), 1.0);
    }

    #[rstest]
    fn last_minute_counts_sixty_seconds() {
        let mut w = Windows::default();
        for s in 0..120 {
            w.record(T0 + s * NS_PER_S, false, None);
        }
        assert_eq!(w.last_minute(T0 + 119 * NS_PER_S), 60);
        assert_eq!(w.last_minute(T0 + 200 * NS_PER_S), 0);
    }

    #[rstest]
    fn p95_covers_five_minutes() {
        let mut w = Windows::default();
        for i in 1..=100 {
            w.record(T0, false, Some(binned(i as f64 / 1000.0)));
        }
        assert!((w.p95_5m(T0 + 4 * MIN) - 0.095).abs() < 0.001);
        assert_eq!(w.p95_5m(T0 + 5 * MIN), 0.0);
    }
}
