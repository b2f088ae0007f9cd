//! The agent's configuration: one serde struct with documented defaults, built from the TOML
//! file, the environment and the flags (flag > environment > file > default), validated once.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cli::RunArgs;

/// Resolved configuration of `apitap run`.
#[derive(Debug, Clone, Deserialize)]
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
    /// Embedded store and generated token.
    pub data_dir: PathBuf,
    /// Bearer token for /api/*.
    pub api_token: Option<String>,
    /// Payload bytes copied per segment.
    pub snap_len: u32,
    /// Ring buffer bytes (power of two).
    pub ring_bytes: u32,
    /// "text" or "json".
    pub log_format: String,
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
            log_format: "text".into(),
        }
    }
}

impl Config {
    /// Builds the configuration of `apitap run` from its flags (which clap already merged with
    /// the environment) and the optional config file.
    pub fn from_run_args(args: &RunArgs) -> Result<Config> {
        let mut cfg = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<Config>(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?
            }
            None => Config::default(),
        };
        if !args.interfaces.is_empty() {
            cfg.interfaces = args.interfaces.clone();
        }
        if !args.ports.is_empty() {
            cfg.ports = args.ports.clone();
        }
        if let Some(v) = args.listen {
            cfg.listen = v;
        }
        if let Some(v) = &args.log {
            cfg.log = Some(v.clone());
        }
        if let Some(v) = &args.redis_url {
            cfg.redis_url = Some(v.clone());
        }
        if let Some(v) = &args.data_dir {
            cfg.data_dir = v.clone();
        }
        if let Some(v) = &args.api_token {
            cfg.api_token = Some(v.clone());
        }
        if let Some(v) = args.snap_len {
            cfg.snap_len = v;
        }
        if let Some(v) = args.ring_bytes {
            cfg.ring_bytes = v;
        }
        if let Some(v) = &args.log_format {
            cfg.log_format = v.clone();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values once, with one clear message per problem.
    pub fn validate(&self) -> Result<()> {
        if self.ports.contains(&0) {
            bail!("invalid port 0: server ports are 1-65535");
        }
        if self.snap_len == 0 || self.snap_len > agent_common::MAX_SNAP_LEN {
            bail!(
                "invalid snap length {}: must be 1-{}",
                self.snap_len,
                agent_common::MAX_SNAP_LEN
            );
        }
        if !self.ring_bytes.is_power_of_two() || self.ring_bytes < 4096 {
            bail!(
                "invalid ring buffer size {}: must be a power of two of at least 4096",
                self.ring_bytes
            );
        }
        if self.log_format != "text" && self.log_format != "json" {
            bail!("invalid log format {:?}: expected text or json", self.log_format);
        }
        Ok(())
    }
}
