//! The usage store: per-day and per-hour request counts by endpoint and by client, kept in the
//! embedded redb file by default or in a shared Redis (`--redis-url`).
//!
//! `record` is cheap (a merge into a bounded in-memory map under a short lock); `flush` writes
//! everything pending in one transaction (embedded) or one pipeline (Redis). A failed flush puts
//! its batch back, so nothing is lost while the store is down unless the bound is exceeded, and
//! that is counted.

mod embedded;
mod flusher;
mod key;
mod pending;
mod remote;
mod report;

pub use embedded::Embedded;
pub use flusher::run_flusher;
pub use key::{UsageKind, last_dates, now_ns};

use agent_core::Transaction;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pending::{Pending, Run};
use remote::Remote;

/// Counts by date (`YYYY-MM-DD`) then by field (`{endpoint}:{METHOD}` or client).
pub type Usage = BTreeMap<String, BTreeMap<String, u64>>;

/// Counts one thread's transactions without taking the store's lock for each: consecutive
/// transactions with the same increments (a keep-alive client on one endpoint) form a run
/// kept here, and the lock is taken when a run ends or at [`Recorder::settle`]. The analysis
/// thread settles after every drain (every 2–10 ms under load), so a flush or a query misses
/// at most that last drain's transactions, and the next one has them. A lock taken and given
/// back is two atomic writes, per transaction before this.
pub struct Recorder {
    store: UsageStore,
    run: Run,
}

impl Recorder {
    /// Counts one transaction.
    pub fn record(&mut self, t: &Transaction) {
        if !self.run.join(t) {
            self.settle();
            self.run.start(t);
        }
    }

    /// Hands the current run to the store.
    pub fn settle(&mut self) {
        if !self.run.is_empty() {
            self.store.pending().add_run(&mut self.run);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.settle();
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StoreError {
    #[error("cannot create data directory {}: {reason}", dir.display())]
    DataDir { dir: PathBuf, reason: String },
    #[error("cannot open embedded store {}: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error("embedded store: {0}")]
    Embedded(String),
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    #[error("redis: {0}")]
    Redis(String),
    #[error("store did not answer within {0:?}")]
    Timeout(Duration),
}

/// Tuning of the store (from the `[store]` config section).
#[derive(Clone, Debug, PartialEq)]
pub struct StoreOptions {
    pub flush_interval: Duration,
    /// Distinct pending keys kept while writes fail.
    pub max_pending: usize,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub daily_retention_days: u32,
    pub hourly_retention_days: u32,
    /// TLS of a `rediss://` Redis (`[store.tls_config]`).
    pub tls: crate::tls::TlsConfig,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            flush_interval: Duration::from_secs(1),
            max_pending: 100_000,
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            daily_retention_days: 30,
            hourly_retention_days: 7,
            tls: crate::tls::TlsConfig::default(),
        }
    }
}

#[derive(Clone)]
enum Backend {
    Embedded(Embedded),
    Redis(Remote),
}

struct Inner {
    backend: Backend,
    options: StoreOptions,
    pending: Mutex<Pending>,
    /// Serializes flushes so a batch is never written twice concurrently.
    flushing: tokio::sync::Mutex<()>,
    /// Keys of the batch being written (taken out of `pending` for the duration).
    in_flight: AtomicU64,
    writes: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Cheap to clone; all clones share one buffer and backend.
#[derive(Clone)]
pub struct UsageStore {
    inner: Arc<Inner>,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl UsageStore {
    /// Redis when a URL is given, else the embedded store in `data_dir`.
    pub fn open(
        redis_url: Option<&str>,
        data_dir: &Path,
        options: StoreOptions,
    ) -> Result<UsageStore, StoreError> {
        match redis_url {
            Some(url) => UsageStore::redis(url, options),
            None => UsageStore::embedded(data_dir, options),
        }
    }

    /// The embedded store in `data_dir`.
    pub fn embedded(data_dir: &Path, options: StoreOptions) -> Result<UsageStore, StoreError> {
        Ok(UsageStore::with(
            Backend::Embedded(Embedded::open(data_dir)?),
            options,
        ))
    }

    /// A Redis store; does not wait for Redis to be reachable.
    pub fn redis(url: &str, options: StoreOptions) -> Result<UsageStore, StoreError> {
        let remote = Remote::open(
            url,
            &options.tls,
            options.daily_retention_days,
            options.hourly_retention_days,
        )?;
        Ok(UsageStore::with(Backend::Redis(remote), options))
    }

    fn with(backend: Backend, options: StoreOptions) -> UsageStore {
        UsageStore {
            inner: Arc::new(Inner {
                backend,
                pending: Mutex::new(Pending::new(options.max_pending)),
                options,
                flushing: tokio::sync::Mutex::new(()),
                in_flight: AtomicU64::new(0),
                writes: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                last_error: Mutex::new(None),
            }),
        }
    }

    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    pub fn backend_name(&self) -> &'static str {
        match self.inner.backend {
            Backend::Embedded(_) => "embedded",
            Backend::Redis(_) => "redis",
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave the map inconsistent (every operation
        // is a complete insert or add), so a poisoned lock is still usable.
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one transaction (three increments); never blocks on I/O.
    pub fn record(&self, t: &Transaction) {
        self.pending().record(t);
    }

    /// A recorder for one thread's transactions (see [`Recorder`]).
    pub fn recorder(&self) -> Recorder {
        Recorder {
            store: self.clone(),
            run: Run::empty(),
        }
    }

    /// Writes everything pending; returns the number of keys written. On failure the batch is
    /// kept (bounded) for the next attempt and the error is remembered for /health.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let _one_at_a_time = self.inner.flushing.lock().await;
        let batch = self.pending().take();
        if pending::batch_keys(&batch) == 0 {
            return Ok(0);
        }
        let keys = pending::batch_keys(&batch);
        self.inner.in_flight.store(keys as u64, Ordering::Relaxed);
        let result = match &self.inner.backend {
            Backend::Embedded(db) => {
                let db = db.clone();
                let now = now_ns();
                let daily_cutoff =
                    last_dates(now, self.inner.options.daily_retention_days).swap_remove(0);
                let hourly_cutoff =
                    last_dates(now, self.inner.options.hourly_retention_days).swap_remove(0);
                let joined = tokio::task::spawn_blocking(move || {
                    let result = db.write(&batch, &daily_cutoff, &hourly_cutoff);
                    (batch, result)
                })
                .await;
                match joined {
                    Ok((batch, Ok(()))) => Ok(batch),
                    Ok((batch, Err(e))) => {
                        self.pending().restore(batch);
                        Err(e)
                    }
                    // The batch went down with the panicked task; the failure is counted.
                    Err(e) => Err(StoreError::Embedded(format!("flush task failed: {e}"))),
                }
            }
            Backend::Redis(remote) => match remote.write(&batch).await {
                Ok(()) => Ok(batch),
                Err(e) => {
                    self.pending().restore(batch);
                    Err(e)
                }
            },
        };
        self.inner.in_flight.store(0, Ordering::Relaxed);
        let mut last_error = self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(batch) => {
                let increments: u64 = batch.values().flat_map(|f| f.values()).sum();
                self.inner.writes.fetch_add(increments, Ordering::Relaxed);
                *last_error = None;
                Ok(keys)
            }
            Err(e) => {
                self.inner.failures.fetch_add(1, Ordering::Relaxed);
                *last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Daily counts of `kind` over the last `days` UTC days, including increments not yet
    /// written.
    pub async fn usage(&self, kind: UsageKind, days: u32) -> Result<Usage, StoreError> {
        let dates = last_dates(now_ns(), days);
        let mut usage = match &self.inner.backend {
            Backend::Embedded(db) => {
                let db = db.clone();
                let dates = dates.clone();
                tokio::task::spawn_blocking(move || db.usage(kind, &dates))
                    .await
                    .map_err(|e| StoreError::Embedded(format!("query task failed: {e}")))??
            }
            Backend::Redis(remote) => remote.usage(kind, &dates).await?,
        };
        let mut pending = self.pending();
        for (group, field, n) in pending.of_family(kind.family()) {
            let date = group.date();
            if dates.contains(&date) {
                let slot = usage
                    .entry(date)
                    .or_default()
                    .entry(field.to_string())
                    .or_default();
                *slot = slot.saturating_add(n);
            }
        }
        Ok(usage)
    }

    /// Probes the backend (bounded by a timeout) and returns the round trip.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let start = Instant::now();
        let probe = async {
            match &self.inner.backend {
                Backend::Embedded(db) => {
                    let db = db.clone();
                    tokio::task::spawn_blocking(move || db.ping())
                        .await
                        .map_err(|e| StoreError::Embedded(format!("probe task failed: {e}")))?
                }
                Backend::Redis(remote) => remote.ping().await,
            }
        };
        match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
            Ok(Ok(())) => Ok(start.elapsed()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::Timeout(PROBE_TIMEOUT)),
        }
    }

    /// Persists the learned route templates (a small JSON document).
    pub async fn save_routes(&self, json: String) -> Result<(), StoreError> {
        match &self.inner.backend {
            Backend::Embedded(db) => {
                let db = db.clone();
                tokio::task::spawn_blocking(move || db.save_routes(&json))
                    .await
                    .map_err(|e| StoreError::Embedded(format!("save task failed: {e}")))?
            }
            Backend::Redis(remote) => remote.save_routes(&json).await,
        }
    }

    pub async fn load_routes(&self) -> Result<Option<String>, StoreError> {
        match &self.inner.backend {
            Backend::Embedded(db) => {
                let db = db.clone();
                tokio::task::spawn_blocking(move || db.load_routes())
                    .await
                    .map_err(|e| StoreError::Embedded(format!("load task failed: {e}")))?
            }
            Backend::Redis(remote) => remote.load_routes().await,
        }
    }

    /// The embedded backend, if this is one.
    #[cfg(test)]
    pub fn as_embedded(&self) -> Option<&Embedded> {
        match &self.inner.backend {
            Backend::Embedded(db) => Some(db),
            Backend::Redis(_) => None,
        }
    }
}

#[cfg(test)]
mod tests;
