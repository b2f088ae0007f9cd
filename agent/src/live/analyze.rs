//! The analysis stage: one thread that owns the [`Pipeline`] (engine, router, aggregator; the
//! engine also does the flow byte accounting) and the per-second [`SeriesRing`] of the live
//! views. It consumes segment batches, hands each transaction to the sinks, and on every tick
//! moves time forward and publishes an immutable snapshot, the series and the pipeline's
//! self-metrics. Nothing it owns is shared or locked.

use agent_core::Transaction;
use agent_core::aggregate::Snapshot;
use agent_core::export::SelfMetric;
use agent_core::pipeline::Pipeline;
use agent_core::series::{SeriesRing, SeriesSnapshot};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::alert::AlertManager;
use crate::capture::SegmentBatch;
use crate::reqlog::{RecentRequests, RequestLogHandle};
use crate::store::UsageStore;

/// How often snapshots are published and time-based work (timeouts, eviction) runs.
const TICK: Duration = Duration::from_secs(1);
/// How often learned route templates are saved to the store.
const SAVE_ROUTES_EVERY: Duration = Duration::from_secs(60);

/// Where transactions go once routed and aggregated.
pub struct Sinks {
    pub store: UsageStore,
    pub log: Option<RequestLogHandle>,
    pub recent: Arc<RecentRequests>,
}

impl Sinks {
    fn accept(&self, t: &Transaction) {
        self.store.record(t);
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

/// Runs the stage on its own thread until `batches` closes; returns the learned route state
/// for the caller to persist at shutdown.
pub fn spawn(
    mut pipeline: Pipeline,
    mut batches: mpsc::Receiver<SegmentBatch>,
    sinks: Sinks,
    out: Published,
    main: tokio::runtime::Handle,
) -> std::io::Result<std::thread::JoinHandle<serde_json::Value>> {
    std::thread::Builder::new()
        .name("apitap-analyze".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    warn!("cannot start the analysis runtime: {e}");
                    return pipeline.router().learned_state();
                }
            };
            rt.block_on(async {
                let mut series = SeriesRing::new(pipeline.aggregator().config().max_services);
                let mut tick = tokio::time::interval(TICK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut last_save = Instant::now();
                loop {
                    let mut sink = |t: &Transaction| {
                        series.record_transaction(t);
                        sinks.accept(t);
                    };
                    tokio::select! {
                        batch = batches.recv() => {
                            let Some(batch) = batch else { break };
                            for seg in batch.iter() {
                                pipeline.ingest(&seg, &mut sink);
                            }
                        }
                        _ = tick.tick() => {
                            pipeline.advance(wall_ns(), &mut sink);
                            publish(&mut pipeline, &series, &out);
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
                    }
                }
                debug!("segment input closed: flushing pending requests");
                pipeline.finish(&mut |t: &Transaction| {
                    series.record_transaction(t);
                    sinks.accept(t);
                });
                publish(&mut pipeline, &series, &out);
            });
            pipeline.router().learned_state()
        })
}

fn publish(pipeline: &mut Pipeline, series: &SeriesRing, out: &Published) {
    let now = wall_ns();
    let snap = Arc::new(pipeline.snapshot(now));
    out.alerts.on_snapshot(&snap);
    out.snapshot.send_replace(snap);
    out.series.send_replace(Arc::new(series.snapshot(now)));
    let m = pipeline.self_metrics();
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
