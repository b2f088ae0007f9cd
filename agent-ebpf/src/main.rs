//! apitap kernel programs: two TC classifiers (ingress and egress) that turn every TCP segment
//! to or from a watched server port into a record in this CPU's ring (`agent_common::ring`): a
//! `SegmentEvent` header, followed by a bounded payload prefix when the segment starts a
//! burst (see `copy`). They never drop or alter traffic: every path returns `TC_ACT_UNSPEC` (-1,
//! which TCX calls `TCX_NEXT`), and every failure is counted.
//!
//! Why not `TC_ACT_PIPE`: on a netlink (cls_bpf) filter both mean "no verdict, go on", but in a
//! TCX chain only -1 runs the next program; any other value ends the chain, so a monitor
//! attached first that answered `TC_ACT_PIPE` would silently switch off every TCX program after
//! it (a CNI's, another apitap's).
#![no_std]
#![no_main]

mod classify;
mod copy;
mod headers;

use agent_common::{
    Counter, CpuState, DEFAULT_SMALL_COPY_LEN, DEFAULT_SNAP_LEN, FLOW_STATE_ENTRIES, FlowKey,
    FlowState, Ports, RingChunk, RingPos, hook,
};
use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, TC_ACT_UNSPEC},
    macros::{classifier, map},
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
    programs::TcContext,
};

use headers::Skip;

/// Payload bytes to copy at the start of a burst (loader global, clamped to `MAX_SNAP_LEN`).
#[unsafe(no_mangle)]
static SNAP_LEN: u32 = DEFAULT_SNAP_LEN;

/// Segments with at most this many payload bytes are always copied (loader global).
#[unsafe(no_mangle)]
static SMALL_COPY_LEN: u32 = DEFAULT_SMALL_COPY_LEN;

/// A CPU checks its ring's fill level after writing this many bytes (loader global).
#[unsafe(no_mangle)]
static WAKE_CHECK_BYTES: u32 = 64 * 1024;

/// The reader is woken when a ring holds this many bytes (loader global).
#[unsafe(no_mangle)]
static WAKE_AT_BYTES: u32 = 512 * 1024;

/// Non-zero when the kernel has `__sk_buff.tstamp_type` (loader global). When zero the
/// verifier sees a constant and never loads the code that reads it.
#[unsafe(no_mangle)]
static STACK_STAMPS: u32 = 0;

/// Chunks per CPU ring, a power of two (loader global; `agent_common::ring`).
#[unsafe(no_mangle)]
static RING_CHUNKS: u32 = 1;

/// Every CPU's ring: `RING_CHUNKS` elements per CPU (the loader sizes the array).
#[map(name = "RING_DATA")]
static RING_DATA: Array<RingChunk> = Array::with_max_entries(1, BPF_F_MMAPABLE);

/// Each CPU's producer and consumer positions.
#[map(name = "RING_POS")]
static RING_POS: Array<RingPos> = Array::with_max_entries(1, BPF_F_MMAPABLE);

/// Only wakes the reader (a record per wake-up) when a ring is filling up.
#[map(name = "WAKE")]
static WAKE: RingBuf = RingBuf::with_byte_size(4096, 0);

/// Watched server ports, and those copied in full.
#[map(name = "PORTS")]
static PORTS: Array<Ports> = Array::with_max_entries(1, 0);

/// Counters and wake-up accounting, one copy per CPU.
#[map(name = "CPU_STATE")]
static CPU_STATE: PerCpuArray<CpuState> = PerCpuArray::with_max_entries(1, 0);

/// Burst state per flow direction.
#[map(name = "FLOWS")]
static FLOWS: LruHashMap<FlowKey, FlowState> = LruHashMap::with_max_entries(FLOW_STATE_ENTRIES, 0);

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
    if let Some(p) = CPU_STATE.get_ptr_mut(0) {
        // SAFETY: this CPU's slot from a successful lookup; TC programs run with migration
        // disabled.
        let st = unsafe { &mut *p };
        st.add(Counter::PacketsSeen, 1);
        match classify::classify(ctx, hook, st) {
            Ok(()) | Err(Skip::NotTcp) => {}
            Err(Skip::Fragment) => st.add(Counter::Fragments, 1),
            Err(Skip::Malformed | Skip::Short) => st.add(Counter::Errors, 1),
        }
    }
    TC_ACT_UNSPEC
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
