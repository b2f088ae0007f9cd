//! One segment -> one ring record: match the watched port, skip pure ACKs, decide whether to
//! copy (see `copy`), and write header (+ prefix) straight into this CPU's own ring (see
//! `agent_common::ring`): no lock, no helper call, no wake-up unless the ring is filling up.
//!
//! Each record carries a time (CLOCK_MONOTONIC). Reading the clock (`bpf_ktime_get_ns`) is
//! one of the largest single costs on a mitigated VM (~60–90 ns). A response
//! segment usually carries its time already: the sender's TCP stack stamps every segment with
//! its departure time, on the same clock, refreshed when the send begins (`skb->tstamp` with
//! `tstamp_type` MONOTONIC, kept across lo and veth). `stamp` uses it for segments to the
//! client when it lies at most `STACK_STAMP_SLACK_NS` past this CPU's latest clock reading.
//! That is safe for the reader's causal cut (see the agent's capture reader): a response is
//! sent after its request was received, so its departure time is later than the request's
//! record was published, just as a clock read would be; a departure time in the future (paced
//! traffic) only delays the record, by at most the slack, so a ring never waits longer.
//! Requests always read the clock: a request stamped ahead by a pacer could be ordered after
//! its own response.

use agent_common::{
    Counter, CpuState, EVENT_VERSION, KIND_SEGMENT, MAX_SNAP_LEN, SEGMENT_EVENT_BYTES,
    STACK_STAMP_SLACK_NS, SegmentEvent, copy_reason, direction,
    ring::{RING_CHUNK_SHIFT, locate, record_footprint},
    tcp_flags,
};
use aya_ebpf::{
    bindings::BPF_RB_FORCE_WAKEUP,
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_skb_load_bytes},
    programs::TcContext,
};

use crate::headers::{Segment, Skip, read_segment};
use crate::{
    PORTS, RING_CHUNKS, RING_DATA, RING_POS, SMALL_COPY_LEN, SNAP_LEN, STACK_STAMPS, WAKE,
    WAKE_AT_BYTES, WAKE_CHECK_BYTES, copy,
};

/// `__sk_buff.tstamp_type` of a departure time on CLOCK_MONOTONIC (`BPF_SKB_CLOCK_MONOTONIC`,
/// formerly `BPF_SKB_TSTAMP_DELIVERY_MONO`).
const SKB_CLOCK_MONOTONIC: u8 = 1;

/// A read of a loader-patched constant; volatile keeps the compiler from folding the default.
macro_rules! global {
    ($g:expr) => {
        // SAFETY: a plain read of a static the loader may have patched before loading.
        unsafe { core::ptr::read_volatile(&$g) }
    };
}

#[inline(always)]
pub fn classify(ctx: &TcContext, hook: u8, st: &mut CpuState) -> Result<(), Skip> {
    let seg = read_segment(ctx, st)?;
    let Some(ports) = PORTS.get(0) else {
        return Ok(());
    };
    let (dir, server_port) = if ports.watched.contains(seg.dport) {
        (direction::TO_SERVER, seg.dport)
    } else if ports.watched.contains(seg.sport) {
        (direction::TO_CLIENT, seg.sport)
    } else {
        return Ok(());
    };
    if seg.payload_len == 0 && seg.flags & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST) == 0 {
        st.add(Counter::EmptySkipped, 1);
        return Ok(());
    }
    st.add(Counter::SegmentsMatched, 1);
    st.add(Counter::PayloadBytes, seg.payload_len as u64);
    let why = if seg.payload_len == 0 {
        copy_reason::NONE
    } else if ports.copy_all.contains(server_port) {
        copy_reason::PORT
    } else {
        copy::reason(&seg, global!(SMALL_COPY_LEN))
    };
    // SAFETY: helper without preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let ts_ns = stamp(ctx, dir, st);
    let ev = header(ctx, &seg, dir, hook, why, ts_ns);
    match why {
        copy_reason::NONE => {
            if seg.payload_len > 0 {
                st.add(Counter::LengthOnly, 1);
            }
        }
        copy_reason::NEW_FLOW => st.add(Counter::CopiedNewFlow, 1),
        copy_reason::BURST => st.add(Counter::CopiedBurst, 1),
        copy_reason::SMALL => st.add(Counter::CopiedSmall, 1),
        copy_reason::H2 => st.add(Counter::CopiedH2, 1),
        _ => st.add(Counter::CopiedPort, 1),
    }
    write(ctx, cpu, ev, &seg, why != copy_reason::NONE, st)
}

#[inline(always)]
fn header(ctx: &TcContext, seg: &Segment, dir: u8, hook: u8, why: u8, ts_ns: u64) -> SegmentEvent {
    SegmentEvent {
        kind: KIND_SEGMENT,
        version: EVENT_VERSION,
        direction: dir,
        tcp_flags: seg.flags,
        family: seg.family,
        hook,
        copy_reason: why,
        _pad: 0,
        // SAFETY: reads a field of the context the kernel handed to this program.
        ifindex: unsafe { (*ctx.skb.skb).ifindex },
        payload_len: seg.payload_len,
        ts_ns,
        seq: seg.seq,
        ack: seg.ack,
        saddr: seg.saddr,
        daddr: seg.daddr,
        sport: seg.sport,
        dport: seg.dport,
        copied_len: 0,
    }
}

/// The record's time: the stack's departure time for a response segment that has a usable
/// one (module docs), else a clock read, which becomes this CPU's latest reading.
#[inline(always)]
fn stamp(ctx: &TcContext, dir: u8, st: &mut CpuState) -> u64 {
    if global!(STACK_STAMPS) != 0 && dir == direction::TO_CLIENT {
        // SAFETY: reads fields of the context the kernel handed to this program. Reading
        // `tstamp_type` makes the kernel hand `tstamp` over as set, also at ingress.
        let (kind, ts) = unsafe { ((*ctx.skb.skb).tstamp_type, (*ctx.skb.skb).tstamp) };
        if kind == SKB_CLOCK_MONOTONIC && ts != 0 && ts <= st.clock_ns + STACK_STAMP_SLACK_NS {
            st.add(Counter::StackStamps, 1);
            return ts;
        }
    }
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    st.clock_ns = now;
    now
}

/// Writes the record (header, plus the payload prefix when `copy`) at this CPU's producer
/// position and publishes it. A record that does not fit in the ring's free space is counted
/// lost.
#[inline(always)]
fn write(
    ctx: &TcContext,
    cpu: u32,
    mut ev: SegmentEvent,
    seg: &Segment,
    copy: bool,
    st: &mut CpuState,
) -> Result<(), Skip> {
    let Some(pos) = RING_POS.get_ptr_mut(cpu) else {
        st.add(Counter::EventsLost, 1);
        return Ok(());
    };
    // SAFETY: this CPU's entry from a successful lookup; only this CPU's classifiers write
    // `produced`, and they never run at the same time (module docs of agent_common::ring).
    let pos = unsafe { &mut *pos };
    let chunks = global!(RING_CHUNKS);
    let produced = pos.produced;
    // SAFETY: a plain read of a field user space advances; a stale value only under-counts
    // the free space.
    let consumed = unsafe { core::ptr::read_volatile(&pos.consumed) };
    let want = if copy {
        let snap = global!(SNAP_LEN).min(MAX_SNAP_LEN);
        let in_skb = ctx.len().saturating_sub(seg.payload_off);
        seg.payload_len.min(snap).min(in_skb)
    } else {
        0
    };
    let capacity = u64::from(chunks) << RING_CHUNK_SHIFT;
    if produced.wrapping_sub(consumed) + record_footprint(want) > capacity {
        st.add(Counter::EventsLost, 1);
        return Ok(());
    }
    let (element, off) = locate(produced, cpu, chunks);
    let Some(chunk) = RING_DATA.get_ptr_mut(element) else {
        st.add(Counter::EventsLost, 1);
        return Ok(());
    };
    // SAFETY: `off` is below RING_CHUNK_BYTES, and the element has RING_SLACK_BYTES more
    // after it: room for the largest record.
    let base = unsafe { chunk.cast::<u8>().add(off) };
    let mut copied = 0u32;
    if want > 0 {
        // Bound the length for the verifier on one register it can follow: a volatile reload
        // keeps the compiler from checking one copy and passing another.
        // SAFETY: reads a local.
        let n: u64 = unsafe { core::ptr::read_volatile(&(want as u64)) };
        if n == 0 || n > MAX_SNAP_LEN as u64 {
            return Err(Skip::Malformed);
        }
        // SAFETY: MAX_SNAP_LEN bytes of room follow the header (above); the helper checks the
        // skb bounds.
        let ret = unsafe {
            bpf_skb_load_bytes(
                ctx.skb.skb.cast(),
                seg.payload_off,
                base.add(SEGMENT_EVENT_BYTES).cast(),
                n as u32,
            )
        };
        if ret == 0 {
            copied = n as u32;
            if ev.direction == direction::TO_SERVER && copied >= 8 {
                // SAFETY: at least 8 bytes were just written after the header.
                let head = unsafe {
                    core::ptr::read_unaligned(base.add(SEGMENT_EVENT_BYTES).cast::<u64>())
                };
                if copy::is_h2_preface(head) {
                    copy::mark_h2(seg);
                }
            }
        } else {
            st.add(Counter::Errors, 1);
        }
    }
    ev.copied_len = copied;
    // SAFETY: `base` is 8-byte aligned (positions advance by multiples of 8 from an aligned
    // element) with room for the header. Volatile: see the publication below.
    unsafe { core::ptr::write_volatile(base.cast::<SegmentEvent>(), ev) };
    let len = record_footprint(copied);
    // Publish: the record's bytes must be visible before the new position. The payload was
    // written by a helper call before, and the header and the position are volatile stores,
    // which the compiler keeps in program order; the JIT emits plain stores, which x86 keeps
    // in order (TSO). This build's BPF target (cpu v1) has no fence or store-release
    // instruction to ask for more on weakly ordered CPUs.
    // SAFETY: `produced` is an 8-byte aligned u64 of map memory that outlives this call.
    unsafe { core::ptr::write_volatile(&mut pos.produced, produced + len) };
    st.add(Counter::CopiedBytes, u64::from(copied));
    st.add(Counter::RecordBytes, len);
    wake_if_filling(produced + len - consumed, len, st);
    Ok(())
}

/// Wakes the reader when this CPU's ring holds more than `WAKE_AT_BYTES` (looked at once per
/// `WAKE_CHECK_BYTES` written); otherwise the reader drains on its own timer.
#[inline(always)]
fn wake_if_filling(pending: u64, len: u64, st: &mut CpuState) {
    st.since_check += len;
    if st.since_check < u64::from(global!(WAKE_CHECK_BYTES)) {
        return;
    }
    st.since_check = 0;
    if pending >= u64::from(global!(WAKE_AT_BYTES)) {
        st.add(Counter::Wakeups, 1);
        let _ = WAKE.output::<u64>(pending, BPF_RB_FORCE_WAKEUP as u64);
    }
}
