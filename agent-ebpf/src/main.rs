//! apitap kernel programs: two TC classifiers (ingress and egress) that copy every TCP segment
//! to or from a watched server port into the `EVENTS` ring buffer as a `SegmentEvent` header
//! followed by a bounded payload prefix. They never drop or alter traffic: every path returns
//! `TC_ACT_UNSPEC` (-1, which TCX calls `TCX_NEXT`), and every failure is counted.
//!
//! Why not `TC_ACT_PIPE`: on a netlink (cls_bpf) filter both mean "no verdict, go on", but in a
//! TCX chain only -1 runs the next program; any other value ends the chain, so a monitor
//! attached first that answered `TC_ACT_PIPE` would silently switch off every TCX program after
//! it (a CNI's, another apitap's).
#![no_std]
#![no_main]

mod classify;
mod headers;

use agent_common::{
    COUNTER_SLOTS, Counter, DEFAULT_RING_BYTES, DEFAULT_SNAP_LEN, MAX_PORTS, SCRATCH_BYTES, hook,
};
use aya_ebpf::{
    bindings::TC_ACT_UNSPEC,
    macros::{classifier, map},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::TcContext,
};

/// Payload bytes to copy per segment (loader global, clamped to `MAX_SNAP_LEN`).
#[unsafe(no_mangle)]
static SNAP_LEN: u32 = DEFAULT_SNAP_LEN;

/// Wake the reader once this many bytes are pending in the ring (loader global).
#[unsafe(no_mangle)]
static WAKEUP_BYTES: u32 = 64 * 1024;

/// Segment records; the loader resizes it from the configuration.
#[map(name = "EVENTS")]
static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

/// Watched server ports (host order) -> 1.
#[map(name = "PORTS")]
static PORTS: HashMap<u16, u8> = HashMap::with_max_entries(MAX_PORTS, 0);

/// Per-CPU counters indexed by `agent_common::Counter`.
#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

/// One per-CPU slot where the record (header + prefix) is assembled before output.
#[map(name = "SCRATCH")]
static SCRATCH: PerCpuArray<[u8; SCRATCH_BYTES]> = PerCpuArray::with_max_entries(1, 0);

#[classifier]
pub fn tc_ingress(ctx: TcContext) -> i32 {
    run(&ctx, hook::INGRESS)
}

#[classifier]
pub fn tc_egress(ctx: TcContext) -> i32 {
    run(&ctx, hook::EGRESS)
}

#[inline(always)]
fn run(ctx: &TcContext, hook: u8) -> i32 {
    count(Counter::PacketsSeen, 1);
    if classify::try_classify(ctx, hook).is_err() {
        count(Counter::Errors, 1);
    }
    TC_ACT_UNSPEC
}

/// Adds `n` to this CPU's counter. TC programs run with migration disabled, so a plain add on
/// the per-CPU slot is race free.
#[inline(always)]
pub(crate) fn count(counter: Counter, n: u64) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: the pointer comes from a successful map lookup of this CPU's slot.
        unsafe { *slot += n };
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
