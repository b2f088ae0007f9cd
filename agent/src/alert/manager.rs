//! The alerting stage: fed every snapshot, owns the evaluator and the lifecycle, hands
//! notifications to the notifier tasks, and answers `GET /api/v1/alerts` and /health.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use agent_core::aggregate::snapshot::Snapshot;
use agent_core::export::{MetricKind, SelfMetric};
use serde::Serialize;
use tokio::task::JoinHandle;

use super::AlertError;
use super::config::AlertConfig;
use super::evaluate::Evaluator;
use super::lifecycle::{Alert, Event, Lifecycle};
use super::notify::{self, Channel, Notification, Notifier, Retry, Status};

const SECOND_NS: u64 = 1_000_000_000;

/// One alert as `GET /api/v1/alerts` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertView {
    pub name: &'static str,
    pub severity: &'static str,
    /// pending, firing or resolved.
    pub state: &'static str,
    /// Kubernetes namespace of the service (empty off Kubernetes).
    pub namespace: String,
    pub service: String,
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub value: f64,
    pub threshold: f64,
    pub summary: String,
    pub started_at: String,
    pub fired_at: Option<String>,
    pub ended_at: Option<String>,
}

impl From<&Alert> for AlertView {
    fn from(a: &Alert) -> AlertView {
        let time = agent_core::time::rfc3339_micros;
        AlertView {
            name: a.key.kind.alertname(),
            severity: a.key.severity.as_str(),
            state: a.phase.as_str(),
            namespace: a.key.namespace.clone(),
            service: a.key.service.clone(),
            endpoint: a.key.endpoint.clone(),
            method: a.key.method.clone(),
            value: a.value,
            threshold: a.threshold,
            summary: a.key.summary(a.value, a.threshold),
            started_at: time(a.active_since_ns),
            fired_at: a.fired_at_ns.map(time),
            ended_at: a.resolved_at_ns.map(time),
        }
    }
}

struct State {
    evaluator: Evaluator,
    lifecycle: Lifecycle,
}

pub struct AlertManager {
    state: Mutex<State>,
    channels: Vec<Channel>,
    instance: String,
    resend_ns: u64,
}

impl AlertManager {
    /// Validates `cfg`, builds the notifiers and starts one delivery task each. Call inside a
    /// tokio runtime. The tasks end once the manager is dropped and their queues are drained.
    pub fn spawn(
        cfg: &AlertConfig,
    ) -> Result<(Arc<AlertManager>, Vec<JoinHandle<()>>), AlertError> {
        cfg.validate()?;
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let mut notifiers = Vec::new();
        if cfg.log {
            notifiers.push(Notifier::Log);
        }
        if cfg.webhook.is_some() || cfg.alertmanager_url.is_some() {
            cfg.tls_config
                .warn_if_insecure("alert webhook and Alertmanager");
        }
        if let Some(url) = &cfg.webhook {
            notifiers.push(Notifier::Webhook(notify::WebhookNotifier::new(
                url,
                &cfg.tls_config,
                timeout,
            )?));
        }
        if let Some(url) = &cfg.alertmanager_url {
            let am = notify::AlertmanagerNotifier::new(
                url,
                &cfg.generator_url,
                &cfg.tls_config,
                timeout,
            )?;
            notifiers.push(Notifier::Alertmanager(am));
        }
        if let Some(smtp) = &cfg.smtp {
            notifiers.push(Notifier::Smtp(Box::new(notify::SmtpNotifier::new(
                smtp, timeout,
            )?)));
        }
        let retry = Retry {
            attempts: cfg.retry_attempts,
            initial: Duration::from_millis(cfg.retry_initial_ms),
            max: Duration::from_secs(30),
        };
        let (channels, tasks): (Vec<_>, Vec<_>) = notifiers
            .into_iter()
            .map(|n| notify::spawn(n, cfg.queue_capacity, retry))
            .unzip();
        let manager = AlertManager {
            state: Mutex::new(State {
                evaluator: Evaluator::new(cfg),
                lifecycle: Lifecycle::new(
                    cfg.for_secs.saturating_mul(SECOND_NS),
                    cfg.repeat_interval_secs.saturating_mul(SECOND_NS),
                    cfg.recent_secs.saturating_mul(SECOND_NS),
                ),
            }),
            channels,
            instance: notify::hostname_for_labels(),
            resend_ns: cfg
                .alertmanager_resend_secs
                .max(1)
                .saturating_mul(SECOND_NS),
        };
        Ok((Arc::new(manager), tasks))
    }

    /// Evaluates one snapshot (its `taken_ns` is the clock) and queues what must be notified.
    pub fn on_snapshot(&self, snap: &Snapshot) {
        let now = snap.taken_ns;
        let (events, refresh) = {
            let mut state = self.lock();
            let State {
                evaluator,
                lifecycle,
            } = &mut *state;
            let checks = evaluator.evaluate(snap);
            let events = lifecycle.step(now, &checks);
            (events, lifecycle.due_refresh(now, self.resend_ns))
        };
        for event in &events {
            let (alert, status) = match event {
                Event::Fired(a) | Event::Repeated(a) => (a, Status::Firing),
                Event::Resolved(a) => (a, Status::Resolved),
            };
            self.offer(&Notification::from_alert(
                alert,
                status,
                false,
                &self.instance,
            ));
        }
        for alert in &refresh {
            self.offer(&Notification::from_alert(
                alert,
                Status::Firing,
                true,
                &self.instance,
            ));
        }
    }

    fn offer(&self, n: &Notification) {
        for channel in &self.channels {
            channel.offer(n);
        }
    }

    /// Pending and firing alerts, then those resolved within `recent_secs`, newest first.
    pub fn active_and_recent(&self) -> Vec<AlertView> {
        self.lock()
            .lifecycle
            .active_and_recent()
            .iter()
            .map(AlertView::from)
            .collect()
    }

    /// Alerts firing now (for /health).
    pub fn firing_count(&self) -> usize {
        self.lock().lifecycle.firing_count()
    }

    /// `apitap_alert_notifications_total{notifier,result}` and `apitap_alerts_firing`.
    pub fn self_metrics(&self) -> Vec<SelfMetric> {
        let mut out = Vec::new();
        for c in &self.channels {
            for (result, counter) in [
                ("sent", &c.counters.sent),
                ("failed", &c.counters.failed),
                ("dropped", &c.counters.dropped),
            ] {
                out.push(SelfMetric {
                    name: "apitap_alert_notifications_total".into(),
                    help: "Alert notifications by notifier and result (sent, failed after retries, dropped on a full queue).".into(),
                    kind: MetricKind::Counter,
                    labels: vec![("notifier".into(), c.name.into()), ("result".into(), result.into())],
                    value: counter.load(Ordering::Relaxed) as f64,
                });
            }
        }
        out.push(SelfMetric {
            name: "apitap_alerts_firing".into(),
            help: "Alerts firing now.".into(),
            kind: MetricKind::Gauge,
            labels: Vec::new(),
            value: self.firing_count() as f64,
        });
        out
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation completes before the guard drops; a poisoned state is still coherent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
