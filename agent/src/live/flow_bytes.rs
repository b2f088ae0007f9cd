//! Capture accounting independent of HTTP: the TCP payload bytes of watched flows per
//! direction, each sequence range counted once, so a segment captured twice (a retransmit, or
//! one packet seen on two interfaces) is not counted twice. The end-to-end tests compare these
//! sums with what nginx logged receiving and sending.

use agent_core::export::{MetricKind, SelfMetric};
use agent_core::segment::{Direction, Segment};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Flows idle this long are forgotten.
const FLOW_IDLE: Duration = Duration::from_secs(120);
/// Most flows remembered; past it the idle sweep runs early.
const MAX_FLOWS: usize = 1 << 20;

/// Deduplicated payload bytes per direction, summed over flows.
#[derive(Debug, Default)]
pub struct FlowTotals {
    to_server: AtomicU64,
    to_client: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct FlowState {
    /// Sequence number just past the highest payload byte counted.
    next: u32,
    last_seen: Instant,
}

/// Per (client, server, direction) the highest sequence counted, so a segment seen twice
/// (retransmitted, or captured on two hooks) counts once.
#[derive(Debug, Default)]
pub struct FlowBytes {
    flows: HashMap<(SocketAddr, SocketAddr, Direction), FlowState>,
    last_sweep: Option<Instant>,
}

impl FlowBytes {
    /// Returns the payload bytes of `seg` not counted before, and adds them to `totals`.
    pub fn add(&mut self, seg: &Segment<'_>, now: Instant, totals: &FlowTotals) -> u64 {
        if seg.payload_len == 0 {
            return 0;
        }
        let start = seg.seq.wrapping_add(u32::from(seg.flags.syn()));
        let end = start.wrapping_add(seg.payload_len);
        let key = (seg.client, seg.server, seg.direction);
        let new = match self.flows.get_mut(&key) {
            None => {
                self.flows.insert(
                    key,
                    FlowState {
                        next: end,
                        last_seen: now,
                    },
                );
                seg.payload_len
            }
            Some(st) => {
                st.last_seen = now;
                let ahead = end.wrapping_sub(st.next) as i32;
                if ahead <= 0 {
                    0
                } else {
                    st.next = end;
                    (ahead as u32).min(seg.payload_len)
                }
            }
        };
        let counter = match seg.direction {
            Direction::ToServer => &totals.to_server,
            Direction::ToClient => &totals.to_client,
        };
        counter.fetch_add(u64::from(new), Relaxed);
        u64::from(new)
    }

    pub fn sweep(&mut self, now: Instant) {
        let due = self
            .last_sweep
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(10));
        if due || self.flows.len() > MAX_FLOWS {
            self.flows
                .retain(|_, st| now.duration_since(st.last_seen) < FLOW_IDLE);
            self.last_sweep = Some(now);
        }
    }
}

impl FlowTotals {
    /// `apitap_flow_payload_bytes_total{direction}`.
    pub fn self_metrics(&self) -> Vec<SelfMetric> {
        let m = |direction: &str, v: &AtomicU64| SelfMetric {
            name: "apitap_flow_payload_bytes_total".into(),
            help: "TCP payload bytes of watched flows, each sequence range counted once.".into(),
            kind: MetricKind::Counter,
            labels: vec![("direction".into(), direction.into())],
            value: v.load(Relaxed) as f64,
        };
        vec![
            m("request", &self.to_server),
            m("response", &self.to_client),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_core::segment::TcpFlags;
    use rstest::rstest;

    fn seg(dir: Direction, seq: u32, len: u32, flags: u8) -> Segment<'static> {
        Segment {
            ts_ns: 0,
            client: "192.0.2.2:40000".parse().expect("literal"),
            server: "192.0.2.1:80".parse().expect("literal"),
            direction: dir,
            seq,
            ack: 0,
            flags: TcpFlags(flags),
            payload_len: len,
            payload: b"",
        }
    }

    #[rstest]
    #[case::in_order(&[(100, 10), (110, 5)], 15)]
    #[case::exact_duplicate_counts_once(&[(100, 10), (100, 10)], 10)]
    #[case::overlapping_retransmit_counts_new_part(&[(100, 10), (105, 10)], 15)]
    #[case::old_segment_after_newer(&[(100, 10), (110, 10), (100, 10)], 20)]
    #[case::wraps_around_sequence_space(&[(u32::MAX - 4, 10), (5, 10)], 20)]
    fn counts_each_sequence_range_once(#[case] segs: &[(u32, u32)], #[case] want: u64) {
        let mut f = FlowBytes::default();
        let totals = FlowTotals::default();
        let now = Instant::now();
        for (seq, len) in segs {
            f.add(
                &seg(Direction::ToServer, *seq, *len, TcpFlags::ACK),
                now,
                &totals,
            );
        }
        assert_eq!(totals.to_server.load(Relaxed), want);
        assert_eq!(totals.to_client.load(Relaxed), 0);
    }

    #[test]
    fn directions_are_separate_flows() {
        let mut f = FlowBytes::default();
        let totals = FlowTotals::default();
        let now = Instant::now();
        f.add(
            &seg(Direction::ToServer, 100, 10, TcpFlags::ACK),
            now,
            &totals,
        );
        f.add(
            &seg(Direction::ToClient, 100, 7, TcpFlags::ACK),
            now,
            &totals,
        );
        assert_eq!(totals.to_server.load(Relaxed), 10);
        assert_eq!(totals.to_client.load(Relaxed), 7);
    }

    #[test]
    fn idle_flows_are_forgotten() {
        let mut f = FlowBytes::default();
        let totals = FlowTotals::default();
        let t0 = Instant::now();
        f.add(&seg(Direction::ToServer, 1, 1, TcpFlags::ACK), t0, &totals);
        f.sweep(t0 + FLOW_IDLE + Duration::from_secs(1));
        assert!(f.flows.is_empty());
    }
}
