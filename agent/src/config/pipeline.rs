//! The agent configuration translated into the settings of agent-core's pipeline, shared by
//! `apitap run` and `apitap replay` so both analyse traffic the same way.

use anyhow::{Context, Result};

use agent_core::aggregate::AggregateConfig;
use agent_core::engine::{EngineConfig, H2Config, IdentityConfig};
use agent_core::pipeline::PipelineConfig;
use agent_core::route::RouteConfig;

use super::Config;

impl Config {
    /// The pipeline settings of the config file (engine, identity, routes, aggregation).
    pub fn pipeline_config(&self) -> Result<PipelineConfig> {
        let cfg = self;
        let openapi_text = match &cfg.routes.openapi {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read OpenAPI file {}", path.display()))?,
            ),
            None => None,
        };
        Ok(PipelineConfig {
            engine: cfg.engine_config(),
            routes: RouteConfig {
                patterns: cfg.routes.patterns.clone(),
                openapi: cfg.routes.openapi.as_ref().map(|p| p.display().to_string()),
                max_distinct_segment_values: cfg.routes.max_distinct_values as usize,
                ..RouteConfig::default()
            },
            openapi_text,
            aggregate: AggregateConfig {
                series_budget: cfg.engine.series_budget as usize,
                top_clients: cfg.clients.top_k as usize,
                ..AggregateConfig::default()
            },
        })
    }

    /// The engine settings the config file can change; the rest keep the engine's defaults.
    pub fn engine_config(&self) -> EngineConfig {
        let cfg = self;
        const MS: u64 = 1_000_000;
        EngineConfig {
            request_timeout_ns: cfg.engine.request_timeout_ms.saturating_mul(MS),
            idle_timeout_ns: cfg.engine.idle_flow_timeout_ms.saturating_mul(MS),
            max_flows: cfg.engine.max_flows as usize,
            flow_budget_bytes: cfg.engine.flow_budget_bytes as usize,
            total_budget_bytes: cfg.engine.total_budget_bytes as usize,
            reorder_window_packets: cfg.engine.reorder_window_packets,
            reorder_window_ns: cfg.engine.reorder_window_ms.saturating_mul(MS),
            reorder_max_segments: cfg.engine.reorder_max_segments as usize,
            h2: H2Config {
                max_streams: cfg.engine.h2_max_streams as usize,
                max_header_block_bytes: cfg.engine.h2_max_header_block_bytes as usize,
                max_table_bytes: cfg.engine.h2_max_table_bytes as usize,
            },
            identity: IdentityConfig {
                client_id_header: cfg.clients.header.clone(),
                // Validated once by `config::validate`; an entry that does not parse is skipped.
                trusted_proxies: cfg
                    .clients
                    .trusted_proxies
                    .iter()
                    .filter_map(|c| c.parse().ok())
                    .collect(),
                redact_keys: cfg.redact.query_keys.clone(),
            },
            ..EngineConfig::default()
        }
    }
}
