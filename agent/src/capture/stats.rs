//! Capture self-metrics: the kernel's per-CPU counters (summed on demand) plus the reader's.

use agent_common::{Counter, CpuState};
use aya::maps::{MapData, PerCpuArray};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::AttachMode;

/// Counters kept by the reader and the attacher.
#[derive(Debug, Default)]
pub struct UserCounters {
    pub events_read: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Ring bytes consumed (records with the ring's own headers and alignment).
    pub ring_bytes: AtomicU64,
    /// Early drains asked for by a ring passing half full.
    pub wakeups: AtomicU64,
    /// Bytes held in the rings at the last drain.
    pub ring_held_bytes: AtomicU64,
    /// The most bytes one ring held when a drain began, since the start.
    pub ring_peak_bytes: AtomicU64,
    /// Watched ports copied in full.
    pub ports_copied_in_full: AtomicU64,
    pub interfaces_attached: AtomicU64,
    pub programs_attached: AtomicU64,
    /// 0 before the first attach, then 1 for TCX links, 2 for netlink filters.
    attach_mode: AtomicU8,
    /// apitap filters left by a killed apitap and removed at attach time.
    pub stale_filters_removed: AtomicU64,
    /// Names of the interfaces with classifiers attached (set with the counts above).
    pub interface_names: Mutex<Vec<String>>,
}

impl UserCounters {
    pub fn set_attach_mode(&self, mode: Option<AttachMode>) {
        let v = match mode {
            None => 0,
            Some(AttachMode::Tcx) => 1,
            Some(AttachMode::Netlink) => 2,
        };
        self.attach_mode.store(v, Relaxed);
    }

    pub fn attach_mode(&self) -> Option<AttachMode> {
        match self.attach_mode.load(Relaxed) {
            1 => Some(AttachMode::Tcx),
            2 => Some(AttachMode::Netlink),
            _ => None,
        }
    }
}

/// A point-in-time copy of every capture counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub packets_seen: u64,
    pub segments: u64,
    pub events_lost: u64,
    pub kernel_errors: u64,
    pub payload_bytes: u64,
    pub copied_bytes: u64,
    pub empty_skipped: u64,
    pub fragments: u64,
    pub headers_pulled: u64,
    /// Response records timed with the sender's departure time instead of a clock read.
    pub stack_stamps: u64,
    pub length_only: u64,
    pub copied_new_flow: u64,
    pub copied_burst: u64,
    pub copied_small: u64,
    pub copied_port: u64,
    pub copied_h2: u64,
    pub kernel_wakeups: u64,
    pub record_bytes: u64,
    pub events_read: u64,
    pub decode_errors: u64,
    pub ring_bytes: u64,
    pub ring_held_bytes: u64,
    pub ring_peak_bytes: u64,
    pub ring_capacity_bytes: u64,
    /// Rings the classifiers write to (one per CPU, fewer when the budget is small).
    pub rings: u64,
    pub ports_copied_in_full: u64,
    pub interfaces_attached: u64,
    pub programs_attached: u64,
    pub attach_mode: Option<AttachMode>,
    pub stale_filters_removed: u64,
}

/// Cheap to clone; reads the kernel map on every `snapshot()`.
#[derive(Clone)]
pub struct CaptureStats {
    kernel: Arc<PerCpuArray<MapData, CpuState>>,
    ring_capacity_bytes: u64,
    rings: u64,
    pub(crate) user: Arc<UserCounters>,
}

impl CaptureStats {
    /// `rings` rings of `ring_capacity_bytes / rings` bytes each.
    pub fn new(
        kernel: PerCpuArray<MapData, CpuState>,
        ring_capacity_bytes: u64,
        rings: u64,
    ) -> Self {
        CaptureStats {
            kernel: Arc::new(kernel),
            ring_capacity_bytes,
            rings,
            user: Arc::default(),
        }
    }

    /// Every kernel counter summed over CPUs (zeros when the map cannot be read).
    fn kernel_totals(&self) -> CpuState {
        let mut total = CpuState::default();
        if let Ok(per_cpu) = self.kernel.get(&0, 0) {
            for cpu in per_cpu.iter() {
                for (t, v) in total.counters.iter_mut().zip(cpu.counters.iter()) {
                    *t = t.wrapping_add(*v);
                }
            }
        }
        total
    }

    /// Names of the interfaces with classifiers attached, sorted.
    pub fn interface_names(&self) -> Vec<String> {
        self.user
            .interface_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let k = self.kernel_totals();
        let u = &self.user;
        StatsSnapshot {
            packets_seen: k.get(Counter::PacketsSeen),
            segments: k.get(Counter::SegmentsMatched),
            events_lost: k.get(Counter::EventsLost),
            kernel_errors: k.get(Counter::Errors),
            payload_bytes: k.get(Counter::PayloadBytes),
            copied_bytes: k.get(Counter::CopiedBytes),
            empty_skipped: k.get(Counter::EmptySkipped),
            fragments: k.get(Counter::Fragments),
            headers_pulled: k.get(Counter::HeadersPulled),
            stack_stamps: k.get(Counter::StackStamps),
            length_only: k.get(Counter::LengthOnly),
            copied_new_flow: k.get(Counter::CopiedNewFlow),
            copied_burst: k.get(Counter::CopiedBurst),
            copied_small: k.get(Counter::CopiedSmall),
            copied_port: k.get(Counter::CopiedPort),
            copied_h2: k.get(Counter::CopiedH2),
            kernel_wakeups: k.get(Counter::Wakeups),
            record_bytes: k.get(Counter::RecordBytes),
            events_read: u.events_read.load(Relaxed),
            decode_errors: u.decode_errors.load(Relaxed),
            ring_bytes: u.ring_bytes.load(Relaxed),
            ring_held_bytes: u.ring_held_bytes.load(Relaxed),
            ring_peak_bytes: u.ring_peak_bytes.load(Relaxed),
            ring_capacity_bytes: self.ring_capacity_bytes,
            rings: self.rings,
            ports_copied_in_full: u.ports_copied_in_full.load(Relaxed),
            interfaces_attached: u.interfaces_attached.load(Relaxed),
            programs_attached: u.programs_attached.load(Relaxed),
            attach_mode: u.attach_mode(),
            stale_filters_removed: u.stale_filters_removed.load(Relaxed),
        }
    }
}
