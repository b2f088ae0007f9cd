//! The HTTP transaction engine: segments in, [`Transaction`]s out.
//!
//! One [`Engine`] owns the flow table (keyed by the oriented client/server 4-tuple), per-direction
//! TCP reassembly and the protocol of each flow (HTTP/1.x framing and FIFO pairing, or HTTP/2
//! frames and HPACK with pairing by stream id). It is single-threaded and synchronous; the
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
//! Loss is detected from sequence numbers: a hole is given up on when the reorder bounds (bytes
//! ahead, segments held, the flow budget) overflow, after `gap_timeout_ns`, at the end of the
//! flow, or when the peer acknowledged the missing bytes and the reorder window passed without
//! them. An ACK ahead of the data is evidence, not proof (mirror ports, `tcpdump -i any` and the
//! kernel ring reorder the two directions): the segment carrying it waits, and the bytes count
//! as lost only after `reorder_window_packets` segments of the flow and `reorder_window_ns`
//! went by (`flow::order`). The client's ACKs also pair responses across gaps (`http`).
//! Payload bytes the capture saw but did not copy are fine inside a body: Content-Length bodies
//! are skipped by length, and a chunked body whose chunk framing was not copied is read on to
//! the next start line or the end of the connection (its record then has no body size). Inside
//! a head they are a gap. Late copies of a connection that just ended are retransmissions
//! (`flow::closed`).
//!
//! [`ErrorType::Timeout`]: crate::ErrorType::Timeout
//! [`ErrorType::ConnectionReset`]: crate::ErrorType::ConnectionReset
//! [`ErrorType::ConnectionClosed`]: crate::ErrorType::ConnectionClosed
//! [`ErrorType::CaptureGap`]: crate::ErrorType::CaptureGap

use std::collections::HashMap;

use crate::flow::closed::RecentlyClosed;
use crate::flow::names::Names;
use crate::flow::order::ReorderWindow;
use crate::flow::protocol::{self, Protocol};
use crate::flow::reassembly::ReassemblyStats;
use crate::flow::spare_meta::SpareMetas;
pub use crate::flow::stats::FlowStats;
use crate::flow::table::{FlowKey, FlowTable};
use crate::flow::{self, Flow, FlowLimits};
use crate::http::SpareConns;
pub use crate::http::{HeadLimits, HttpStats, ParseErrorReason};
pub use crate::http2::{H2Config, H2Stats};
pub use crate::identity::IdentityConfig;
use crate::server::{PortNames, ResolveServer, Skip};
use crate::spares::Spares;
use crate::{ErrorType, Records, Segment};

const SECOND_NS: u64 = 1_000_000_000;
/// A flow quiet this long gives back its queue and buffer capacity at the next sweep (a
/// keep-alive connection between bursts holds its table slot and parser state only).
const RELEASE_IDLE_NS: u64 = SECOND_NS;

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
    /// HTTP/1.x head limits (100 header lines, 16 KiB); past them a message is malformed.
    pub head: HeadLimits,
    /// HTTP/2 limits: streams per connection, header block size, HPACK table size.
    pub h2: H2Config,
    /// How far ahead of the next expected byte (sequence space, per direction) a segment may
    /// wait for the bytes before it; a segment further ahead ends the wait and the bytes
    /// before it count as lost. Default 16 MiB: as wide as the receive windows TCP stacks
    /// advertise by default, because reordering is bounded by the window, not by a segment
    /// count (on lo a sender moving between CPUs reorders 64 KiB segments by more than
    /// 256 KiB). What waits is bounded by `flow_budget_bytes` and `reorder_max_segments`.
    pub reorder_window_bytes: u32,
    /// Acknowledged bytes not seen yet are evidence of loss, not proof: they are declared lost
    /// only once this many segments of the flow went by without them ... Default 32.
    pub reorder_window_packets: u32,
    /// ... and this much packet time (or `gap_timeout_ns`, whatever the count). Default 10 ms.
    pub reorder_window_ns: u64,
    /// Segments one direction may hold out of order, or park behind the bytes they
    /// acknowledge; past it the engine stops waiting (counted). Default 128.
    pub reorder_max_segments: usize,
    /// How long out-of-order data waits for the missing bytes before they count as lost.
    /// Default 2 s (longer than the usual TCP retransmission timeout).
    pub gap_timeout_ns: u64,
    /// Minimum time between two timeout sweeps of `advance`. Default 100 ms.
    pub sweep_interval_ns: u64,
    /// Client id header, X-Forwarded-For trust, redacted query keys.
    pub identity: IdentityConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            request_timeout_ns: 30 * SECOND_NS,
            idle_timeout_ns: 300 * SECOND_NS,
            flow_budget_bytes: 256 * 1024,
            total_budget_bytes: 64 * 1024 * 1024,
            max_flows: 65_536,
            head: HeadLimits::default(),
            h2: H2Config::default(),
            reorder_window_bytes: 16 * 1024 * 1024,
            reorder_window_packets: 32,
            reorder_window_ns: SECOND_NS / 100,
            reorder_max_segments: 128,
            gap_timeout_ns: 2 * SECOND_NS,
            sweep_interval_ns: SECOND_NS / 10,
            identity: IdentityConfig::default(),
        }
    }
}

impl EngineConfig {
    fn flow_limits(&self) -> FlowLimits {
        FlowLimits {
            reorder_window_bytes: self.reorder_window_bytes,
            flow_budget_bytes: self.flow_budget_bytes,
            reorder: ReorderWindow {
                packets: self.reorder_window_packets,
                ns: self.reorder_window_ns,
                max_ns: self.gap_timeout_ns,
                max_segments: self.reorder_max_segments.max(1),
            },
        }
    }
}

/// Cumulative counters, one set per layer (each layer counts what it sees; see
/// `pipeline::self_metrics` for how they are summed into the exported figures).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub flows: FlowStats,
    pub reassembly: ReassemblyStats,
    pub http: HttpStats,
    pub h2: H2Stats,
}

impl EngineStats {
    /// Times bytes of a stream were lost: reassembly giving up on missing bytes, plus bytes
    /// not copied where a message start or head needed them.
    pub fn gaps(&self) -> u64 {
        self.reassembly.gaps + self.http.uncopied_head_gaps
    }

    /// Transactions produced, all protocols.
    pub fn transactions(&self) -> u64 {
        self.http.transactions + self.h2.streams
    }
}

/// The context a flow call needs: the settings, the layers' counters and the output.
fn flow_ctx<'a>(
    cfg: &'a EngineConfig,
    stats: &'a mut EngineStats,
    out: &'a mut Records,
    kept: &'a mut Kept,
) -> flow::Ctx<'a> {
    flow::Ctx {
        limits: cfg.flow_limits(),
        reassembly: &mut stats.reassembly,
        protocol: protocol::Ctx {
            head: &cfg.head,
            h2: &cfg.h2,
            identity: &cfg.identity,
            http: &mut stats.http,
            h2_stats: &mut stats.h2,
            out,
            spares: &mut kept.records,
            conns: &mut kept.conns,
        },
    }
}

/// Refreshes the buffered-bytes gauge after `flow` changed.
fn account(flow: &mut Flow, st: &mut FlowStats) {
    let now = flow.buffered_now();
    st.buffered_bytes = (st.buffered_bytes + now as u64).saturating_sub(flow.buffered as u64);
    flow.buffered = now;
}

/// Flow table, reassembly and HTTP pairing (see the module documentation).
pub struct Engine {
    cfg: EngineConfig,
    stats: EngineStats,
    flows: FlowTable<Flow>,
    next_sweep_ns: u64,
    /// The flow indices a sweep walks (kept: a sweep does not allocate).
    walk: Vec<u32>,
    names: Names,
    /// Connections that just ended, so late copies of their segments open no flow.
    closed: RecentlyClosed,
    resolver: Box<dyn ResolveServer>,
    kept: Kept,
}

/// What finished work leaves for new work to start from.
#[derive(Default)]
struct Kept {
    /// Finished records handed back by the pipeline ([`Engine::recycle`]).
    records: Spares,
    /// HTTP/1.x states of flows that ended, for new flows.
    conns: SpareConns,
    /// Metas of flows that ended, for new flows.
    metas: SpareMetas,
}

impl Engine {
    /// An engine naming servers `port-N` (see [`Engine::set_resolver`]).
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine {
            cfg,
            stats: EngineStats::default(),
            flows: FlowTable::default(),
            next_sweep_ns: 0,
            walk: Vec::new(),
            names: Names::new(),
            closed: RecentlyClosed::default(),
            resolver: Box::new(PortNames::default()),
            kept: Kept::default(),
        }
    }

    /// Who serves at an address: asked once when a flow opens. Flows already open keep the
    /// server they were resolved to.
    pub fn set_resolver(&mut self, resolver: Box<dyn ResolveServer>) {
        self.resolver = resolver;
    }

    /// The configuration in use.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Takes back finished records (emptying `done`) for later requests to start from: a
    /// field they share with the request keeps its `Arc`, so no reference count is written
    /// (see [`crate::spares`]). Only records nobody reads any more belong here.
    pub fn recycle(&mut self, done: &mut Records) {
        self.kept.records.give_back(done);
    }

    /// Feed one segment; completed transactions are pushed to `out` in completion order.
    pub fn ingest(&mut self, seg: &Segment<'_>, out: &mut Records) {
        self.stats.flows.segments += 1;
        let key = FlowKey::new(seg.client, seg.server);
        let idx = match self.flows.find(&key) {
            Some(idx) => {
                let Some(flow) = self.flows.get_mut(idx) else {
                    return;
                };
                if flow.ifindex != seg.ifindex {
                    // The same segment seen again on another interface of its path (the other
                    // veth of a bridge, the bridge itself): the flow is read where it was
                    // first seen (a reused 4-tuple takes the same path, so its SYN comes there
                    // first too).
                    self.stats.flows.duplicate_segments += 1;
                    return;
                } else if flow.is_new_connection(seg) {
                    self.evict(idx, ErrorType::ConnectionClosed, out);
                    self.stats.flows.closed += 1;
                    match self.open_flow(key, seg, out) {
                        Some(idx) => idx,
                        None => return,
                    }
                } else {
                    self.flows.touch(idx);
                    idx
                }
            }
            None => {
                // A bare ACK, FIN or RST of a connection we do not track carries nothing.
                if seg.payload_len == 0 && !seg.flags.syn() {
                    return;
                }
                // A late copy of a connection that just ended: a retransmission, or the same
                // segment seen on a second interface of its path.
                let (linger, window) = (self.cfg.gap_timeout_ns, self.cfg.reorder_window_bytes);
                if let Some(read_on) = self.closed.absorbs(&key, seg, linger, window) {
                    if read_on == seg.ifindex {
                        self.stats.reassembly.retransmit_bytes += u64::from(seg.payload_len);
                    } else {
                        self.stats.flows.duplicate_segments += 1;
                    }
                    return;
                }
                match self.open_flow(key, seg, out) {
                    Some(idx) => idx,
                    None => return,
                }
            }
        };
        let st = &mut self.stats.flows;
        st.payload_bytes += u64::from(seg.payload_len);
        st.uncopied_bytes += u64::from(seg.uncopied_len());
        let Some(flow) = self.flows.get_mut(idx) else {
            return;
        };
        flow.ingest(
            seg,
            &mut flow_ctx(&self.cfg, &mut self.stats, out, &mut self.kept),
        );
        let closed = flow.is_closed().then(|| flow.stream_ends());
        account(flow, &mut self.stats.flows);
        if let Some(ends) = closed {
            self.closed.remember(key, ends, seg.ts_ns, seg.ifindex);
            self.drop_flow(idx);
            self.stats.flows.closed += 1;
        }
        self.enforce_total_budget(out);
    }

    /// Opens a flow for `key`, unless its server is excluded or not on this host (counted).
    fn open_flow(&mut self, key: FlowKey, seg: &Segment<'_>, out: &mut Records) -> Option<u32> {
        let (client, server) = (seg.client, seg.server);
        let taken = self
            .kept
            .metas
            .take(client, server, &mut *self.resolver, &mut self.names);
        let meta = match taken {
            Ok(meta) => meta,
            Err(Skip::Excluded) => {
                self.stats.flows.segments_excluded += 1;
                return None;
            }
            Err(Skip::NotLocal) => {
                self.stats.flows.segments_not_local += 1;
                return None;
            }
        };
        while self.flows.len() >= self.cfg.max_flows.max(1) {
            let Some(oldest) = self.flows.oldest() else {
                break;
            };
            self.evict(oldest, ErrorType::CaptureGap, out);
            self.stats.flows.evicted_budget += 1;
        }
        self.stats.flows.opened += 1;
        let idx = self.flows.insert(
            key,
            Flow::new(meta, seg.flags.syn(), seg.ts_ns, seg.ifindex),
        );
        self.stats.flows.tracked = self.flows.len() as u64;
        Some(idx)
    }

    fn drop_flow(&mut self, idx: u32) {
        let st = &mut self.stats.flows;
        let kept = &mut self.kept;
        self.flows.remove_with(idx, |flow| {
            st.buffered_bytes = st.buffered_bytes.saturating_sub(flow.buffered as u64);
            if let Protocol::Http1(conn) = std::mem::replace(&mut flow.protocol, Protocol::Opaque) {
                kept.conns.keep(conn);
            }
            if let Some(meta) = flow.take_meta() {
                kept.metas.keep(meta);
            }
        });
        st.tracked = self.flows.len() as u64;
    }

    fn evict(&mut self, idx: u32, error: ErrorType, out: &mut Records) {
        if let Some(flow) = self.flows.get_mut(idx) {
            flow.terminate(
                error,
                &mut flow_ctx(&self.cfg, &mut self.stats, out, &mut self.kept),
            );
        }
        self.drop_flow(idx);
    }

    fn enforce_total_budget(&mut self, out: &mut Records) {
        while self.stats.flows.buffered_bytes > self.cfg.total_budget_bytes as u64 {
            let Some(oldest) = self.flows.oldest() else {
                break;
            };
            self.evict(oldest, ErrorType::CaptureGap, out);
            self.stats.flows.evicted_budget += 1;
        }
    }

    /// Advance time (timeouts, idle eviction). Call on a tick and with each segment's time.
    /// Timeouts are swept at most every `sweep_interval_ns`, so a record may come that much
    /// after its deadline.
    pub fn advance(&mut self, now_ns: u64, out: &mut Records) {
        if now_ns < self.next_sweep_ns {
            return;
        }
        self.next_sweep_ns = now_ns.saturating_add(self.cfg.sweep_interval_ns);
        // Idle flows sit at the old end of the LRU list.
        while let Some(oldest) = self.flows.oldest() {
            let idle = self
                .flows
                .get_mut(oldest)
                .is_some_and(|f| now_ns.saturating_sub(f.last_seen_ns) >= self.cfg.idle_timeout_ns);
            if !idle {
                break;
            }
            self.evict(oldest, ErrorType::Timeout, out);
            self.stats.flows.evicted_idle += 1;
        }
        let mut walk = std::mem::take(&mut self.walk);
        self.flows.indices_into(&mut walk);
        let mut heap = 0;
        for &idx in &walk {
            let Some(flow) = self.flows.get_mut(idx) else {
                continue;
            };
            if now_ns.saturating_sub(flow.last_seen_ns) >= RELEASE_IDLE_NS {
                flow.release();
            }
            heap += flow.heap_bytes();
            let mut cx = flow_ctx(&self.cfg, &mut self.stats, out, &mut self.kept);
            flow.expire_gaps(now_ns, self.cfg.gap_timeout_ns, &mut cx);
            flow.expire_requests(now_ns, self.cfg.request_timeout_ns, &mut cx);
            account(flow, &mut self.stats.flows);
        }
        self.walk = walk;
        let kept =
            self.kept.conns.heap_bytes() + self.kept.metas.heap_bytes() + self.closed.heap_bytes();
        self.stats.flows.memory_bytes = (self.flows.table_bytes() + heap + kept) as u64;
    }

    /// End of input (replay EOF or shutdown): held out-of-order data is forced through (the
    /// missing bytes count as gaps), every request still pending becomes a record with
    /// `connection_closed` (a close-delimited response in progress completes normally), and
    /// the flow table is emptied.
    pub fn finish(&mut self, out: &mut Records) {
        for idx in self.flows.indices() {
            self.evict(idx, ErrorType::ConnectionClosed, out);
        }
    }

    /// Cumulative counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Open connections per (namespace, service) (feeds `api_active_connections`), sorted.
    /// Flows found not to speak HTTP are left out.
    pub fn active_connections(&self) -> Vec<(String, String, u64)> {
        let mut counts: HashMap<(&str, &str), u64> = HashMap::new();
        for flow in self.flows.values().filter(|f| !f.protocol.is_opaque()) {
            let ns = flow
                .meta()
                .attribution
                .as_deref()
                .map_or("", |a| &a.namespace);
            *counts.entry((ns, &flow.meta().service)).or_default() += 1;
        }
        let mut v: Vec<(String, String, u64)> = counts
            .into_iter()
            .map(|((ns, svc), n)| (ns.to_owned(), svc.to_owned(), n))
            .collect();
        v.sort();
        v
    }
}
