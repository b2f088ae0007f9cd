//! The HTTP transaction engine: segments in, [`Transaction`]s out.
//!
//! One [`Engine`] owns the flow table (keyed by the oriented client/server 4-tuple), per-direction
//! TCP reassembly and HTTP/1.x framing and pairing. It is single-threaded and synchronous; the
//! caller feeds segments with [`Engine::ingest`], moves time with [`Engine::advance`] and
//! flushes with [`Engine::finish`].
//!
//! What ends a transaction that never got a complete response:
//! - [`ErrorType::Timeout`]: no response head within `request_timeout_ns` of the first request
//!   byte (checked by `advance`, at most every `sweep_interval_ns`), or a flow evicted idle.
//! - [`ErrorType::ConnectionReset`]: a RST in either direction.
//! - [`ErrorType::ConnectionClosed`]: the server's FIN before the response completed, and every
//!   request still pending at [`Engine::finish`] (end of a capture file or shutdown).
//! - [`ErrorType::CaptureGap`]: bytes of the message were lost (or, inside a head, not copied),
//!   or the flow was evicted to respect the memory budget.
//!
//! [`ErrorType::Timeout`]: crate::ErrorType::Timeout
//! [`ErrorType::ConnectionReset`]: crate::ErrorType::ConnectionReset
//! [`ErrorType::ConnectionClosed`]: crate::ErrorType::ConnectionClosed
//! [`ErrorType::CaptureGap`]: crate::ErrorType::CaptureGap

use std::collections::HashMap;

pub use crate::flow::stats::{EngineStats, ParseErrorReason};
pub use crate::identity::IdentityConfig;
use crate::{Segment, Transaction};

const SECOND_NS: u64 = 1_000_000_000;

/// Engine limits and identity settings; `Default` gives the documented values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// No response head this long after the first request byte: `timeout`. Default 30 s.
    pub request_timeout_ns: u64,
    /// A flow with no segment for this long is evicted. Default 300 s.
    pub idle_timeout_ns: u64,
    /// Bytes buffered per flow (both directions: out-of-order data and partial heads); beyond
    /// it the engine stops waiting for missing bytes (counted as a gap). Default 256 KiB.
    pub flow_budget_bytes: usize,
    /// Bytes buffered across all flows; beyond it least recently used flows are evicted.
    /// Default 64 MiB.
    pub total_budget_bytes: usize,
    /// Flows tracked at once; beyond it the least recently used flow is evicted. Default 65536.
    pub max_flows: usize,
    /// Header lines per message; more is malformed. Default 100.
    pub max_headers: usize,
    /// Bytes of a message head (start line + headers); more is malformed. Default 16 KiB.
    pub max_head_bytes: usize,
    /// How far ahead of the next expected byte a segment may be buffered, per direction.
    /// Default 256 KiB.
    pub reorder_window_bytes: u32,
    /// How long out-of-order data waits for the missing bytes before they count as lost.
    /// Default 2 s (longer than the usual TCP retransmission timeout).
    pub gap_timeout_ns: u64,
    /// Minimum time between two timeout sweeps of `advance`. Default 100 ms.
    pub sweep_interval_ns: u64,
    /// Client id header, X-Forwarded-For trust, redacted query keys.
    pub identity: IdentityConfig,
    /// Server port -> service name; unlisted ports are `port-<N>`.
    pub service_names: HashMap<u16, String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            request_timeout_ns: 30 * SECOND_NS,
            idle_timeout_ns: 300 * SECOND_NS,
            flow_budget_bytes: 256 * 1024,
            total_budget_bytes: 64 * 1024 * 1024,
            max_flows: 65_536,
            max_headers: 100,
            max_head_bytes: 16 * 1024,
            reorder_window_bytes: 256 * 1024,
            gap_timeout_ns: 2 * SECOND_NS,
            sweep_interval_ns: SECOND_NS / 10,
            identity: IdentityConfig::default(),
            service_names: HashMap::new(),
        }
    }
}

impl EngineConfig {
    /// The service name of a server port.
    pub fn service_name(&self, port: u16) -> String {
        match self.service_names.get(&port) {
            Some(name) => name.clone(),
            None => format!("port-{port}"),
        }
    }
}

/// Flow table, reassembly and HTTP pairing (see the module documentation).
pub struct Engine {
    cfg: EngineConfig,
    stats: EngineStats,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine { cfg, stats: EngineStats::default() }
    }

    /// The configuration in use.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Feed one segment; completed transactions are pushed to `out` in completion order.
    pub fn ingest(&mut self, seg: &Segment<'_>, out: &mut Vec<Transaction>) {
        let _ = (seg, out);
        // Work in progress: the flow table is being wired in.
    }

    /// Advance time (timeouts, idle eviction). Call on a tick and with each segment's time.
    pub fn advance(&mut self, now_ns: u64, out: &mut Vec<Transaction>) {
        let _ = (now_ns, out);
    }

    /// End of input (replay EOF or shutdown): every request still pending becomes a record with
    /// `connection_closed`, and the flow table is emptied.
    pub fn finish(&mut self, out: &mut Vec<Transaction>) {
        let _ = out;
    }

    /// Cumulative counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Open connections per service (feeds `api_active_connections`), sorted by service.
    pub fn active_connections(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
}
