//! The per-request JSON log (SPEC "Transaction record") and the ring of recent requests behind
//! `GET /api/v1/requests/{id}`.
//!
//! ```text
//! pipeline ──record(&t)──▶ sampler ──try_send──▶ [bounded queue] ──▶ writer thread ──▶ stdout | apitap.log (+ .1 … .N-1)
//!                                     full: apitap_log_records_dropped_total
//! ```
//! The hot path never blocks: sampling happens before the copy, a full queue drops and counts.
//!
//! Secrets: the line is `Transaction`'s own serialization, and `Transaction` has no field for
//! a header other than User-Agent, X-Request-ID and traceparent, nor for a body. Authorization,
//! Cookie, Set-Cookie and API-key values therefore cannot reach the log from here; query values
//! are redacted by the engine before a `Transaction` exists (tests/reqlog.rs checks both).

mod config;
mod recent;
mod rotate;
mod sampling;
mod stats;
mod writer;

pub use config::LogConfig;
pub use recent::RecentRequests;
pub use rotate::numbered;
pub use sampling::{Decision, Sampler};
pub use stats::{LogStats, LogStatsSnapshot};

use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use agent_core::Transaction;

#[derive(Debug, thiserror::Error)]
pub enum ReqlogError {
    #[error("{key}: {why}")]
    Invalid {
        key: &'static str,
        why: &'static str,
    },
    #[error("cannot open the request log {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start the request log writer: {0}")]
    Thread(std::io::Error),
}

/// Starts request logs.
pub struct RequestLog;

impl RequestLog {
    /// Validates `cfg`, opens the sink (so a bad path fails here, with its name) and starts
    /// the writer thread. The thread ends, after a last flush, once every handle is dropped.
    pub fn spawn(cfg: &LogConfig) -> Result<(RequestLogHandle, JoinHandle<()>), ReqlogError> {
        cfg.validate()?;
        let sink = if cfg.path == "-" {
            writer::Sink::Stdout(BufWriter::with_capacity(64 * 1024, std::io::stdout()))
        } else {
            let f = rotate::RotatingFile::open(Path::new(&cfg.path), cfg.max_bytes, cfg.keep_files)
                .map_err(|source| ReqlogError::Open {
                    path: cfg.path.clone(),
                    source,
                })?;
            writer::Sink::File(f)
        };
        let (tx, rx) = mpsc::sync_channel(cfg.queue_capacity);
        let stats = Arc::new(LogStats::default());
        let flush_every = Duration::from_millis(cfg.flush_interval_ms);
        let thread_stats = Arc::clone(&stats);
        let join = std::thread::Builder::new()
            .name("apitap-reqlog".into())
            .spawn(move || writer::run(sink, rx, thread_stats, flush_every))
            .map_err(ReqlogError::Thread)?;
        let handle = RequestLogHandle {
            tx,
            sampler: Sampler::new(cfg.sample_rate, cfg.slow_threshold_ms),
            seq: Arc::new(AtomicU64::new(0)),
            stats,
        };
        Ok((handle, join))
    }
}

/// The pipeline's side of the log: cheap to clone, never blocks.
#[derive(Clone)]
pub struct RequestLogHandle {
    tx: SyncSender<Transaction>,
    sampler: Sampler,
    seq: Arc<AtomicU64>,
    stats: Arc<LogStats>,
}

impl RequestLogHandle {
    /// Samples `t` and queues a copy for the writer; a full queue drops it and counts.
    /// Returns what the sampler decided (a kept record may still be dropped by a full queue).
    pub fn record(&self, t: &Transaction) -> Decision {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let decision = self.sampler.decide(t, seq);
        if !decision.keeps() {
            self.stats.sampled_out.fetch_add(1, Ordering::Relaxed);
            return decision;
        }
        match self.tx.try_send(t.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    tracing::debug!(dropped = n + 1, "request log queue full, record dropped");
                }
            }
        }
        decision
    }

    /// The counters (`apitap_log_*`).
    pub fn stats(&self) -> LogStatsSnapshot {
        self.stats.snapshot()
    }
}
