//! The agent's configuration: one serde struct with documented defaults, built from the TOML
//! file, the environment and the flags (flag > environment > file > default), validated once.
//!
//! Every problem is reported on one line. A problem in the file names the file and the line
//! (`/etc/apitap.toml:12: store.flush_interval_ms: must be 10-3600000`); a problem in a flag or
//! environment value names the flag.

mod locate;
mod pipeline;
mod sections;
mod validate;

pub use sections::{
    ClientsConfig, EngineConfig, HealthConfig, RedactConfig, RoutesConfig, StoreConfig,
};
pub use validate::Invalid;

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::alert::AlertConfig;
use crate::cli::RunArgs;
use crate::discovery::{DiscoveryConfig, ServiceRule};
use crate::kube::KubeConfig;
use crate::reqlog::LogConfig;

/// Resolved configuration of `apitap run`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Interfaces to attach to; empty means every interface that is up, and new ones.
    pub interfaces: Vec<String>,
    /// Server ports; empty means discover listening ports and follow changes.
    pub ports: Vec<u16>,
    /// Metrics, health and API endpoint.
    pub listen: SocketAddr,
    /// Per-request JSON lines: a path, or "-" for stdout; None is off.
    pub log: Option<String>,
    /// Shared usage store; None uses the embedded store.
    pub redis_url: Option<String>,
    /// Embedded store, learned routes and generated token.
    pub data_dir: PathBuf,
    /// Bearer token for /api/*; None generates one in `data_dir`.
    pub api_token: Option<String>,
    /// Payload bytes copied per segment.
    pub snap_len: u32,
    /// Ring buffer bytes (power of two).
    pub ring_bytes: u32,
    /// Time responses with the departure time their sender's TCP stack set, where the kernel
    /// offers it (5.18+), instead of a clock read per record.
    pub stack_stamps: bool,
    /// "text" or "json".
    pub log_format: String,
    /// The agent's log filter: error, warn, info, debug, trace, or tracing directives
    /// (`info,apitap::capture=debug`). None: RUST_LOG, else info.
    pub log_level: Option<String>,
    /// How the classifiers attach: auto (TCX links where the kernel has them), tcx, netlink.
    pub attach_mode: crate::capture::attach::AttachPolicy,
    pub routes: RoutesConfig,
    pub clients: ClientsConfig,
    pub redact: RedactConfig,
    pub engine: EngineConfig,
    pub store: StoreConfig,
    /// `[alerts]`, owned by the alert module (thresholds, overrides, notifiers).
    pub alerts: AlertConfig,
    pub health: HealthConfig,
    /// `[request_log]`: rotation, sampling and queue of the per-request log (`log` is its path).
    pub request_log: LogConfig,
    /// `[discovery]`: host paths and interval of the server scan.
    pub discovery: DiscoveryConfig,
    /// `[[services]]`: rename or exclude servers by namespace, workload, process or port.
    pub services: Vec<ServiceRule>,
    /// `[kubernetes]`: workload names from the API when the agent runs in a cluster.
    pub kubernetes: KubeConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interfaces: Vec::new(),
            ports: Vec::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            log: None,
            redis_url: None,
            data_dir: PathBuf::from("/var/lib/apitap"),
            api_token: None,
            snap_len: agent_common::DEFAULT_SNAP_LEN,
            ring_bytes: agent_common::DEFAULT_RING_BYTES,
            stack_stamps: true,
            log_format: "text".into(),
            log_level: None,
            attach_mode: crate::capture::attach::AttachPolicy::Auto,
            routes: RoutesConfig::default(),
            clients: ClientsConfig::default(),
            redact: RedactConfig::default(),
            engine: EngineConfig::default(),
            store: StoreConfig::default(),
            alerts: AlertConfig::default(),
            health: HealthConfig::default(),
            request_log: LogConfig::default(),
            discovery: DiscoveryConfig::default(),
            services: Vec::new(),
            kubernetes: KubeConfig::default(),
        }
    }
}

/// Why the configuration was refused; `Display` is the one line shown to the user.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    /// Syntax, type or unknown-key error, or an invalid value written in the file.
    #[error("{path}:{line}: {message}", path = .path.display())]
    File {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A problem the file does not locate (no span).
    #[error("{path}: {message}", path = .path.display())]
    FileNoLine { path: PathBuf, message: String },
    /// An invalid value given by a flag or its environment variable.
    #[error("{source_name}: {message}")]
    Flag {
        source_name: String,
        message: String,
    },
}

impl Config {
    /// Builds the configuration of `apitap run` from its flags (which clap already merged with
    /// the environment) and the optional config file.
    pub fn from_run_args(args: &RunArgs) -> Result<Config, ConfigError> {
        let mut cfg = match &args.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        cfg.apply_flags(args);
        cfg.validate().map_err(|inv| ConfigError::Flag {
            source_name: validate::flag_of(&inv.key),
            message: inv.to_string(),
        })?;
        Ok(cfg)
    }

    /// Reads, parses and validates a config file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Config::from_toml(path, &text)
    }

    /// Parses and validates the text of a config file; `path` names it in errors.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let cfg = toml::from_str::<Config>(text).map_err(|e| {
            let message = e.message().replace('\n', " ");
            match e.span() {
                Some(span) => ConfigError::File {
                    path: path.to_path_buf(),
                    line: locate::line_of(text, span.start),
                    message,
                },
                None => ConfigError::FileNoLine {
                    path: path.to_path_buf(),
                    message,
                },
            }
        })?;
        cfg.validate()
            .map_err(|inv| match locate::key_line(text, &inv.key) {
                Some(line) => ConfigError::File {
                    path: path.to_path_buf(),
                    line,
                    message: inv.to_string(),
                },
                None => ConfigError::FileNoLine {
                    path: path.to_path_buf(),
                    message: inv.to_string(),
                },
            })?;
        Ok(cfg)
    }

    /// Flags (and their environment variables) win over the file.
    fn apply_flags(&mut self, args: &RunArgs) {
        if !args.interfaces.is_empty() {
            self.interfaces = args.interfaces.clone();
        }
        if !args.ports.is_empty() {
            self.ports = args.ports.clone();
        }
        if let Some(v) = args.listen {
            self.listen = v;
        }
        let strings = [
            (&args.log, &mut self.log),
            (&args.redis_url, &mut self.redis_url),
            (&args.api_token, &mut self.api_token),
            (&args.alert_webhook, &mut self.alerts.webhook),
            (&args.log_level, &mut self.log_level),
            (&args.alertmanager_url, &mut self.alerts.alertmanager_url),
        ];
        for (flag, slot) in strings {
            if let Some(v) = flag {
                *slot = Some(v.clone());
            }
        }
        if let Some(v) = &args.data_dir {
            self.data_dir = v.clone();
        }
        if let Some(v) = args.snap_len {
            self.snap_len = v;
        }
        if let Some(v) = args.ring_bytes {
            self.ring_bytes = v;
        }
        if let Some(v) = args.stack_stamps {
            self.stack_stamps = v;
        }
        if let Some(v) = &args.log_format {
            self.log_format = v.clone();
        }
        if let Some(v) = args.attach_mode {
            self.attach_mode = v;
        }
    }

    /// Checks values once; the first problem is returned with the key it concerns.
    pub fn validate(&self) -> Result<(), Invalid> {
        validate::config(self)
    }
}

impl StoreConfig {
    /// The store's tuning from this section.
    pub fn options(&self) -> crate::store::StoreOptions {
        use std::time::Duration;
        crate::store::StoreOptions {
            flush_interval: Duration::from_millis(self.flush_interval_ms),
            max_pending: self.max_pending as usize,
            retry_initial: Duration::from_millis(self.retry_initial_ms),
            retry_max: Duration::from_millis(self.retry_max_ms),
            daily_retention_days: self.daily_retention_days,
            hourly_retention_days: self.hourly_retention_days,
            tls: self.tls_config.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
