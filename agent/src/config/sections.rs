//! The sections of the config file below the top-level keys. Every field has a documented
//! default (the `Default` impls) and unknown keys are rejected (`deny_unknown_fields`).

use serde::Deserialize;
use std::path::PathBuf;

/// `[routes]`: how raw paths become low-cardinality `endpoint` labels.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutesConfig {
    /// Explicit templates tried first, e.g. `"/api/users/{id}"`.
    pub patterns: Vec<String>,
    /// OpenAPI (JSON or YAML) file whose paths are used as templates.
    pub openapi: Option<PathBuf>,
    /// A path segment with more distinct values than this becomes `{id}`.
    pub max_distinct_values: u32,
}

impl Default for RoutesConfig {
    fn default() -> Self {
        RoutesConfig {
            patterns: Vec::new(),
            openapi: None,
            max_distinct_values: 50,
        }
    }
}

/// `[clients]`: who the API consumer is.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientsConfig {
    /// Request header carrying the API key (shown as a short hash, never the key).
    pub header: String,
    /// Use the first X-Forwarded-For address as the client IP.
    pub trust_forwarded_for: bool,
    /// Clients tracked individually; the rest are folded into `other`.
    pub top_k: u32,
}

impl Default for ClientsConfig {
    fn default() -> Self {
        ClientsConfig {
            header: "x-api-key".into(),
            trust_forwarded_for: false,
            top_k: 100,
        }
    }
}

/// `[redact]`: what never reaches a log.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactConfig {
    /// Query keys whose values are replaced by `REDACTED` (case-insensitive).
    pub query_keys: Vec<String>,
}

impl Default for RedactConfig {
    fn default() -> Self {
        let keys = [
            "token",
            "key",
            "api_key",
            "apikey",
            "password",
            "secret",
            "access_token",
        ];
        RedactConfig {
            query_keys: keys.iter().map(|k| (*k).to_string()).collect(),
        }
    }
}

/// `[engine]`: timeouts and memory budgets of flow tracking and aggregation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// A request without a response after this long is recorded with `error.type` timeout.
    pub request_timeout_ms: u64,
    /// A flow with no segment for this long is evicted.
    pub idle_flow_timeout_ms: u64,
    /// Flows tracked at once; beyond it the oldest idle flow is evicted (and counted).
    pub max_flows: u32,
    /// Out-of-order bytes buffered per flow direction before a gap is declared.
    pub max_reassembly_bytes: u32,
    /// Series per metric before label values are folded into `other`.
    pub series_budget: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            request_timeout_ms: 30_000,
            idle_flow_timeout_ms: 120_000,
            max_flows: 65_536,
            max_reassembly_bytes: 65_536,
            series_budget: 2_000,
        }
    }
}

/// `[store]`: the usage store (embedded, or Redis with `redis_url`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// How often buffered increments are written.
    pub flush_interval_ms: u64,
    /// Distinct (key, field) increments kept while the store is unreachable; beyond it new
    /// increments are dropped and counted.
    pub max_pending: u32,
    /// First retry delay after a failed write; doubles up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// Retention of daily keys (Redis EXPIRE / embedded pruning).
    pub daily_retention_days: u32,
    /// Retention of hourly keys.
    pub hourly_retention_days: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            flush_interval_ms: 1_000,
            max_pending: 100_000,
            retry_initial_ms: 500,
            retry_max_ms: 30_000,
            daily_retention_days: 30,
            hourly_retention_days: 7,
        }
    }
}

/// Thresholds of one scope (a service, or an endpoint with its overrides applied).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Error rate (0-1) for a warning / a critical alert.
    pub error_rate_warning: f64,
    pub error_rate_critical: f64,
    /// p95 latency in milliseconds.
    pub p95_warning_ms: u64,
    pub p95_critical_ms: u64,
    /// Requests per minute.
    pub rpm_warning: u64,
    pub rpm_critical: u64,
}

impl Default for Thresholds {
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

/// `[[alerts.endpoints]]`: thresholds for one endpoint; unset values inherit `[alerts]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointOverride {
    /// Route template, e.g. `/api/users/{id}`.
    pub endpoint: String,
    /// Only this method (any when unset).
    pub method: Option<String>,
    /// Only this service (any when unset).
    pub service: Option<String>,
    pub error_rate_warning: Option<f64>,
    pub error_rate_critical: Option<f64>,
    pub p95_warning_ms: Option<u64>,
    pub p95_critical_ms: Option<u64>,
    pub rpm_warning: Option<u64>,
    pub rpm_critical: Option<u64>,
}

impl EndpointOverride {
    /// The effective thresholds: these overrides over the service-wide ones.
    pub fn apply(&self, base: &Thresholds) -> Thresholds {
        Thresholds {
            error_rate_warning: self.error_rate_warning.unwrap_or(base.error_rate_warning),
            error_rate_critical: self.error_rate_critical.unwrap_or(base.error_rate_critical),
            p95_warning_ms: self.p95_warning_ms.unwrap_or(base.p95_warning_ms),
            p95_critical_ms: self.p95_critical_ms.unwrap_or(base.p95_critical_ms),
            rpm_warning: self.rpm_warning.unwrap_or(base.rpm_warning),
            rpm_critical: self.rpm_critical.unwrap_or(base.rpm_critical),
        }
    }
}

/// `[alerts]`: service-wide thresholds, evaluation window and notifiers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Error rate (0-1) for a warning / a critical alert.
    pub error_rate_warning: f64,
    pub error_rate_critical: f64,
    /// p95 latency in milliseconds.
    pub p95_warning_ms: u64,
    pub p95_critical_ms: u64,
    /// Requests per minute.
    pub rpm_warning: u64,
    pub rpm_critical: u64,
    /// Sliding window the rules are evaluated over.
    pub window_secs: u64,
    /// A firing alert is not re-sent before this long.
    pub repeat_interval_secs: u64,
    /// Webhook receiving alerts as JSON (flag --alert-webhook).
    pub webhook: Option<String>,
    /// Alertmanager base URL (flag --alertmanager-url).
    pub alertmanager_url: Option<String>,
    /// Per-endpoint overrides.
    pub endpoints: Vec<EndpointOverride>,
}

impl AlertsConfig {
    /// The service-wide thresholds.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            error_rate_warning: self.error_rate_warning,
            error_rate_critical: self.error_rate_critical,
            p95_warning_ms: self.p95_warning_ms,
            p95_critical_ms: self.p95_critical_ms,
            rpm_warning: self.rpm_warning,
            rpm_critical: self.rpm_critical,
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        let t = Thresholds::default();
        AlertsConfig {
            error_rate_warning: t.error_rate_warning,
            error_rate_critical: t.error_rate_critical,
            p95_warning_ms: t.p95_warning_ms,
            p95_critical_ms: t.p95_critical_ms,
            rpm_warning: t.rpm_warning,
            rpm_critical: t.rpm_critical,
            window_secs: 300,
            repeat_interval_secs: 3_600,
            webhook: None,
            alertmanager_url: None,
            endpoints: Vec::new(),
        }
    }
}

/// `[health]`: host thresholds of GET /health.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Free space of the data directory's file system, percent.
    pub disk_free_warning_percent: f64,
    pub disk_free_critical_percent: f64,
    /// Used memory of the host, percent.
    pub memory_used_warning_percent: f64,
    pub memory_used_critical_percent: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            disk_free_warning_percent: 20.0,
            disk_free_critical_percent: 10.0,
            memory_used_warning_percent: 80.0,
            memory_used_critical_percent: 90.0,
        }
    }
}
