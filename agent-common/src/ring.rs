//! The per-CPU record rings: one single-producer, single-consumer ring per CPU, written by
//! that CPU's classifiers with plain stores and read by user space through `mmap`.
//!
//! Why not `BPF_MAP_TYPE_RINGBUF`: its output takes a spin lock with interrupts off, copies,
//! and commits with an atomic exchange, all behind helper calls. On a mitigated VM that was the
//! largest part of the classifier's cost per record. The classifiers on one CPU never run at
//! the same time (ingress runs in softirq, egress with bottom halves off), so a CPU's ring has
//! exactly one writer at a time and needs no lock at all.
//!
//! Layout. A CPU's ring is `chunks` consecutive elements of the `RING_DATA` array (an
//! mmap-able array map), each [`RING_CHUNK_BYTES`] of ring space followed by
//! [`RING_SLACK_BYTES`] of slack. Positions grow without bound; position `p` lies in chunk
//! `(p >> RING_CHUNK_SHIFT) % chunks` at offset `p % RING_CHUNK_BYTES`. A record is written
//! contiguously from its position, running into the slack when it starts near a chunk's end,
//! so no record is ever split. The slack of a chunk is written again only a full lap later,
//! when the producer has passed the consumer's position (which the capacity check forbids).
//!
//! Each record is a [`SegmentEvent`](crate::SegmentEvent) header and `copied_len` payload
//! bytes, padded to 8 bytes ([`record_footprint`]). `RING_POS` holds each CPU's
//! [`RingPos`]: the producer publishes a record by advancing `produced` after writing it;
//! the reader gives space back by advancing `consumed`.

use crate::{MAX_SNAP_LEN, SEGMENT_EVENT_BYTES};

/// log2 of [`RING_CHUNK_BYTES`].
pub const RING_CHUNK_SHIFT: u32 = 17;
/// Ring space per array element (128 KiB); a CPU's ring is a power-of-two number of them.
pub const RING_CHUNK_BYTES: u32 = 1 << RING_CHUNK_SHIFT;
/// Room after each chunk for the largest record starting at its last byte.
pub const RING_SLACK_BYTES: usize = SEGMENT_EVENT_BYTES + MAX_SNAP_LEN as usize + 8;
/// Bytes of one `RING_DATA` element.
pub const RING_ELEMENT_BYTES: usize = RING_CHUNK_BYTES as usize + RING_SLACK_BYTES;
/// The largest ring record.
pub const MAX_RECORD_BYTES: u64 = record_footprint(MAX_SNAP_LEN);

const _: () = assert!(RING_ELEMENT_BYTES.is_multiple_of(8));
const _: () = assert!(MAX_RECORD_BYTES as usize <= RING_SLACK_BYTES);

/// One element of the `RING_DATA` array.
#[repr(C)]
pub struct RingChunk {
    pub bytes: [u8; RING_ELEMENT_BYTES],
}

/// A CPU's positions. The producer's and the consumer's sit on different cache lines so that
/// neither side's writes move the other's line.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingPos {
    /// End of the last published record (written by the CPU's classifiers only).
    pub produced: u64,
    pub _producer_line: [u64; 7],
    /// Everything before this position has been read (written by user space only).
    pub consumed: u64,
    pub _consumer_line: [u64; 7],
}

const _: () = assert!(core::mem::size_of::<RingPos>() == 128);

/// Ring bytes of a record with `copied` payload bytes: header and payload, 8-byte aligned.
#[inline(always)]
pub const fn record_footprint(copied: u32) -> u64 {
    (SEGMENT_EVENT_BYTES as u64 + copied as u64 + 7) & !7
}

/// Where position `pos` of CPU `cpu`'s ring lies: the `RING_DATA` element and the offset in
/// it. `chunks` is a power of two.
#[inline(always)]
pub const fn locate(pos: u64, cpu: u32, chunks: u32) -> (u32, usize) {
    let chunk = ((pos >> RING_CHUNK_SHIFT) as u32) & (chunks - 1);
    (
        cpu * chunks + chunk,
        (pos & (RING_CHUNK_BYTES as u64 - 1)) as usize,
    )
}

#[cfg(feature = "user")]
// SAFETY: repr(C) plain old data without padding (size asserted above).
unsafe impl aya::Pod for RingPos {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_padded_to_eight_bytes() {
        assert_eq!(record_footprint(0), 72);
        assert_eq!(record_footprint(1), 80);
        assert_eq!(record_footprint(8), 80);
        assert_eq!(record_footprint(9), 88);
    }

    #[test]
    fn positions_walk_a_cpus_chunks_in_turn() {
        let chunk = RING_CHUNK_BYTES as u64;
        assert_eq!(locate(0, 0, 4), (0, 0));
        assert_eq!(locate(chunk - 8, 0, 4), (0, chunk as usize - 8));
        assert_eq!(locate(chunk, 0, 4), (1, 0));
        assert_eq!(locate(4 * chunk + 16, 0, 4), (0, 16));
        assert_eq!(locate(chunk + 24, 3, 4), (13, 24));
        assert_eq!(locate(7 * chunk, 2, 1), (2, 0));
    }

    #[test]
    fn a_record_at_a_chunks_last_byte_fits_its_slack() {
        let (_, off) = locate(RING_CHUNK_BYTES as u64 - 8, 0, 1);
        assert!(off + MAX_RECORD_BYTES as usize <= RING_ELEMENT_BYTES);
    }
}
