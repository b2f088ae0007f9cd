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
    /// Proxies (CIDRs) whose X-Forwarded-For is believed; the client is then the right-most
    /// address of it that is not a trusted proxy. Empty: the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Clients tracked individually; the rest are folded into `other`.
    pub top_k: u32,
}

impl Default for ClientsConfig {
    fn default() -> Self {
        ClientsConfig {
            header: "x-api-key".into(),
            trusted_proxies: Vec::new(),
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
        let keys = agent_core::identity::DEFAULT_REDACT_KEYS;
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
    /// Flows tracked at once; beyond it the least recently used flow is evicted (and counted).
    pub max_flows: u32,
    /// Bytes buffered per flow (out-of-order data and partial heads) before the missing bytes
    /// count as a gap.
    pub flow_budget_bytes: u32,
    /// Bytes buffered across all flows; beyond it least recently used flows are evicted.
    pub total_budget_bytes: u64,
    /// Bytes the peer acknowledged but the capture has not seen are declared lost only once
    /// this many segments of the flow went by without them ...
    pub reorder_window_packets: u32,
    /// ... and this much time (the reorder window: mirror ports and busy capture hosts deliver
    /// an ACK before the data it acknowledges).
    pub reorder_window_ms: u64,
    /// Segments one direction may hold out of order or park behind the bytes they
    /// acknowledge; past it the engine stops waiting (counted in apitap_reorder_limit_total).
    pub reorder_max_segments: u32,
    /// HTTP/2 streams tracked at once per connection; a stream past it is not recorded
    /// (counted in apitap_h2_streams_over_limit_total).
    pub h2_max_streams: u32,
    /// Bytes of one compressed HTTP/2 header block; a larger one is not decoded, its fields are
    /// unknown and so is the HPACK table afterwards (counted).
    pub h2_max_header_block_bytes: u32,
    /// Largest HPACK dynamic table kept per direction, whatever SETTINGS_HEADER_TABLE_SIZE
    /// allows (size updates above it are counted).
    pub h2_max_table_bytes: u32,
    /// Series per metric before label values are folded into `other`.
    pub series_budget: u32,
}

/// The engine's own defaults (one owner: agent-core).
static ENGINE_DEFAULTS: std::sync::LazyLock<agent_core::engine::EngineConfig> =
    std::sync::LazyLock::new(agent_core::engine::EngineConfig::default);

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            request_timeout_ms: 30_000,
            idle_flow_timeout_ms: 300_000,
            max_flows: 65_536,
            flow_budget_bytes: 256 * 1024,
            total_budget_bytes: 64 * 1024 * 1024,
            reorder_window_packets: ENGINE_DEFAULTS.reorder_window_packets,
            reorder_window_ms: ENGINE_DEFAULTS.reorder_window_ns / 1_000_000,
            reorder_max_segments: ENGINE_DEFAULTS.reorder_max_segments as u32,
            h2_max_streams: ENGINE_DEFAULTS.h2.max_streams as u32,
            h2_max_header_block_bytes: ENGINE_DEFAULTS.h2.max_header_block_bytes as u32,
            h2_max_table_bytes: ENGINE_DEFAULTS.h2.max_table_bytes as u32,
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
    /// `[store.tls_config]`: CA, client certificate and key for a `rediss://` Redis.
    pub tls_config: crate::tls::TlsConfig,
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
            tls_config: crate::tls::TlsConfig::default(),
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
