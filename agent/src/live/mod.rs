//! `apitap run`: live capture wired to the pipeline, the sinks and the HTTP endpoint.
//!
//! ```text
//! capture (reader task) ──batches──▶ analyze (own thread: engine ▸ router ▸ aggregator)
//!        ──transactions──▶ usage store (flusher task) · request log (writer thread) · lookup ring
//!        ──snapshot (watch)──▶ HTTP endpoint · /health · alerts (notifier tasks)
//! ```
//! Shutdown (SIGINT/SIGTERM): capture detaches and closes its channel; the analysis stage
//! flushes pending requests and ends; the store flushes once more; learned routes are saved.

mod analyze;
mod flow_bytes;
mod self_metrics;

use agent_core::aggregate::{AggregateConfig, Aggregator};
use agent_core::pipeline::Pipeline;
use anyhow::{Context, Result};
use axum::routing::get;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::alert::AlertManager;
use crate::api::{self, ApiState, ApiToken, SelfMetrics};
use crate::capture;
use crate::cli::RunArgs;
use crate::config::Config;
use crate::health::{CaptureHealth, HealthInputs};
use crate::reqlog::{self, RecentRequests, RequestLog};
use crate::store::{self, UsageStore};

pub fn main(args: RunArgs) -> Result<ExitCode> {
    let cfg = Config::from_run_args(&args)?;
    init_tracing(&cfg.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("apitap")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run(cfg))?;
    Ok(ExitCode::SUCCESS)
}

/// The agent's own log on stderr, as text or JSON lines (`--log-format`), filtered by RUST_LOG.
pub fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn run(cfg: Config) -> Result<()> {
    // Everything that can refuse bad input does so before any side effect.
    capture::preflight(&cfg)?;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let mut pipeline = Pipeline::new(cfg.pipeline_config()?).context("invalid route pattern")?;
    let store = UsageStore::open(cfg.redis_url.as_deref(), &cfg.data_dir, cfg.store.options())
        .context("cannot open the usage store")?;
    restore_routes(&store, &mut pipeline).await;
    let token = ApiToken::resolve(cfg.api_token.as_deref(), &cfg.data_dir)
        .context("cannot set up the API token")?;
    let (log, log_thread) = match &cfg.log {
        Some(path) => {
            let mut lc = cfg.request_log.clone();
            lc.path = path.clone();
            let (handle, thread) = RequestLog::spawn(&lc)?;
            (Some(handle), Some(thread))
        }
        None => (None, None),
    };
    let recent = Arc::new(RecentRequests::new(cfg.request_log.recent_capacity));
    let (alerts, alert_tasks) = AlertManager::spawn(&cfg.alerts)?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;

    let (capture, batches) = capture::start(&cfg)?;
    let capture_stats = capture.stats();
    let capture_health = Arc::new(CaptureHealth::new());

    let empty = Arc::new(Aggregator::new(AggregateConfig::default()).snapshot(analyze::wall_ns()));
    let (snapshot_tx, snapshot_rx) = watch::channel(empty);
    let pipeline_metrics = Arc::new(Mutex::new(Vec::new()));
    let analysis = analyze::spawn(
        pipeline,
        batches,
        analyze::Sinks {
            store: store.clone(),
            log: log.clone(),
            recent: recent.clone(),
        },
        analyze::Published {
            snapshot: snapshot_tx,
            self_metrics: pipeline_metrics.clone(),
            alerts: alerts.clone(),
        },
        tokio::runtime::Handle::current(),
    )
    .context("cannot start the analysis thread")?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let flusher = tokio::spawn(store::run_flusher(store.clone(), stopped(stop_rx.clone())));
    let health_task = tokio::spawn(follow_capture_health(
        capture_stats.clone(),
        capture_health.clone(),
        stop_rx.clone(),
    ));

    let self_metrics: SelfMetrics = {
        let alerts = alerts.clone();
        let log = log.clone();
        let capture_stats = capture_stats.clone();
        Arc::new(move || {
            let mut m = self_metrics::capture(&capture_stats.snapshot());
            m.extend(
                pipeline_metrics
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .cloned(),
            );
            if let Some(log) = &log {
                m.extend(log.stats().self_metrics());
            }
            m.extend(alerts.self_metrics());
            m.extend(self_metrics::process());
            m.push(self_metrics::build_info());
            m
        })
    };
    let state = ApiState {
        snapshot: snapshot_rx,
        self_metrics,
        store: store.clone(),
        health: Arc::new(HealthInputs::new(
            capture_health,
            cfg.data_dir.clone(),
            cfg.health,
            cfg.alerts.thresholds(),
        )),
        token,
    };
    let extra_v1 = axum::Router::new()
        .route("/requests/{id}", get(reqlog::get_request))
        .with_state(recent)
        .merge(
            axum::Router::new()
                .route(
                    "/alerts",
                    get(|axum::extract::State(a): axum::extract::State<Arc<AlertManager>>| async move {
                        axum::Json(serde_json::json!({
                            "firing": a.firing_count(),
                            "alerts": a.active_and_recent(),
                        }))
                    }),
                )
                .with_state(alerts.clone()),
        );
    let server = tokio::spawn(api::serve(
        listener,
        api::router_with(state, extra_v1),
        stopped(stop_rx.clone()),
    ));
    info!(listen = %cfg.listen, store = store.backend_name(), "apitap running: GET /metrics, /health, /api/v1/*");

    tokio::select! {
        _ = term.recv() => info!("SIGTERM: detaching"),
        _ = int.recv() => info!("SIGINT: detaching"),
    }
    capture.shutdown().await;
    let learned = tokio::task::spawn_blocking(move || analysis.join())
        .await
        .ok()
        .and_then(|r| r.ok());
    if let Some(state) = learned
        && let Err(e) = store.save_routes(state.to_string()).await
    {
        warn!("cannot save learned routes: {e}");
    }
    let _ = stop_tx.send(true);
    let _ = flusher.await;
    let _ = health_task.await;
    let _ = server.await;
    drop(alerts);
    for t in alert_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    drop(log);
    if let Some(t) = log_thread {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    info!("apitap stopped");
    Ok(())
}

/// Loads learned route templates saved by an earlier run (a failure only costs relearning).
async fn restore_routes(store: &UsageStore, pipeline: &mut Pipeline) {
    match store.load_routes().await {
        Ok(Some(text)) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(state) => match pipeline.router_mut().load_state(&state) {
                Ok(n) => info!(templates = n, "learned routes restored"),
                Err(e) => warn!("saved routes ignored: {e}"),
            },
            Err(e) => warn!("saved routes ignored: {e}"),
        },
        Ok(None) => {}
        Err(e) => warn!("cannot load learned routes: {e}"),
    }
}

/// Mirrors capture counters into the /health and /readyz inputs once a second.
async fn follow_capture_health(
    stats: capture::CaptureStats,
    health: Arc<CaptureHealth>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let s = stats.snapshot();
        health.set_programs_attached(s.programs_attached as u32);
        health.set_events_lost(s.events_lost + s.events_dropped);
        health.set_ready(s.programs_attached > 0);
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
