//! `[log]`: where the per-request JSON lines go and how many of them.

use serde::Deserialize;

use super::ReqlogError;

/// Per-request JSON log settings. Every field has a default, so `[log]` may be empty.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A file path, or "-" for stdout (flag --log).
    pub path: String,
    /// A file is rotated before a line would take it past this size. Default 100 MiB.
    pub max_bytes: u64,
    /// Files kept in total, the live one included: `apitap.log`, `apitap.log.1` …
    /// `apitap.log.{keep_files-1}`. Default 5.
    pub keep_files: usize,
    /// Share (0-1) of ordinary requests written. Errors and slow requests are always written.
    /// Default 1.0: everything.
    pub sample_rate: f64,
    /// A request slower than this is always written. Default 1000 ms.
    pub slow_threshold_ms: u64,
    /// Records waiting for the writer; beyond this they are dropped and counted. Default 10,000.
    pub queue_capacity: usize,
    /// Buffered lines reach the file at least this often. Default 1000 ms.
    pub flush_interval_ms: u64,
    /// Transactions kept in memory for `GET /api/v1/requests/{id}`. Default 10,000.
    pub recent_capacity: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            path: "-".into(),
            max_bytes: 100 * 1024 * 1024,
            keep_files: 5,
            sample_rate: 1.0,
            slow_threshold_ms: 1_000,
            queue_capacity: 10_000,
            flush_interval_ms: 1_000,
            recent_capacity: 10_000,
        }
    }
}

impl LogConfig {
    /// Checks every value once; the message names the key.
    pub fn validate(&self) -> Result<(), ReqlogError> {
        let bad = |key: &'static str, why: &'static str| Err(ReqlogError::Invalid { key, why });
        if self.path.is_empty() {
            return bad("log.path", "must be a file path or \"-\"");
        }
        if self.max_bytes < 1024 {
            return bad("log.max_bytes", "must be at least 1024");
        }
        if self.keep_files == 0 {
            return bad("log.keep_files", "must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.sample_rate) {
            return bad("log.sample_rate", "must be between 0 and 1");
        }
        if self.queue_capacity == 0 {
            return bad("log.queue_capacity", "must be at least 1");
        }
        if !(10..=60_000).contains(&self.flush_interval_ms) {
            return bad("log.flush_interval_ms", "must be 10-60000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let c = LogConfig::default();
        assert_eq!(
            (c.max_bytes, c.keep_files, c.queue_capacity),
            (104_857_600, 5, 10_000)
        );
        assert_eq!((c.sample_rate, c.slow_threshold_ms), (1.0, 1_000));
        assert!(c.validate().is_ok());
    }

    #[rstest]
    #[case::zero_files(LogConfig { keep_files: 0, ..LogConfig::default() }, "log.keep_files")]
    #[case::rate_above_one(LogConfig { sample_rate: 1.5, ..LogConfig::default() }, "log.sample_rate")]
    #[case::tiny_files(LogConfig { max_bytes: 10, ..LogConfig::default() }, "log.max_bytes")]
    #[case::empty_queue(LogConfig { queue_capacity: 0, ..LogConfig::default() }, "log.queue_capacity")]
    fn invalid_values_name_their_key(#[case] c: LogConfig, #[case] key: &str) {
        let err = c.validate().expect_err("invalid").to_string();
        assert!(err.starts_with(key), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<LogConfig>("sample_rate = 0.5\nbogus = 1\n").is_err());
        let c: LogConfig = toml::from_str("sample_rate = 0.5\n").expect("parses");
        assert_eq!(c.sample_rate, 0.5);
    }
}
