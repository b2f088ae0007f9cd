//! The periodic flush task: every flush interval while writes succeed, with exponential backoff
//! (bounded) while they fail, and a last flush at shutdown.

use std::future::Future;
use std::time::Duration;
use tokio::time::{Instant, sleep_until, timeout};

use super::UsageStore;

/// How long the final flush at shutdown may take.
const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Delay before the next attempt after `failures` consecutive failed flushes.
pub fn retry_delay(initial: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    initial.saturating_mul(factor).min(max)
}

/// Flushes `store` until `shutdown` completes, then flushes once more.
pub async fn run_flusher(store: UsageStore, shutdown: impl Future<Output = ()>) {
    let options = store.options().clone();
    let mut failures = 0u32;
    let mut next = Instant::now() + options.flush_interval;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = sleep_until(next) => {}
            () = &mut shutdown => break,
        }
        match store.flush().await {
            Ok(written) => {
                if failures > 0 {
                    tracing::info!(
                        backend = store.backend_name(),
                        written,
                        "usage store writes recovered"
                    );
                }
                failures = 0;
                next = Instant::now() + options.flush_interval;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = retry_delay(options.retry_initial, options.retry_max, failures);
                if failures == 1 {
                    tracing::warn!(backend = store.backend_name(), error = %e, "usage store write failed; keeping increments and retrying");
                } else {
                    tracing::debug!(error = %e, failures, ?delay, "usage store write failed again");
                }
                next = Instant::now() + delay;
            }
        }
    }
    match timeout(FINAL_FLUSH_TIMEOUT, store.flush()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, pending = store.stats().pending, "final usage flush failed")
        }
        Err(_) => tracing::warn!(
            pending = store.stats().pending,
            "final usage flush timed out"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::first_retry_uses_the_initial_delay(1, 500)]
    #[case::doubles(3, 2_000)]
    #[case::capped_at_the_maximum(10, 30_000)]
    #[case::huge_failure_count_does_not_overflow(u32::MAX, 30_000)]
    fn backs_off_exponentially_within_bounds(#[case] failures: u32, #[case] want_ms: u64) {
        let d = retry_delay(
            Duration::from_millis(500),
            Duration::from_secs(30),
            failures,
        );
        assert_eq!(d, Duration::from_millis(want_ms));
    }
}
