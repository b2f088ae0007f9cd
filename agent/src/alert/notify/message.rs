//! The notification every notifier renders: the webhook's JSON body as is.

use serde::Serialize;

use super::super::lifecycle::Alert;
use super::super::rules::Severity;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// `{status, name, severity, service, endpoint, value, threshold, started_at, ended_at, …}`.
/// Values are ratios (error rate), seconds (latency) or requests per minute (traffic), with
/// the threshold in the same unit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notification {
    pub status: Status,
    pub name: &'static str,
    pub severity: Severity,
    /// Kubernetes namespace of the service (empty off Kubernetes).
    pub namespace: String,
    pub service: String,
    /// Route template for endpoint rules, null for a service.
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub value: f64,
    pub threshold: f64,
    /// RFC 3339 UTC: first breach / resolution.
    pub started_at: String,
    pub ended_at: Option<String>,
    pub summary: String,
    /// The host the agent runs on.
    pub instance: String,
    /// A re-send of a firing alert that only Alertmanager needs.
    #[serde(skip)]
    pub refresh: bool,
}

impl Notification {
    pub fn from_alert(a: &Alert, status: Status, refresh: bool, instance: &str) -> Notification {
        let summary = match status {
            Status::Firing => a.key.summary(a.value, a.threshold),
            Status::Resolved => format!(
                "{}: {} back to {} (threshold {})",
                a.key.scope(),
                a.key.kind.alertname(),
                a.key.kind.describe(a.value),
                a.key.kind.describe(a.threshold)
            ),
        };
        Notification {
            status,
            name: a.key.kind.alertname(),
            severity: a.key.severity,
            namespace: a.key.namespace.clone(),
            service: a.key.service.clone(),
            endpoint: a.key.endpoint.clone(),
            method: a.key.method.clone(),
            value: a.value,
            threshold: a.threshold,
            started_at: agent_core::time::rfc3339_micros(a.active_since_ns),
            ended_at: a.resolved_at_ns.map(agent_core::time::rfc3339_micros),
            summary,
            instance: instance.to_owned(),
            refresh,
        }
    }

    /// A longer text for mail bodies and Alertmanager descriptions.
    pub fn description(&self) -> String {
        let mut s = format!(
            "{} ({}) is {} for {}.\nValue: {}\nThreshold: {}\nStarted: {}\n",
            self.name,
            self.severity.as_str(),
            self.status.as_str(),
            self.scope(),
            self.value,
            self.threshold,
            self.started_at
        );
        if let Some(end) = &self.ended_at {
            s.push_str(&format!("Ended: {end}\n"));
        }
        s.push_str(&format!("Host: {}\n", self.instance));
        s
    }

    pub fn scope(&self) -> String {
        match (&self.method, &self.endpoint) {
            (Some(m), Some(e)) => format!("{m} {e} on {}", self.service),
            (None, Some(e)) => format!("{e} on {}", self.service),
            _ => self.service.clone(),
        }
    }
}

/// The host name, for the `instance` label.
pub fn hostname_for_labels() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
