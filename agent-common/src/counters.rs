//! Per-CPU state of the classifiers: counters, plus the bytes written since the last look at
//! the ring's fill level.

/// Per-CPU counters kept by the classifiers, indexes into [`CpuState::counters`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Packets the classifier ran on.
    PacketsSeen = 0,
    /// TCP segments to or from a watched port (records attempted).
    SegmentsMatched = 1,
    /// Records that did not fit in the ring buffer.
    EventsLost = 2,
    /// Packets whose headers could not be read (truncated, bad lengths, IPv6 extension
    /// headers past the walk's bound).
    Errors = 3,
    /// Payload bytes (true length) of matched segments.
    PayloadBytes = 4,
    /// Payload bytes copied into records.
    CopiedBytes = 5,
    /// Matched segments skipped because they carried nothing (pure ACKs).
    EmptySkipped = 6,
    /// IPv4 fragments and IPv6 packets with a Fragment header: not captured (TCP payload split
    /// over fragments cannot be read at TC); user space sees the hole as a reassembly gap.
    Fragments = 7,
    /// Segments with payload sent as length-only records (continuations inside a burst).
    LengthOnly = 8,
    /// Times a classifier woke the reader because its ring was filling up.
    Wakeups = 9,
    /// Bytes written to the rings (record headers and copied payload, before the ring's own
    /// 8-byte record header and alignment).
    RecordBytes = 10,
    /// Segments copied because they were the first data of their flow direction.
    CopiedNewFlow = 11,
    /// Segments copied because they started a burst.
    CopiedBurst = 12,
    /// Segments copied because they were small.
    CopiedSmall = 13,
    /// Segments copied because their server port is copied in full.
    CopiedPort = 14,
    /// Segments copied because their connection speaks HTTP/2 (preface seen).
    CopiedH2 = 15,
    /// Packets whose L2-L4 headers were not all in the skb's linear part and had to be pulled
    /// into it (`bpf_skb_pull_data`, which copies the skb's head when it is shared).
    HeadersPulled = 16,
    /// Records of responses (segments to the client) timed with the departure time the
    /// sender's TCP stack put on the packet instead of a clock read (see `STACK_STAMP_SLACK_NS`).
    StackStamps = 17,
}

/// Number of counter slots in [`CpuState`].
pub const COUNTER_SLOTS: usize = 18;

impl Counter {
    pub const ALL: [Counter; COUNTER_SLOTS] = [
        Counter::PacketsSeen,
        Counter::SegmentsMatched,
        Counter::EventsLost,
        Counter::Errors,
        Counter::PayloadBytes,
        Counter::CopiedBytes,
        Counter::EmptySkipped,
        Counter::Fragments,
        Counter::LengthOnly,
        Counter::Wakeups,
        Counter::RecordBytes,
        Counter::CopiedNewFlow,
        Counter::CopiedBurst,
        Counter::CopiedSmall,
        Counter::CopiedPort,
        Counter::CopiedH2,
        Counter::HeadersPulled,
        Counter::StackStamps,
    ];
}

/// The value of the per-CPU state map's single entry. TC programs run with migration
/// disabled, so plain adds on this CPU's copy are race free (a program nested in an interrupt
/// on the same CPU may lose an increment of `since_check`, which only delays a wake-up check).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuState {
    pub counters: [u64; COUNTER_SLOTS],
    /// Bytes written to this CPU's ring since its fill level was last checked.
    pub since_check: u64,
    /// The latest clock reading (`bpf_ktime_get_ns`) on this CPU: a packet's departure time
    /// is used only when it is at most `STACK_STAMP_SLACK_NS` past it.
    pub clock_ns: u64,
}

const _: () = assert!(core::mem::size_of::<CpuState>() == 8 * (COUNTER_SLOTS + 2));
const _: () = assert!(Counter::ALL.len() <= COUNTER_SLOTS);

impl CpuState {
    #[inline(always)]
    pub fn add(&mut self, counter: Counter, n: u64) {
        // The index is a small constant below COUNTER_SLOTS (asserted above).
        if let Some(slot) = self.counters.get_mut(counter as usize) {
            *slot += n;
        }
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.counters.get(counter as usize).copied().unwrap_or(0)
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C) plain old data without padding (size asserted above).
unsafe impl aya::Pod for CpuState {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_have_distinct_slots_in_order() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
    }

    #[test]
    fn add_and_get_round_trip() {
        let mut s = CpuState::default();
        s.add(Counter::Fragments, 2);
        s.add(Counter::Fragments, 3);
        assert_eq!(s.get(Counter::Fragments), 5);
        assert_eq!(s.get(Counter::Errors), 0);
    }
}
