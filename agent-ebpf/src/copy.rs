//! The head-only policy: which segments are copied and which become length-only records.
//!
//! The kernel does not parse HTTP. It copies the first bytes of every *burst*: the first data
//! of a flow direction, and the first data after the peer sent some (this segment acknowledges
//! something else than the direction's burst so far). HTTP/1.x request and response heads
//! start bursts unless requests are pipelined: a request is answered before the next one is
//! sent, so each message acknowledges the other side's previous one. Retransmits and
//! reordering need nothing special: a burst's first segment carries the new acknowledgement
//! number whenever it comes, and continuation segments only read the state (no cache line is
//! written per segment). Segments of at most `SMALL_COPY_LEN` bytes are always copied
//! (chunk terminators, small pipelined messages) and skip the state lookup. Everything else is
//! a continuation: its record carries the true length and no bytes. A head that falls in a
//! continuation reaches user space as uncopied bytes at a message boundary, which the HTTP
//! layer counts as a gap and resynchronises from; it is never silent. Chunk framing inside a
//! continuation leaves the body size unknown; user space then has the server's port copied in
//! full (`Ports::copy_all`, checked before this module is asked).
//!
//! HTTP/2 is told apart by its client connection preface (`PRI * HTTP/2.0`, the first bytes a
//! client sends, also after an h2c upgrade): when a copied segment to the server starts with
//! it, both directions of the connection are marked `copy_all` and every later segment of
//! theirs is copied (`copy_reason::H2`), as frame headers can lie anywhere in a burst. If the
//! LRU map evicts a marked direction, its later bursts fall back to heads only, and what that
//! loses is counted by the HTTP/2 layer; user space then has the port copied in full.

use agent_common::{FlowKey, FlowState, H2_PREFACE_HEAD, copy_reason};

use crate::FLOWS;
use crate::headers::Segment;

/// Decides why `seg` (with `payload_len > 0`) is copied, or `copy_reason::NONE`, and updates
/// the direction's burst state.
#[inline(always)]
pub fn reason(seg: &Segment, small: u32) -> u8 {
    if seg.payload_len <= small {
        return copy_reason::SMALL;
    }
    let key = FlowKey {
        saddr: seg.saddr,
        daddr: seg.daddr,
        sport: seg.sport,
        dport: seg.dport,
    };
    match FLOWS.get_ptr_mut(&key) {
        None => {
            // A full LRU map evicts its oldest entry; a failed insert only means the next
            // segment is copied again.
            let state = FlowState {
                ack: seg.ack,
                copy_all: 0,
            };
            let _ = FLOWS.insert(&key, &state, 0);
            copy_reason::NEW_FLOW
        }
        Some(p) => {
            // SAFETY: a pointer from a successful lookup; another CPU writing the same entry
            // can only make the heuristic copy more, never corrupt memory (a plain u32 store).
            let st = unsafe { &mut *p };
            if st.copy_all != 0 {
                copy_reason::H2
            } else if st.ack == seg.ack {
                copy_reason::NONE
            } else {
                st.ack = seg.ack;
                copy_reason::BURST
            }
        }
    }
}

/// Whether copied payload bytes starting with `head` (their first eight, little endian) open
/// an HTTP/2 connection.
#[inline(always)]
pub fn is_h2_preface(head: u64) -> bool {
    head == H2_PREFACE_HEAD
}

/// Marks both directions of `seg`'s connection (a client's segment) to be copied in full.
#[inline(always)]
pub fn mark_h2(seg: &Segment) {
    let to_server = FlowKey {
        saddr: seg.saddr,
        daddr: seg.daddr,
        sport: seg.sport,
        dport: seg.dport,
    };
    let to_client = FlowKey {
        saddr: seg.daddr,
        daddr: seg.saddr,
        sport: seg.dport,
        dport: seg.sport,
    };
    // A failed insert (the map is full of entries being updated) only leaves that direction
    // on heads only; the HTTP/2 layer counts what that loses.
    let _ = FLOWS.insert(
        &to_server,
        &FlowState {
            ack: seg.ack,
            copy_all: 1,
        },
        0,
    );
    let _ = FLOWS.insert(
        &to_client,
        &FlowState {
            ack: 0,
            copy_all: 1,
        },
        0,
    );
}
