//! Notifiers and their delivery tasks.
//!
//! Each notifier has its own bounded queue and task, so a slow mail server never delays the
//! webhook. A full queue drops the notification and counts it; a failed delivery is retried
//! with exponential backoff a bounded number of times, then counted as failed
//! (`apitap_alert_notifications_total{notifier, result="sent|failed|dropped"}`).

mod alertmanager;
mod message;
mod smtp;
mod webhook;

pub use alertmanager::AlertmanagerNotifier;
pub use message::{Notification, Status, hostname_for_labels};
pub use smtp::SmtpNotifier;
pub use webhook::WebhookNotifier;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("HTTP request failed: {}", http_chain(.0))]
    Http(#[from] reqwest::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP status {status}: {body}")]
    Status { status: u16, body: String },
    #[error("SMTP: {0}")]
    Smtp(String),
}

/// reqwest's error with its causes ("error sending request: ...: invalid peer certificate:
/// UnknownIssuer"), so a TLS failure says why on its one line.
fn http_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

pub enum Notifier {
    Log,
    Webhook(WebhookNotifier),
    Alertmanager(AlertmanagerNotifier),
    Smtp(Box<SmtpNotifier>),
}

impl Notifier {
    /// The `notifier` label.
    pub fn name(&self) -> &'static str {
        match self {
            Notifier::Log => "log",
            Notifier::Webhook(_) => "webhook",
            Notifier::Alertmanager(_) => "alertmanager",
            Notifier::Smtp(_) => "smtp",
        }
    }

    /// Refreshes (a firing alert re-sent to keep it alive) only matter to Alertmanager.
    pub fn wants_refresh(&self) -> bool {
        matches!(self, Notifier::Alertmanager(_))
    }

    pub async fn deliver(&self, n: &Notification) -> Result<(), NotifyError> {
        match self {
            Notifier::Log => {
                tracing::warn!(
                    status = n.status.as_str(),
                    alertname = n.name,
                    severity = n.severity.as_str(),
                    service = %n.service,
                    endpoint = n.endpoint.as_deref().unwrap_or(""),
                    value = n.value,
                    threshold = n.threshold,
                    "alert {}: {}",
                    n.status.as_str(),
                    n.summary
                );
                Ok(())
            }
            Notifier::Webhook(w) => w.deliver(n).await,
            Notifier::Alertmanager(a) => a.deliver(n).await,
            Notifier::Smtp(s) => s.deliver(n).await,
        }
    }
}

/// Counters of one notifier.
#[derive(Debug, Default)]
pub struct NotifierCounters {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub retries: AtomicU64,
}

/// Bounded exponential backoff.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    pub attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

/// One notifier's queue: the manager's side.
pub struct Channel {
    pub name: &'static str,
    pub wants_refresh: bool,
    pub tx: mpsc::Sender<Notification>,
    pub counters: Arc<NotifierCounters>,
}

impl Channel {
    /// Queues `n` without waiting; a full queue counts a drop.
    pub fn offer(&self, n: &Notification) {
        if n.refresh && !self.wants_refresh {
            return;
        }
        if self.tx.try_send(n.clone()).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                notifier = self.name,
                alertname = n.name,
                "alert notification dropped: queue full"
            );
        }
    }
}

/// Starts the delivery task of `notifier` (inside a tokio runtime).
pub fn spawn(
    notifier: Notifier,
    capacity: usize,
    retry: Retry,
) -> (Channel, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity);
    let counters = Arc::new(NotifierCounters::default());
    let channel = Channel {
        name: notifier.name(),
        wants_refresh: notifier.wants_refresh(),
        tx,
        counters: Arc::clone(&counters),
    };
    let task = tokio::spawn(deliver_loop(notifier, rx, counters, retry));
    (channel, task)
}

async fn deliver_loop(
    notifier: Notifier,
    mut rx: mpsc::Receiver<Notification>,
    counters: Arc<NotifierCounters>,
    retry: Retry,
) {
    while let Some(n) = rx.recv().await {
        let mut delay = retry.initial;
        for attempt in 1..=retry.attempts {
            match notifier.deliver(&n).await {
                Ok(()) => {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(e) if attempt == retry.attempts => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(notifier = notifier.name(), alertname = n.name, attempts = attempt, error = %e, "alert notification failed");
                }
                Err(e) => {
                    counters.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(notifier = notifier.name(), attempt, error = %e, "alert notification failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(retry.max);
                }
            }
        }
    }
}
