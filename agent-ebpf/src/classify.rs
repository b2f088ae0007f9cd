//! One segment -> one ring record: match the watched port, skip pure ACKs, copy a bounded
//! prefix into the per-CPU scratch slot and output header + prefix.

use agent_common::{
    Counter, EVENT_VERSION, KIND_SEGMENT, MAX_SNAP_LEN, SEGMENT_EVENT_BYTES, SegmentEvent,
    direction, tcp_flags,
};
use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_ktime_get_ns, bpf_skb_load_bytes},
    programs::TcContext,
};

use crate::headers::{Skip, read_ip, read_tcp};
use crate::{EVENTS, PORTS, SCRATCH, SNAP_LEN, WAKEUP_BYTES, count};

/// Error of one packet that must be counted in `Counter::Errors`.
pub struct Malformed;

#[inline(always)]
pub fn try_classify(ctx: &TcContext, hook: u8) -> Result<(), Malformed> {
    match classify(ctx, hook) {
        Ok(()) | Err(Skip::NotTcp) => Ok(()),
        Err(Skip::Malformed) => Err(Malformed),
    }
}

#[inline(always)]
fn watched(port: u16) -> bool {
    // SAFETY: the value is a plain u8 read once; concurrent updates only swap whole values.
    unsafe { PORTS.get(port).is_some() }
}

#[inline(always)]
fn classify(ctx: &TcContext, hook: u8) -> Result<(), Skip> {
    let ip = read_ip(ctx)?;
    let tcp = read_tcp(ctx, ip.l4_off)?;
    let dir = if watched(tcp.dport) {
        direction::TO_SERVER
    } else if watched(tcp.sport) {
        direction::TO_CLIENT
    } else {
        return Ok(());
    };
    if ip.l4_len < tcp.hdr_len {
        return Err(Skip::Malformed);
    }
    let payload_len = ip.l4_len - tcp.hdr_len;
    if payload_len == 0 && tcp.flags & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST) == 0 {
        count(Counter::EmptySkipped, 1);
        return Ok(());
    }
    count(Counter::SegmentsMatched, 1);
    count(Counter::PayloadBytes, payload_len as u64);

    let payload_off = ip.l4_off as u32 + tcp.hdr_len;
    // SAFETY: a read of a loader-patched constant; volatile keeps the compiler from folding it.
    let snap = unsafe { core::ptr::read_volatile(&SNAP_LEN) }.min(MAX_SNAP_LEN);
    let in_skb = ctx.len().saturating_sub(payload_off);
    let mut copied = payload_len.min(snap).min(in_skb);

    let Some(slot) = SCRATCH.get_ptr_mut(0) else {
        return Err(Skip::Malformed);
    };
    let base = slot.cast::<u8>();
    // SAFETY: offset 72 is inside the SCRATCH_BYTES slot.
    let dst = unsafe { base.add(SEGMENT_EVENT_BYTES) };
    if copied > 0 {
        // Bound the length for the verifier on one register it can follow: a volatile reload
        // keeps the compiler from checking one copy and passing another.
        // SAFETY: reads a local.
        let n: u64 = unsafe { core::ptr::read_volatile(&(copied as u64)) };
        if n == 0 || n > MAX_SNAP_LEN as u64 {
            return Err(Skip::Malformed);
        }
        // SAFETY: dst has MAX_SNAP_LEN bytes of room; the helper checks the skb bounds.
        let ret =
            unsafe { bpf_skb_load_bytes(ctx.skb.skb.cast(), payload_off, dst.cast(), n as u32) };
        if ret != 0 {
            copied = 0;
            count(Counter::Errors, 1);
        } else {
            copied = n as u32;
        }
    }

    let ev = SegmentEvent {
        kind: KIND_SEGMENT,
        version: EVENT_VERSION,
        direction: dir,
        tcp_flags: tcp.flags,
        family: ip.family,
        hook,
        _pad: [0; 2],
        // SAFETY: reads a field of the context the kernel handed to this program.
        ifindex: unsafe { (*ctx.skb.skb).ifindex },
        payload_len,
        // SAFETY: helper without preconditions.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        seq: tcp.seq,
        ack: tcp.ack,
        saddr: ip.saddr,
        daddr: ip.daddr,
        sport: tcp.sport,
        dport: tcp.dport,
        copied_len: copied,
    };
    // SAFETY: the slot is 8-byte aligned map memory of SCRATCH_BYTES >= header bytes.
    unsafe { core::ptr::write(slot.cast::<SegmentEvent>(), ev) };

    // SAFETY: reads a local (same verifier-friendly bound as above).
    let len: u64 =
        unsafe { core::ptr::read_volatile(&(copied as u64)) } + SEGMENT_EVENT_BYTES as u64;
    if len > (SEGMENT_EVENT_BYTES + MAX_SNAP_LEN as usize) as u64 {
        return Err(Skip::Malformed);
    }
    let len = len as usize;
    // SAFETY: a read of a loader-patched constant.
    let wake_at = unsafe { core::ptr::read_volatile(&WAKEUP_BYTES) } as u64;
    let pending = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
    let flags = if pending + len as u64 >= wake_at {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    // SAFETY: `len` bytes of the slot were written above (header + copied prefix).
    let record = unsafe { core::slice::from_raw_parts(base.cast_const(), len) };
    match EVENTS.output::<[u8]>(record, flags as u64) {
        Ok(()) => count(Counter::CopiedBytes, copied as u64),
        Err(_) => count(Counter::EventsLost, 1),
    }
    Ok(())
}
