//! The running agent: every component of `apitap run`, started in dependency order by
//! [`App::start`] and stopped in data-flow order by [`App::shutdown`].
//!
//! One [`CancellationToken`] (the app token) asks the agent to stop. The HTTP server and the
//! health follower stop as soon as it is cancelled. The stages that hold data stop in the order
//! the data flows, each once the stage before it is drained, so nothing a stage accepted is
//! lost: `shutdown` spells that order out instead of leaving it to the order of awaits.

use agent_core::aggregate::{AggregateConfig, Aggregator};
use agent_core::pipeline::Pipeline;
use agent_core::series::SeriesSnapshot;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{analyze, self_metrics};
use crate::alert::AlertManager;
use crate::api::{self, ApiState, ApiToken, SelfMetrics};
use crate::capture::{self, CaptureHandle, CaptureStats};
use crate::config::Config;
use crate::discovery::{self, Discovery, DiscoveryStats, Resolver, Retirement};
use crate::health::{CaptureHealth, DiscoveryHealth, HealthInputs};
use crate::kube::{self, KubeStatus};
use crate::reqlog::{RecentRequests, RequestLog, RequestLogHandle};
use crate::store::{self, UsageStore};

/// How long each notifier may take to deliver what is queued at shutdown.
const NOTIFIER_DRAIN: Duration = Duration::from_secs(5);

/// A running agent. Dropping it without [`App::shutdown`] still detaches the capture, but
/// skips the final flushes.
pub struct App {
    cancel: CancellationToken,
    listen: SocketAddr,
    capture: CaptureHandle,
    analysis: std::thread::JoinHandle<serde_json::Value>,
    store: UsageStore,
    /// Cancelled by `shutdown` once the analysis stage is drained: the flusher's last flush.
    store_drained: CancellationToken,
    flusher: JoinHandle<()>,
    health_follower: JoinHandle<()>,
    server: JoinHandle<std::io::Result<()>>,
    alerts: Arc<AlertManager>,
    notifiers: Vec<JoinHandle<()>>,
    log: Option<(RequestLogHandle, std::thread::JoinHandle<()>)>,
    discovery: JoinHandle<()>,
    kube: Option<JoinHandle<()>>,
}

impl App {
    /// Starts every component. Whatever can refuse bad input (privileges, interfaces, the
    /// listen address, routes, store, token, log path, alert config) does so before the
    /// capture attaches. `cancel` is the app token: cancelling it stops the HTTP server and the
    /// followers at once; call [`App::shutdown`] to stop the rest in order.
    pub async fn start(cfg: Config, cancel: CancellationToken) -> Result<App> {
        capture::preflight(&cfg)?;
        let listener = TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?;
        let mut pipeline =
            Pipeline::new(cfg.pipeline_config()?).context("invalid route pattern")?;
        let store = UsageStore::open(cfg.redis_url.as_deref(), &cfg.data_dir, cfg.store.options())
            .context("cannot open the usage store")?;
        restore_routes(&store, &mut pipeline).await;
        let token = ApiToken::resolve(cfg.api_token.as_deref(), &cfg.data_dir)
            .context("cannot set up the API token")?;
        let log = match &cfg.log {
            Some(path) => {
                let mut lc = cfg.request_log.clone();
                lc.path = path.clone();
                Some(RequestLog::spawn(&lc)?)
            }
            None => None,
        };
        let log_handle = log.as_ref().map(|(handle, _)| handle.clone());
        let recent = Arc::new(RecentRequests::new(cfg.request_log.recent_capacity));
        let (alerts, notifiers) = AlertManager::spawn(&cfg.alerts)?;

        let kube = kube::start(&cfg.kubernetes, cancel.clone());
        let kube_status = kube.as_ref().map(|k| k.status.clone());
        let Discovery {
            table,
            ports,
            stats: discovery_stats,
            task: discovery,
        } = discovery::start(
            &cfg.discovery,
            discovery::Settings {
                rules: cfg.services.clone(),
                own_port: Some(cfg.listen.port()),
                local_netns: discovery::own_netns(),
                api: kube
                    .as_ref()
                    .map(|k| k.pods.clone() as Arc<dyn discovery::PodSource>),
            },
            cancel.clone(),
        );
        let table_for_health = table.clone();
        let (capture, source) = capture::start(&cfg, ports)?;
        let capture_stats = capture.stats();

        let empty =
            Arc::new(Aggregator::new(AggregateConfig::default()).snapshot(analyze::wall_ns()));
        let (snapshot_tx, snapshot_rx) = watch::channel(empty);
        let (series_tx, series_rx) = watch::channel(Arc::new(SeriesSnapshot::default()));
        let pipeline_metrics = Arc::new(Mutex::new(Vec::new()));
        let analysis = analyze::spawn(
            pipeline,
            source,
            analyze::Sinks {
                store: store.clone(),
                log: log_handle.clone(),
                recent: recent.clone(),
            },
            analyze::Published {
                snapshot: snapshot_tx,
                series: series_tx,
                self_metrics: pipeline_metrics.clone(),
                alerts: alerts.clone(),
            },
            analyze::Servers {
                resolver: Box::new(Resolver::new(table.clone(), !cfg.ports.is_empty())),
                retirement: Retirement::new(
                    table,
                    Duration::from_secs(cfg.discovery.retire_after_secs),
                ),
            },
            tokio::runtime::Handle::current(),
        )
        .context("cannot start the analysis thread")?;

        let store_drained = CancellationToken::new();
        let flusher = tokio::spawn(store::run_flusher(
            store.clone(),
            store_drained.clone().cancelled_owned(),
        ));
        let capture_health = Arc::new(CaptureHealth::new());
        let health_follower = tokio::spawn(follow_capture_health(
            capture_stats.clone(),
            capture_health.clone(),
            cancel.clone(),
        ));
        let state = ApiState {
            snapshot: snapshot_rx,
            self_metrics: self_metrics_source(
                capture_stats.clone(),
                pipeline_metrics,
                log_handle,
                alerts.clone(),
                discovery_stats.clone(),
                kube_status.clone(),
            ),
            store: store.clone(),
            health: Arc::new(
                HealthInputs::new(
                    capture_health,
                    cfg.data_dir.clone(),
                    cfg.health,
                    cfg.alerts.thresholds(),
                )
                .with_discovery(DiscoveryHealth {
                    stats: discovery_stats,
                    table: table_for_health,
                    cgroup_version: cfg.discovery.cgroup_version(),
                    kube: kube_status,
                }),
            ),
            token,
            recent,
            alerts: alerts.clone(),
            series: series_rx,
            interfaces: Arc::new(move || capture_stats.interface_names()),
        };
        let server = tokio::spawn(api::serve(
            listener,
            api::router(state),
            cancel.clone().cancelled_owned(),
        ));
        info!(listen = %cfg.listen, store = store.backend_name(), "apitap running: GET / (live page), /metrics, /health, /api/v1/*");
        Ok(App {
            cancel,
            listen: cfg.listen,
            capture,
            analysis,
            store,
            store_drained,
            flusher,
            health_follower,
            server,
            alerts,
            notifiers,
            log,
            discovery,
            kube: kube.map(|k| k.task),
        })
    }

    /// The address of the HTTP endpoint.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// Stops the agent (cancelling the app token if nobody has yet), in this order:
    ///
    /// 1. **HTTP server, health follower, discovery and the Kubernetes API follower** stop on
    ///    the token (the server finishes the requests in flight; a scan in progress
    ///    completes).
    /// 2. **Capture** stops reading, drains the ring once more, detaches every filter and
    ///    closes its batch channel.
    /// 3. **Analysis** sees its input close, flushes pending requests into the sinks (store,
    ///    request log, lookup ring), publishes a last snapshot and returns the learned routes.
    /// 4. **Learned routes** are saved to the store.
    /// 5. **Store**: the flusher is told the analysis is drained and flushes a last time
    ///    (bounded by its final-flush timeout).
    /// 6. **Alerts**: with the analysis and the server gone, the last manager reference is
    ///    dropped; each notifier delivers what is queued (up to 5 s each) and ends.
    /// 7. **Request log**: the last handle is dropped; the writer thread writes what is queued,
    ///    flushes the file and ends.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        if let Ok(Err(e)) = self.server.await {
            warn!("HTTP endpoint: {e}");
        }
        let _ = self.health_follower.await;
        let _ = self.discovery.await;
        if let Some(k) = self.kube {
            let _ = k.await;
        }

        self.capture.shutdown().await;

        let analysis = self.analysis;
        let learned = match tokio::task::spawn_blocking(move || analysis.join()).await {
            Ok(Ok(state)) => Some(state),
            _ => {
                warn!("the analysis stage ended abnormally; learned routes not saved");
                None
            }
        };

        if let Some(state) = learned
            && let Err(e) = self.store.save_routes(state.to_string()).await
        {
            warn!("cannot save learned routes: {e}");
        }

        self.store_drained.cancel();
        let _ = self.flusher.await;

        drop(self.alerts);
        for task in self.notifiers {
            if tokio::time::timeout(NOTIFIER_DRAIN, task).await.is_err() {
                warn!("an alert notifier did not finish within {NOTIFIER_DRAIN:?}");
            }
        }

        if let Some((handle, writer)) = self.log {
            drop(handle);
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
    }
}

/// The `apitap_*` self-metrics of every stage, gathered on each scrape.
fn self_metrics_source(
    capture: CaptureStats,
    pipeline: Arc<Mutex<Vec<agent_core::export::SelfMetric>>>,
    log: Option<RequestLogHandle>,
    alerts: Arc<AlertManager>,
    discovery: Arc<DiscoveryStats>,
    kube: Option<Arc<KubeStatus>>,
) -> SelfMetrics {
    Arc::new(move || {
        let mut m = self_metrics::capture(&capture.snapshot());
        m.extend(
            pipeline
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        if let Some(log) = &log {
            m.extend(log.stats().self_metrics());
        }
        m.extend(alerts.self_metrics());
        m.extend(discovery.self_metrics());
        if let Some(k) = &kube {
            m.extend(k.self_metrics());
        }
        m.extend(self_metrics::process());
        m.push(self_metrics::build_info());
        m
    })
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
    stats: CaptureStats,
    health: Arc<CaptureHealth>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let s = stats.snapshot();
        health.set_programs_attached(s.programs_attached as u32);
        health.set_events_lost(s.events_lost);
        health.set_ready(s.programs_attached > 0);
        tokio::select! {
            _ = tick.tick() => {}
            () = cancel.cancelled() => return,
        }
    }
}
