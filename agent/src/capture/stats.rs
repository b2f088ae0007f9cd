//! Capture self-metrics: the kernel's per-CPU counters (summed on demand) plus user-side
//! counters of the reader.

use agent_common::Counter;
use aya::maps::{MapData, PerCpuArray};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::AttachMode;

/// Counters kept by the reader and the attacher.
#[derive(Debug, Default)]
pub struct UserCounters {
    pub events_read: AtomicU64,
    pub batches_sent: AtomicU64,
    /// Segments in batches dropped because the pipeline channel was full.
    pub events_dropped: AtomicU64,
    pub decode_errors: AtomicU64,
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
    pub events_read: u64,
    pub batches_sent: u64,
    pub events_dropped: u64,
    pub decode_errors: u64,
    pub interfaces_attached: u64,
    pub programs_attached: u64,
    pub attach_mode: Option<AttachMode>,
    pub stale_filters_removed: u64,
}

/// Cheap to clone; reads the kernel map on every `snapshot()`.
#[derive(Clone)]
pub struct CaptureStats {
    kernel: Arc<PerCpuArray<MapData, u64>>,
    pub(crate) user: Arc<UserCounters>,
}

impl CaptureStats {
    pub fn new(kernel: PerCpuArray<MapData, u64>) -> Self {
        CaptureStats {
            kernel: Arc::new(kernel),
            user: Arc::default(),
        }
    }

    /// Sum over CPUs of one kernel counter (0 when the map cannot be read).
    pub fn kernel(&self, counter: Counter) -> u64 {
        self.kernel
            .get(&(counter as u32), 0)
            .map(|vals| vals.iter().copied().fold(0u64, u64::wrapping_add))
            .unwrap_or(0)
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
        let u = &self.user;
        StatsSnapshot {
            packets_seen: self.kernel(Counter::PacketsSeen),
            segments: self.kernel(Counter::SegmentsMatched),
            events_lost: self.kernel(Counter::EventsLost),
            kernel_errors: self.kernel(Counter::Errors),
            payload_bytes: self.kernel(Counter::PayloadBytes),
            copied_bytes: self.kernel(Counter::CopiedBytes),
            empty_skipped: self.kernel(Counter::EmptySkipped),
            events_read: u.events_read.load(Relaxed),
            batches_sent: u.batches_sent.load(Relaxed),
            events_dropped: u.events_dropped.load(Relaxed),
            decode_errors: u.decode_errors.load(Relaxed),
            interfaces_attached: u.interfaces_attached.load(Relaxed),
            programs_attached: u.programs_attached.load(Relaxed),
            attach_mode: u.attach_mode(),
            stale_filters_removed: u.stale_filters_removed.load(Relaxed),
        }
    }
}
