//! Alerting (SPEC "Alerts"): threshold rules per service and per configured endpoint, evaluated
//! on every snapshot tick, with a pending → firing → resolved lifecycle and notifiers (log,
//! webhook, Alertmanager, SMTP) fed through bounded queues.
//!
//! ```text
//! Snapshot ─▶ Evaluator (checks) ─▶ Lifecycle (events) ─▶ per-notifier queue ─▶ delivery task (retry, backoff)
//! ```
//! The clock is the snapshot's `taken_ns`, so replays alert on capture time and tests need no
//! sleeping.

mod config;
mod evaluate;
mod history;
mod lifecycle;
mod manager;
pub mod notify;
mod rules;

pub use config::{AlertConfig, EndpointRule, SmtpConfig, SmtpTls};
pub use manager::{AlertManager, AlertView};
pub use rules::{Severity, Thresholds};

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("{key}: {why}")]
    Invalid { key: String, why: String },
    #[error("alert notifier: {0}")]
    Notifier(#[from] notify::NotifyError),
}
