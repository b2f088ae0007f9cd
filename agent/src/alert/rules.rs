//! What an alert is about: a rule kind, a severity and a scope (a service, or one endpoint of
//! it), and one evaluation of it against a threshold.
//!
//! Warning and critical are separate alerts sharing a name, as in deploy/prometheus: when the
//! critical threshold is crossed both fire, and an Alertmanager inhibit rule keeps one page.

use serde::Serialize;

/// Thresholds of one scope (a service, or an endpoint with its overrides applied).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub error_rate_warning: f64,
    pub error_rate_critical: f64,
    pub p95_warning_ms: u64,
    pub p95_critical_ms: u64,
    pub rpm_warning: u64,
    pub rpm_critical: u64,
}

impl Default for Thresholds {
    /// The SPEC defaults.
    fn default() -> Self {
        Thresholds {
            error_rate_warning: 0.05,
            error_rate_critical: 0.10,
            p95_warning_ms: 1_000,
            p95_critical_ms: 5_000,
            rpm_warning: 1_000,
            rpm_critical: 2_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum RuleKind {
    /// Failures / requests over the window (value: a ratio 0-1).
    ErrorRate,
    /// p95 of durations (value: seconds).
    LatencyP95,
    /// Requests in the last minute (value: requests per minute).
    Traffic,
}

impl RuleKind {
    pub const ALL: [RuleKind; 3] = [RuleKind::ErrorRate, RuleKind::LatencyP95, RuleKind::Traffic];

    /// The alert name, shared with deploy/prometheus/rules/apitap.rules.yml.
    pub fn alertname(self) -> &'static str {
        match self {
            RuleKind::ErrorRate => "ApiErrorRateHigh",
            RuleKind::LatencyP95 => "ApiLatencyP95High",
            RuleKind::Traffic => "ApiTrafficHigh",
        }
    }

    /// The threshold of this kind and severity, in the unit of the value.
    pub fn threshold(self, severity: Severity, t: &Thresholds) -> f64 {
        let critical = severity == Severity::Critical;
        match (self, critical) {
            (RuleKind::ErrorRate, false) => t.error_rate_warning,
            (RuleKind::ErrorRate, true) => t.error_rate_critical,
            (RuleKind::LatencyP95, false) => t.p95_warning_ms as f64 / 1e3,
            (RuleKind::LatencyP95, true) => t.p95_critical_ms as f64 / 1e3,
            (RuleKind::Traffic, false) => t.rpm_warning as f64,
            (RuleKind::Traffic, true) => t.rpm_critical as f64,
        }
    }

    /// A value in words: "12.5 %", "1.204 s", "1500 requests/min".
    pub fn describe(self, value: f64) -> String {
        match self {
            RuleKind::ErrorRate => format!("{:.1} %", value * 100.0),
            RuleKind::LatencyP95 => format!("{value:.3} s"),
            RuleKind::Traffic => format!("{value:.0} requests/min"),
        }
    }

    fn what(self) -> &'static str {
        match self {
            RuleKind::ErrorRate => "error rate",
            RuleKind::LatencyP95 => "p95 latency",
            RuleKind::Traffic => "traffic",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 2] = [Severity::Warning, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The identity of an alert: one per rule kind, severity and scope.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlertKey {
    pub kind: RuleKind,
    pub severity: Severity,
    /// Kubernetes namespace of the service (empty off Kubernetes).
    pub namespace: String,
    pub service: String,
    /// Set for endpoint rules.
    pub method: Option<String>,
    pub endpoint: Option<String>,
}

impl AlertKey {
    /// "port-8080", "shop/checkout" or "GET /api/users/{id} on port-8080".
    pub fn scope(&self) -> String {
        let service = if self.namespace.is_empty() {
            self.service.clone()
        } else {
            format!("{}/{}", self.namespace, self.service)
        };
        match (&self.method, &self.endpoint) {
            (Some(m), Some(e)) => format!("{m} {e} on {service}"),
            (None, Some(e)) => format!("{e} on {service}"),
            _ => service,
        }
    }

    /// One line for people: "port-8080: error rate 12.5 % above 10.0 %".
    pub fn summary(&self, value: f64, threshold: f64) -> String {
        format!(
            "{}: {} {} above {}",
            self.scope(),
            self.kind.what(),
            self.kind.describe(value),
            self.kind.describe(threshold)
        )
    }
}

/// One evaluation of one alert's rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub key: AlertKey,
    pub value: f64,
    pub threshold: f64,
    /// `value > threshold` and enough traffic to judge.
    pub breached: bool,
}
