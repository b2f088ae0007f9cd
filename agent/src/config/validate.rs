//! Value checks of a parsed [`Config`]. Each failure carries the dotted key it concerns so the
//! caller can point at the file line (or at the flag that set it).

use super::Config;

/// One invalid value: its dotted key (`store.flush_interval_ms`, `ports.0`) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct Invalid {
    pub key: String,
    pub message: String,
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        key: key.into(),
        message: message.into(),
    }
}

fn check(ok: bool, key: impl Into<String>, message: impl Into<String>) -> Result<(), Invalid> {
    if ok {
        Ok(())
    } else {
        Err(invalid(key, message))
    }
}

/// The flag (and environment variable) behind a top-level key, for errors not from the file.
pub fn flag_of(key: &str) -> String {
    let top = key.split('.').next().unwrap_or(key);
    let (flag, env) = match top {
        "interfaces" => ("--interface", "APITAP_INTERFACES"),
        "ports" => ("--port", "APITAP_PORTS"),
        "listen" => ("--listen", "APITAP_LISTEN"),
        "log" => ("--log", "APITAP_LOG"),
        "redis_url" => ("--redis-url", "APITAP_REDIS_URL"),
        "data_dir" => ("--data-dir", "APITAP_DATA_DIR"),
        "api_token" => ("--api-token", "APITAP_API_TOKEN"),
        "snap_len" => ("--snap-len", "APITAP_SNAP_LEN"),
        "ring_bytes" => ("--ring-bytes", "APITAP_RING_BYTES"),
        "stack_stamps" => ("--stack-stamps", "APITAP_STACK_STAMPS"),
        "log_format" => ("--log-format", "APITAP_LOG_FORMAT"),
        "attach_mode" => ("--attach-mode", "APITAP_ATTACH_MODE"),
        "log_level" => ("--log-level", "APITAP_LOG_LEVEL"),
        _ if key == "alerts.webhook" => ("--alert-webhook", "APITAP_ALERT_WEBHOOK"),
        _ if key == "alerts.alertmanager_url" => ("--alertmanager-url", "APITAP_ALERTMANAGER_URL"),
        _ => return format!("invalid configuration ({key})"),
    };
    format!("invalid {flag} (or {env})")
}

pub fn config(c: &Config) -> Result<(), Invalid> {
    top_level(c)?;
    sections(c)?;
    alerts(c)?;
    request_log(c)?;
    discovery(c)?;
    health(c)
}

/// `[discovery]` and `[[services]]` are validated by the discovery module.
fn discovery(c: &Config) -> Result<(), Invalid> {
    c.discovery
        .validate()
        .map_err(|(key, why)| invalid(format!("discovery.{key}"), why))?;
    for (i, rule) in c.services.iter().enumerate() {
        rule.validate()
            .map_err(|(key, why)| invalid(format!("services.{i}.{key}"), why))?;
    }
    Ok(())
}

fn top_level(c: &Config) -> Result<(), Invalid> {
    for (i, iface) in c.interfaces.iter().enumerate() {
        let ok = !iface.is_empty() && iface.len() < 16 && !iface.contains(['/', ' ']);
        check(
            ok,
            format!("interfaces.{i}"),
            format!("invalid interface name {iface:?}"),
        )?;
    }
    if let Some(i) = c.ports.iter().position(|p| *p == 0) {
        return Err(invalid(
            format!("ports.{i}"),
            "invalid port 0: server ports are 1-65535",
        ));
    }
    let max = agent_common::MAX_SNAP_LEN;
    check(
        c.snap_len != 0 && c.snap_len <= max,
        "snap_len",
        format!("invalid snap length {}: must be 1-{max}", c.snap_len),
    )?;
    let min_ring = agent_common::MIN_RING_BYTES_PER_CPU;
    check(
        c.ring_bytes >= min_ring,
        "ring_bytes",
        format!(
            "invalid ring buffer size {}: must be at least {min_ring}",
            c.ring_bytes
        ),
    )?;
    check(
        c.log_format == "text" || c.log_format == "json",
        "log_format",
        format!(
            "invalid log format {:?}: expected text or json",
            c.log_format
        ),
    )?;
    if let Some(level) = &c.log_level {
        check(
            valid_log_level(level),
            "log_level",
            format!(
                "invalid log level {level:?}: expected error, warn, info, debug, trace or tracing directives"
            ),
        )?;
    }
    if let Some(log) = &c.log {
        check(!log.is_empty(), "log", "empty log path (use - for stdout)")?;
    }
    if let Some(url) = &c.redis_url {
        let ok = ["redis://", "rediss://", "unix://", "redis+unix://"]
            .iter()
            .any(|scheme| url.starts_with(scheme));
        check(
            ok,
            "redis_url",
            "expected a redis://, rediss:// or unix:// URL",
        )?;
    }
    check(
        !c.data_dir.as_os_str().is_empty(),
        "data_dir",
        "empty data directory",
    )?;
    if let Some(token) = &c.api_token {
        let ok = token.len() >= 8 && token.bytes().all(|b| b.is_ascii_graphic());
        check(
            ok,
            "api_token",
            "the API token needs at least 8 visible ASCII characters",
        )?;
    }
    Ok(())
}

/// A level, or comma-separated `LEVEL` / `TARGET=LEVEL` directives (a bare word that is not a
/// level is refused: it would silently mean "everything of a target named so").
fn valid_log_level(s: &str) -> bool {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let is_level = |l: &str| LEVELS.iter().any(|k| k.eq_ignore_ascii_case(l.trim()));
    !s.trim().is_empty()
        && s.split(',').all(|d| match d.split_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(d),
        })
}

fn sections(c: &Config) -> Result<(), Invalid> {
    for (i, pattern) in c.routes.patterns.iter().enumerate() {
        check(
            pattern.starts_with('/'),
            format!("routes.patterns.{i}"),
            "a route pattern starts with /",
        )?;
    }
    check(
        c.routes.max_distinct_values >= 1,
        "routes.max_distinct_values",
        "must be at least 1",
    )?;
    let header_ok = !c.clients.header.is_empty()
        && c.clients
            .header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    check(header_ok, "clients.header", "expected an HTTP header name")?;
    check(c.clients.top_k >= 1, "clients.top_k", "must be at least 1")?;
    for (i, cidr) in c.clients.trusted_proxies.iter().enumerate() {
        cidr.parse::<agent_core::identity::Cidr>()
            .map_err(|e| invalid(format!("clients.trusted_proxies.{i}"), e))?;
    }
    for (i, key) in c.redact.query_keys.iter().enumerate() {
        check(
            !key.is_empty(),
            format!("redact.query_keys.{i}"),
            "empty query key",
        )?;
    }
    let e = &c.engine;
    check(
        e.request_timeout_ms >= 1,
        "engine.request_timeout_ms",
        "must be at least 1",
    )?;
    check(
        e.idle_flow_timeout_ms >= 1,
        "engine.idle_flow_timeout_ms",
        "must be at least 1",
    )?;
    check(e.max_flows >= 1, "engine.max_flows", "must be at least 1")?;
    check(
        e.flow_budget_bytes >= 1,
        "engine.flow_budget_bytes",
        "must be at least 1",
    )?;
    check(
        e.total_budget_bytes >= u64::from(e.flow_budget_bytes),
        "engine.total_budget_bytes",
        "must be at least engine.flow_budget_bytes",
    )?;
    check(
        e.reorder_max_segments >= 1,
        "engine.reorder_max_segments",
        "must be at least 1",
    )?;
    check(
        (1..=65_536).contains(&e.h2_max_streams),
        "engine.h2_max_streams",
        "must be 1-65536",
    )?;
    check(
        (1024..=e.flow_budget_bytes.max(1024)).contains(&e.h2_max_header_block_bytes),
        "engine.h2_max_header_block_bytes",
        "must be 1024 to engine.flow_budget_bytes",
    )?;
    check(
        (4096..=1 << 20).contains(&e.h2_max_table_bytes),
        "engine.h2_max_table_bytes",
        "must be 4096-1048576",
    )?;
    check(
        e.series_budget >= 1,
        "engine.series_budget",
        "must be at least 1",
    )?;
    let s = &c.store;
    check(
        (10..=3_600_000).contains(&s.flush_interval_ms),
        "store.flush_interval_ms",
        "must be 10-3600000",
    )?;
    check(
        s.max_pending >= 1,
        "store.max_pending",
        "must be at least 1",
    )?;
    check(
        s.retry_initial_ms >= 1,
        "store.retry_initial_ms",
        "must be at least 1",
    )?;
    check(
        s.retry_max_ms >= s.retry_initial_ms,
        "store.retry_max_ms",
        "must be at least store.retry_initial_ms",
    )?;
    check(
        (1..=3650).contains(&s.daily_retention_days),
        "store.daily_retention_days",
        "must be 1-3650",
    )?;
    check(
        (1..=365).contains(&s.hourly_retention_days),
        "store.hourly_retention_days",
        "must be 1-365",
    )?;
    if s.tls_config.is_set() {
        let rediss = c
            .redis_url
            .as_deref()
            .is_some_and(|u| u.starts_with("rediss://"));
        check(
            rediss,
            "store.tls_config",
            "applies to a rediss:// redis_url only",
        )?;
        s.tls_config
            .validate()
            .map_err(|e| invalid("store.tls_config", e.to_string()))?;
    }
    Ok(())
}

/// `[alerts]` is validated by the alert module; its error carries the key.
fn alerts(c: &Config) -> Result<(), Invalid> {
    c.alerts.validate().map_err(|e| match e {
        crate::alert::AlertError::Invalid { key, why } => invalid(key, why),
        other => invalid("alerts", other.to_string()),
    })
}

/// `[request_log]` is validated by the reqlog module (its keys say `log.`; here the table is
/// `request_log`, and `path` comes from the top-level `log`).
fn request_log(c: &Config) -> Result<(), Invalid> {
    c.request_log.validate().map_err(|e| match e {
        crate::reqlog::ReqlogError::Invalid { key, why } => {
            invalid(key.replacen("log.", "request_log.", 1), why)
        }
        other => invalid("request_log", other.to_string()),
    })
}

fn health(c: &Config) -> Result<(), Invalid> {
    let h = &c.health;
    let all = [
        ("disk_free_warning_percent", h.disk_free_warning_percent),
        ("disk_free_critical_percent", h.disk_free_critical_percent),
        ("memory_used_warning_percent", h.memory_used_warning_percent),
        (
            "memory_used_critical_percent",
            h.memory_used_critical_percent,
        ),
    ];
    for (name, v) in all {
        check(
            (0.0..=100.0).contains(&v),
            format!("health.{name}"),
            "a percentage is 0-100",
        )?;
    }
    check(
        h.disk_free_critical_percent <= h.disk_free_warning_percent,
        "health.disk_free_critical_percent",
        "critical free space must not exceed the warning level",
    )?;
    check(
        h.memory_used_warning_percent <= h.memory_used_critical_percent,
        "health.memory_used_critical_percent",
        "critical memory use must not be below the warning level",
    )
}
