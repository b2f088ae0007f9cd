//! One segment -> one ring record: match the watched port, skip pure ACKs, decide whether to
//! copy (see `copy`), and write header (+ prefix) to this CPU's ring without waking the reader
//! unless the ring is filling up.
//!
//! Each record carries a time (CLOCK_MONOTONIC). Reading the clock (`bpf_ktime_get_ns`) is
//! the largest single cost after the ring itself on a mitigated VM (~60–90 ns). A response
//! segment usually carries its time already: the sender's TCP stack stamps every segment with
//! its departure time, on the same clock, refreshed when the send begins (`skb->tstamp` with
//! `tstamp_type` MONOTONIC, kept across lo and veth). `stamp` uses it for segments to the
//! client when it lies at most `STACK_STAMP_SLACK_NS` past this CPU's latest clock reading.
//! That is safe for the reader's causal cut (see the agent's capture reader): a response is
//! sent after its request was received, so its departure time is later than the request's
//! record was committed, just as a clock read would be; a departure time in the future (paced
//! traffic) only delays the record, by at most the slack, so a ring never waits longer.
//! Requests always read the clock: a request stamped ahead by a pacer could be ordered after
//! its own response.

use agent_common::{
    Counter, CpuState, EVENT_VERSION, KIND_SEGMENT, MAX_SNAP_LEN, SEGMENT_EVENT_BYTES,
    STACK_STAMP_SLACK_NS, SegmentEvent, copy_reason, direction, tcp_flags,
};
use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_ringbuf_query, bpf_skb_load_bytes},
    programs::TcContext,
};

use crate::headers::{Segment, Skip, read_segment};
use crate::{
    PORTS, RINGS, RingMap, SCRATCH, SMALL_COPY_LEN, SNAP_LEN, STACK_STAMPS, WAKE_AT_BYTES,
    WAKE_CHECK_BYTES, copy,
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
    let Some(ring) = RINGS.get(cpu) else {
        st.add(Counter::EventsLost, 1);
        return Ok(());
    };
    let ts_ns = stamp(ctx, dir, st);
    let ev = header(ctx, &seg, dir, hook, why, ts_ns);
    match why {
        copy_reason::NONE => {
            if seg.payload_len > 0 {
                st.add(Counter::LengthOnly, 1);
            }
            length_only(ring, ev, st);
            return Ok(());
        }
        copy_reason::NEW_FLOW => st.add(Counter::CopiedNewFlow, 1),
        copy_reason::BURST => st.add(Counter::CopiedBurst, 1),
        copy_reason::SMALL => st.add(Counter::CopiedSmall, 1),
        copy_reason::H2 => st.add(Counter::CopiedH2, 1),
        _ => st.add(Counter::CopiedPort, 1),
    }
    with_prefix(ctx, ring, ev, &seg, st)
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

/// Reserve flags after writing `len` bytes: no wake-up, except when this CPU's ring holds
/// more than `WAKE_AT_BYTES` (checked once per `WAKE_CHECK_BYTES` written).
#[inline(always)]
fn wake_flags(ring: &RingMap, len: u64, st: &mut CpuState) -> u64 {
    st.since_check += len;
    st.add(Counter::RecordBytes, len);
    if st.since_check < global!(WAKE_CHECK_BYTES) as u64 {
        return BPF_RB_NO_WAKEUP as u64;
    }
    st.since_check = 0;
    let ptr = (ring as *const RingMap).cast_mut().cast();
    // SAFETY: `ptr` is the inner ring map returned by the RINGS lookup.
    let pending = unsafe { bpf_ringbuf_query(ptr, BPF_RB_AVAIL_DATA as u64) };
    if pending >= global!(WAKE_AT_BYTES) as u64 {
        st.add(Counter::Wakeups, 1);
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

/// Header only, reserved and written in place.
#[inline(always)]
fn length_only(ring: &RingMap, ev: SegmentEvent, st: &mut CpuState) {
    match ring.reserve_untyped::<SegmentEvent>(0) {
        Some(mut entry) => {
            entry.write(ev);
            let flags = wake_flags(ring, SEGMENT_EVENT_BYTES as u64, st);
            entry.submit(flags);
        }
        None => st.add(Counter::EventsLost, 1),
    }
}

/// Header + copied prefix, assembled in the per-CPU scratch slot and output.
#[inline(always)]
fn with_prefix(
    ctx: &TcContext,
    ring: &RingMap,
    mut ev: SegmentEvent,
    seg: &Segment,
    st: &mut CpuState,
) -> Result<(), Skip> {
    let snap = global!(SNAP_LEN).min(MAX_SNAP_LEN);
    let in_skb = ctx.len().saturating_sub(seg.payload_off);
    let want = seg.payload_len.min(snap).min(in_skb);
    let Some(slot) = SCRATCH.get_ptr_mut(0) else {
        return Err(Skip::Malformed);
    };
    let base = slot.cast::<u8>();
    // SAFETY: offset 72 is inside the SCRATCH_BYTES slot.
    let dst = unsafe { base.add(SEGMENT_EVENT_BYTES) };
    let mut copied = 0u32;
    if want > 0 {
        // Bound the length for the verifier on one register it can follow: a volatile reload
        // keeps the compiler from checking one copy and passing another.
        // SAFETY: reads a local.
        let n: u64 = unsafe { core::ptr::read_volatile(&(want as u64)) };
        if n == 0 || n > MAX_SNAP_LEN as u64 {
            return Err(Skip::Malformed);
        }
        // SAFETY: dst has MAX_SNAP_LEN bytes of room; the helper checks the skb bounds.
        let ret = unsafe {
            bpf_skb_load_bytes(ctx.skb.skb.cast(), seg.payload_off, dst.cast(), n as u32)
        };
        if ret == 0 {
            copied = n as u32;
            if ev.direction == direction::TO_SERVER && copied >= 8 {
                // SAFETY: at least 8 bytes were just written at `dst`.
                let head = unsafe { core::ptr::read_unaligned(dst.cast::<u64>()) };
                if copy::is_h2_preface(head) {
                    copy::mark_h2(seg);
                }
            }
        } else {
            st.add(Counter::Errors, 1);
        }
    }
    ev.copied_len = copied;
    // SAFETY: the slot is 8-byte aligned map memory of SCRATCH_BYTES >= header bytes.
    unsafe { core::ptr::write(slot.cast::<SegmentEvent>(), ev) };
    // SAFETY: reads a local (same verifier-friendly bound as above).
    let len: u64 =
        unsafe { core::ptr::read_volatile(&(copied as u64)) } + SEGMENT_EVENT_BYTES as u64;
    if len > (SEGMENT_EVENT_BYTES + MAX_SNAP_LEN as usize) as u64 {
        return Err(Skip::Malformed);
    }
    let flags = wake_flags(ring, len, st);
    // SAFETY: `len` bytes of the slot were written above (header + copied prefix).
    let record = unsafe { core::slice::from_raw_parts(base.cast_const(), len as usize) };
    match ring.output_untyped::<[u8]>(record, flags) {
        Ok(()) => st.add(Counter::CopiedBytes, copied as u64),
        Err(_) => st.add(Counter::EventsLost, 1),
    }
    Ok(())
}
