//! The analysis stage: one thread that owns the [`Pipeline`] (engine, router, aggregator; the
//! engine also does the flow byte accounting) and the per-second [`SeriesRing`] of the live
//! views. It drains the capture rings in place on a short adaptive timer (2-10 ms, earlier when
//! a ring passes half full), in slices of [`SLICE`] records, hands each transaction to the
//! sinks, and on every tick moves time forward and publishes an immutable snapshot, the series
//! and the pipeline's self-metrics. Nothing it owns is shared or locked.

use agent_core::Transaction;
use agent_core::aggregate::Snapshot;
use agent_core::export::{MetricKind, SelfMetric};
use agent_core::pipeline::Pipeline;
use agent_core::series::{SeriesRing, SeriesSnapshot};
use agent_core::server::ResolveServer;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::alert::AlertManager;
use crate::capture::{CopyHints, SegmentSource, Wake};
use crate::discovery::Retirement;
use crate::reqlog::{RecentRequests, RequestLogHandle};
use crate::store::{Recorder, UsageStore};

/// How often snapshots are published and time-based work (timeouts, eviction) runs.
const TICK: Duration = Duration::from_secs(1);
/// How often learned route templates are saved to the store.
const SAVE_ROUTES_EVERY: Duration = Duration::from_secs(60);
/// Ticks between returns of freed heap memory to the system (see [`trim_heap`]).
const TRIM_EVERY_TICKS: u64 = 10;
/// Records processed before the thread yields the CPU, so a busy server is never starved for
/// long by one drain. 128 was measured (docs/PERFORMANCE.md, third pass): nginx's p99 was no
/// lower, and the thread, yielding four times as often, fell behind and lost events once.
const SLICE: usize = 512;
/// Bounds of the drain interval: shorter when drains find many records, longer when few.
/// Every wake-up costs a context switch (about 15 µs of the thread's CPU on the build
/// machine's VM, issue 10's profile), so the interval settles where a drain finds between
/// [`LENGTHEN_BELOW`] and [`SHORTEN_ABOVE`] records; a ring holds far more than one interval
/// (4 MiB per CPU by default: ~200 ms at the worst-case bench's rate), and a ring half full
/// wakes the thread at once.
const DRAIN_MIN: Duration = Duration::from_millis(2);
const DRAIN_MAX: Duration = Duration::from_millis(10);
/// The interval drains that find nothing back off to (doubling from where they were): an idle
/// node wakes the thread 10 times a second instead of 100. Measured on the build machine's VM,
/// an idle agent's analysis thread cost 6.7–7.0 ms of CPU per second at 10 ms, nearly all of it
/// the wake-ups themselves. The first records after a quiet spell wait at most this long (a
/// burst that fills half a ring sooner wakes the thread at once), and the interval is back
/// within [`DRAIN_MAX`] at the first drain that finds any.
const DRAIN_IDLE: Duration = Duration::from_millis(100);
/// A drain that found more records than this comes sooner next time.
const SHORTEN_ABOVE: usize = 4 * SLICE;
/// A drain that found fewer records than this comes later next time.
const LENGTHEN_BELOW: usize = SLICE / 2;

/// Where transactions go once routed and aggregated.
pub struct Sinks {
    pub store: UsageStore,
    pub log: Option<RequestLogHandle>,
    pub recent: Arc<RecentRequests>,
}

impl Sinks {
    fn accept(&self, t: &Transaction, usage: &mut Recorder) {
        usage.record(t);
        if let Some(log) = &self.log {
            log.record(t);
        }
        self.recent.insert(t);
    }
}

/// What the stage publishes for the HTTP endpoint and the alert evaluator.
#[derive(Clone)]
pub struct Published {
    pub snapshot: watch::Sender<Arc<Snapshot>>,
    pub series: watch::Sender<Arc<SeriesSnapshot>>,
    pub self_metrics: Arc<Mutex<Vec<SelfMetric>>>,
    pub alerts: Arc<AlertManager>,
}

/// Who serves at an address, and when a gone service's series are dropped.
pub struct Servers {
    pub resolver: Box<dyn ResolveServer>,
    pub retirement: Retirement,
}

/// Runs the stage on its own thread until capture stops; returns the learned route state
/// for the caller to persist at shutdown.
pub fn spawn(
    mut pipeline: Pipeline,
    mut source: SegmentSource,
    sinks: Sinks,
    out: Published,
    servers: Servers,
    main: tokio::runtime::Handle,
) -> std::io::Result<std::thread::JoinHandle<serde_json::Value>> {
    pipeline.set_resolver(servers.resolver);
    let mut retirement = servers.retirement;
    std::thread::Builder::new()
        .name("apitap-analyze".into())
        .spawn(move || {
            batch_scheduling();
            let mut series = SeriesRing::new(pipeline.aggregator().config().max_services);
            let mut hints = source.take_copy_hints();
            let mut next_tick = Instant::now() + TICK;
            let mut last_save = Instant::now();
            let mut interval = DRAIN_MAX;
            let mut usage = sinks.store.recorder();
            let mut retired = 0u64;
            let mut ticks = 0u64;
            // Every metric family is in the exposition from the first scrape on.
            publish(&mut pipeline, &series, retired, &out);
            loop {
                let until_tick = next_tick.saturating_duration_since(Instant::now());
                let stop = source.wait(interval.min(until_tick)) == Wake::Stop;
                let mut sink = |t: &Transaction| {
                    accept(t, &mut series, hints.as_mut(), &sinks, &mut usage);
                };
                let mut records = 0;
                loop {
                    let d = source.drain(SLICE, stop, |seg| pipeline.ingest(seg, &mut sink));
                    records += d.records;
                    // A backlog is drained in slices, but never past the tick: snapshots and
                    // self-metrics are published on time even while records keep coming.
                    if d.records < SLICE || (!stop && Instant::now() >= next_tick) {
                        break;
                    }
                    std::thread::yield_now();
                }
                interval = adapt(interval, records);
                if stop {
                    break;
                }
                let now = Instant::now();
                if now >= next_tick {
                    next_tick = now + TICK;
                    pipeline.advance(wall_ns(), &mut sink);
                    for (namespace, service) in retirement.due(now) {
                        series.retire(&namespace, &service);
                        if pipeline.retire_service(&namespace, &service) {
                            debug!(namespace, service, "series of a gone service retired");
                            retired += 1;
                        }
                    }
                    source.publish_held_bytes();
                    ticks += 1;
                    if ticks.is_multiple_of(TRIM_EVERY_TICKS) {
                        trim_heap();
                    }
                    publish(&mut pipeline, &series, retired, &out);
                    if last_save.elapsed() >= SAVE_ROUTES_EVERY {
                        last_save = Instant::now();
                        let store = sinks.store.clone();
                        let state = pipeline.router().learned_state().to_string();
                        main.spawn(async move {
                            if let Err(e) = store.save_routes(state).await {
                                warn!("cannot save learned routes: {e}");
                            }
                        });
                    }
                }
                // What this drain counted reaches the store's next flush.
                usage.settle();
            }
            debug!("capture stopped: flushing pending requests");
            pipeline.finish(&mut |t: &Transaction| {
                accept(t, &mut series, hints.as_mut(), &sinks, &mut usage);
            });
            usage.settle();
            publish(&mut pipeline, &series, retired, &out);
            pipeline.router().learned_state()
        })
}

/// Marks the calling thread `SCHED_BATCH`: it keeps its fair share of the CPU (nothing is
/// deprioritised, so the rings are drained as before), but its wake-ups no longer preempt the
/// task running on that CPU. A drain is work that can wait a scheduler slice; the server and
/// its clients, which answer each other in a tight loop on a busy node, are not interrupted
/// by it (issue 10: p99 and throughput with the agent on a saturated machine). A failure is
/// logged and changes nothing else.
fn batch_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain system call on the calling thread (pid 0) with a valid parameter.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        warn!(
            "cannot set SCHED_BATCH on the analysis thread: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Gives memory the allocator holds free back to the system. Tables that grow by doubling
/// (the flow table's slots with 10,000 flows: 11 MiB, after 6, 3, 1.5 … MiB were freed) leave
/// their old buffers free inside glibc's heap, which keeps them resident (trimming gave back
/// 0.7–2.5 MiB of RSS with 10,000 flows in the bench). `malloc_trim` returns whole free pages;
/// it walks only free chunks, so it is cheap at this interval.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: glibc's malloc_trim takes no pointers and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One transaction: the live series, the copy hints (servers whose messages heads alone do
/// not frame get copied in full), then the sinks.
fn accept(
    t: &Transaction,
    series: &mut SeriesRing,
    hints: Option<&mut CopyHints>,
    sinks: &Sinks,
    usage: &mut Recorder,
) {
    series.record_transaction(t);
    if let Some(h) = hints {
        h.observe(t);
    }
    sinks.accept(t, usage);
}

/// The next drain interval: a drain that found more than a slice comes sooner, one that
/// found little comes later, and one that found nothing backs off towards [`DRAIN_IDLE`].
fn adapt(interval: Duration, records: usize) -> Duration {
    const STEP: Duration = Duration::from_millis(1);
    if records == 0 {
        return (interval * 2).min(DRAIN_IDLE);
    }
    let interval = interval.min(DRAIN_MAX);
    if records > SHORTEN_ABOVE {
        interval.saturating_sub(STEP).max(DRAIN_MIN)
    } else if records < LENGTHEN_BELOW {
        (interval + STEP).min(DRAIN_MAX)
    } else {
        interval
    }
}

fn publish(pipeline: &mut Pipeline, series: &SeriesRing, retired: u64, out: &Published) {
    let now = wall_ns();
    let snap = Arc::new(pipeline.snapshot(now));
    out.alerts.on_snapshot(&snap);
    out.snapshot.send_replace(snap);
    out.series.send_replace(Arc::new(series.snapshot(now)));
    let mut m = pipeline.self_metrics();
    m.push(SelfMetric {
        name: "apitap_services_retired_total".into(),
        help: "Services whose servers were all gone for [discovery] retire_after_secs: their series were dropped.".into(),
        kind: MetricKind::Counter,
        labels: Vec::new(),
        value: retired as f64,
    });
    *out.self_metrics
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = m;
}

/// Wall-clock nanoseconds since the UNIX epoch (the time base of segments).
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_interval_backs_off_when_idle_and_returns_with_traffic() {
        assert_eq!(adapt(DRAIN_MAX, 0), 2 * DRAIN_MAX);
        assert_eq!(adapt(DRAIN_MIN, 0), 2 * DRAIN_MIN);
        let mut quiet = DRAIN_MIN;
        for _ in 0..20 {
            quiet = adapt(quiet, 0);
        }
        assert_eq!(quiet, DRAIN_IDLE);
        // The first drain that finds records brings the interval back within DRAIN_MAX.
        assert_eq!(adapt(DRAIN_IDLE, 1), DRAIN_MAX);
        assert_eq!(adapt(DRAIN_IDLE, LENGTHEN_BELOW), DRAIN_MAX);
        assert!(adapt(DRAIN_IDLE, 2 * SHORTEN_ABOVE) < DRAIN_MAX);
    }

    #[test]
    fn drain_interval_adapts_within_its_bounds() {
        assert_eq!(adapt(DRAIN_MAX, 1), DRAIN_MAX);
        assert_eq!(adapt(DRAIN_MIN, 10 * SLICE), DRAIN_MIN);
        let busy = adapt(DRAIN_MAX, 2 * SHORTEN_ABOVE);
        assert!(busy < DRAIN_MAX);
        assert_eq!(adapt(busy, 1), DRAIN_MAX);
        assert_eq!(adapt(busy, LENGTHEN_BELOW), busy);
        assert_eq!(adapt(busy, SHORTEN_ABOVE), busy);
    }
}
