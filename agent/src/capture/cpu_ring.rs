//! The per-CPU rings (`agent_common::ring`) read in place: `RING_DATA` is mapped read-only and
//! `RING_POS` read-write, and each CPU's records are borrowed straight from the mapping. A
//! record's space is given back (its CPU's `consumed` advanced) only after it has been
//! processed, so nothing is copied on the way to the pipeline.

use agent_common::ring::{MAX_RECORD_BYTES, RING_ELEMENT_BYTES, locate, record_footprint};
use agent_common::{RingPos, SEGMENT_EVENT_BYTES, SegmentEvent};
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::loader::RingMaps;
use super::mapping::Mapping;

/// Byte offset of `copied_len` in a [`SegmentEvent`].
const COPIED_LEN_AT: usize = std::mem::offset_of!(SegmentEvent, copied_len);

/// One record as it lies in its ring.
pub struct Record<'a> {
    /// The record's bytes: header and copied payload.
    pub bytes: &'a [u8],
    /// Ring bytes the record occupies (its padding included).
    pub footprint: u64,
}

/// Every CPU's ring, mapped once; hands out one reader per CPU.
pub struct CpuRings {
    data: Arc<Mapping>,
    pos: Arc<Mapping>,
    rings: u32,
    chunks: u32,
}

impl CpuRings {
    /// Maps the rings the loader sized: `RING_DATA` (`rings * chunks` elements) and
    /// `RING_POS` (`rings` entries).
    pub fn map(maps: &RingMaps) -> io::Result<CpuRings> {
        let (rings, chunks) = (maps.layout.rings, maps.layout.chunks());
        let elements = rings as usize * chunks as usize;
        Ok(CpuRings {
            data: Arc::new(Mapping::shared(
                maps.data.fd().as_fd(),
                elements * RING_ELEMENT_BYTES,
                false,
                0,
            )?),
            pos: Arc::new(Mapping::shared(
                maps.pos.fd().as_fd(),
                rings as usize * std::mem::size_of::<RingPos>(),
                true,
                0,
            )?),
            rings,
            chunks,
        })
    }

    /// One reader per CPU, starting at what the kernel has not been told is read.
    pub fn readers(&self) -> Vec<CpuRing> {
        (0..self.rings)
            .map(|cpu| {
                let mut r = CpuRing {
                    data: self.data.clone(),
                    pos: self.pos.clone(),
                    cpu,
                    chunks: self.chunks,
                    next: 0,
                    end: 0,
                };
                r.next = r.consumed().load(Ordering::Acquire);
                r.end = r.next;
                r
            })
            .collect()
    }
}

/// One CPU's ring.
pub struct CpuRing {
    data: Arc<Mapping>,
    pos: Arc<Mapping>,
    cpu: u32,
    chunks: u32,
    /// Position of the next record to read (ahead of `consumed` while records are being
    /// processed).
    next: u64,
    /// `produced` as the last `snapshot` saw it.
    end: u64,
}

impl CpuRing {
    fn position(&self) -> &RingPos {
        // SAFETY: `cpu < rings`, so the entry lies inside the mapping, which lives as long as
        // `self.pos`; RingPos is 64-byte aligned and the mapping page-aligned.
        unsafe {
            &*self
                .pos
                .ptr()
                .as_ptr()
                .cast::<RingPos>()
                .add(self.cpu as usize)
        }
    }

    fn produced(&self) -> &AtomicU64 {
        // SAFETY: an aligned u64 inside the mapping, shared with the kernel's writer.
        unsafe { AtomicU64::from_ptr((&raw const self.position().produced).cast_mut()) }
    }

    fn consumed(&self) -> &AtomicU64 {
        // SAFETY: as above; only this reader writes it.
        unsafe { AtomicU64::from_ptr((&raw const self.position().consumed).cast_mut()) }
    }

    /// Reads the producer position: records before it are visible to `peek` until the next
    /// snapshot. Returns the bytes pending.
    pub fn snapshot(&mut self) -> u64 {
        self.end = self.produced().load(Ordering::Acquire);
        self.end.saturating_sub(self.next)
    }

    /// The record at the read position, if one was published before the last snapshot. A
    /// record whose header is inconsistent comes back empty (it fails to decode and is
    /// counted) and covers the rest of what was published, since the next record's position
    /// cannot be known.
    pub fn peek(&self) -> Option<Record<'_>> {
        if self.next >= self.end {
            return None;
        }
        let (element, off) = locate(self.next, self.cpu, self.chunks);
        let start = element as usize * RING_ELEMENT_BYTES + off;
        // SAFETY: `element < rings * chunks` and `off` is inside its chunk, and an element has
        // room after its chunk for the largest record, so MAX_RECORD_BYTES from `start` lie
        // inside the mapping. The kernel wrote the header before publishing `end`.
        let base = unsafe { self.data.ptr().as_ptr().add(start) };
        // SAFETY: as above (a header is shorter than the largest record).
        let header = unsafe { std::slice::from_raw_parts(base, SEGMENT_EVENT_BYTES) };
        let copied = u32::from_ne_bytes(
            header[COPIED_LEN_AT..COPIED_LEN_AT + 4]
                .try_into()
                .expect("4 bytes"),
        );
        let footprint = record_footprint(copied);
        if footprint > MAX_RECORD_BYTES || self.next + footprint > self.end {
            return Some(Record {
                bytes: &[],
                footprint: self.end - self.next,
            });
        }
        // SAFETY: the whole record was published (checked just above) and lies inside the
        // mapping; the kernel writes it again only after `consumed` passes it.
        let bytes =
            unsafe { std::slice::from_raw_parts(base, SEGMENT_EVENT_BYTES + copied as usize) };
        Some(Record { bytes, footprint })
    }

    /// Moves the read position past the record `peek` returned.
    pub fn advance(&mut self, footprint: u64) {
        self.next += footprint;
    }

    /// Gives the space of every record read so far back to the kernel.
    pub fn release(&self) {
        self.consumed().store(self.next, Ordering::Release);
    }

    /// Bytes the kernel still holds for this reader (read or not).
    pub fn held(&self) -> u64 {
        self.produced()
            .load(Ordering::Acquire)
            .saturating_sub(self.consumed().load(Ordering::Acquire))
    }
}

/// Rings in plain memory, written the way the classifiers write them (tests of this module and
/// of the merge).
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub struct TestRings(CpuRings);

    impl TestRings {
        pub fn new(rings: u32, chunks: u32) -> TestRings {
            let elements = (rings * chunks) as usize;
            TestRings(CpuRings {
                data: Arc::new(Mapping::anonymous(elements * RING_ELEMENT_BYTES)),
                pos: Arc::new(Mapping::anonymous(
                    rings as usize * std::mem::size_of::<RingPos>(),
                )),
                rings,
                chunks,
            })
        }

        pub fn readers(&self) -> Vec<CpuRing> {
            self.0.readers()
        }

        /// Writes a record of `copied` bytes of `fill` at `cpu`'s producer position and
        /// publishes it; `copied_len` is written as `claimed`, and the stamp is the position.
        pub fn produce(&self, cpu: u32, copied: u32, claimed: u32, fill: u8) {
            let ts = self.position(cpu).produced;
            self.write(cpu, ts, copied, claimed, fill);
        }

        /// Publishes a record stamped `ts` with 16 payload bytes, naming `cpu` as its
        /// interface (see [`stamp_of`]).
        pub fn produce_stamped(&self, cpu: u32, ts: u64) {
            self.write(cpu, ts, 16, 16, b's');
        }

        #[allow(clippy::mut_from_ref)]
        fn position(&self, cpu: u32) -> &mut RingPos {
            // SAFETY: test memory mapped above; entry `cpu` exists, and tests write it from
            // one thread.
            unsafe {
                &mut *self
                    .0
                    .pos
                    .ptr()
                    .as_ptr()
                    .cast::<RingPos>()
                    .add(cpu as usize)
            }
        }

        fn write(&self, cpu: u32, ts: u64, copied: u32, claimed: u32, fill: u8) {
            let r = &self.0;
            let pos = self.position(cpu);
            let (element, off) = locate(pos.produced, cpu, r.chunks);
            let ev = SegmentEvent {
                kind: agent_common::KIND_SEGMENT,
                version: agent_common::EVENT_VERSION,
                direction: 0,
                tcp_flags: 0,
                family: 4,
                hook: 0,
                copy_reason: 0,
                _pad: 0,
                ifindex: cpu,
                payload_len: copied,
                ts_ns: ts,
                seq: 0,
                ack: 0,
                saddr: [0; 16],
                daddr: [0; 16],
                sport: 1,
                dport: 2,
                copied_len: claimed,
            };
            // SAFETY: inside the element (locate, and the slack after each chunk).
            unsafe {
                let base = r
                    .data
                    .ptr()
                    .as_ptr()
                    .add(element as usize * RING_ELEMENT_BYTES + off);
                std::ptr::copy_nonoverlapping(ev.as_bytes().as_ptr(), base, SEGMENT_EVENT_BYTES);
                std::ptr::write_bytes(base.add(SEGMENT_EVENT_BYTES), fill, copied as usize);
            }
            pos.produced += record_footprint(copied);
        }
    }

    /// (stamp, CPU) of a record [`TestRings::produce_stamped`] wrote.
    pub fn stamp_of(record: &[u8]) -> (u64, u32) {
        let (ev, _) = SegmentEvent::from_bytes(record).expect("well-formed");
        (ev.ts_ns, ev.ifindex)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestRings;
    use super::*;
    use agent_common::ring::RING_CHUNK_BYTES;

    /// Every record `ring` has, as (timestamp, copied bytes, all bytes equal to `fill`).
    fn read_all(ring: &mut CpuRing) -> Vec<(u64, usize)> {
        ring.snapshot();
        let mut out = Vec::new();
        while let Some(rec) = ring.peek() {
            let footprint = rec.footprint;
            let (ev, payload) = SegmentEvent::from_bytes(rec.bytes).expect("well-formed");
            assert!(payload.iter().all(|b| *b == payload[0]));
            out.push((ev.ts_ns, payload.len()));
            ring.advance(footprint);
        }
        ring.release();
        out
    }

    #[test]
    fn a_record_crossing_a_chunks_end_is_read_whole_and_the_next_starts_the_next_chunk() {
        let r = TestRings::new(2, 2);
        let mut readers = r.readers();
        // Fill CPU 1's first chunk to 16 bytes short of its end, then a 4,000-byte record.
        let mut written = 0u64;
        while written + record_footprint(4000) <= RING_CHUNK_BYTES as u64 - 16 {
            r.produce(1, 4000, 4000, b'a');
            written += record_footprint(4000);
        }
        let filler = (RING_CHUNK_BYTES as u64 - 16 - written - 72) as u32;
        r.produce(1, filler, filler, b'b');
        r.produce(1, 4000, 4000, b'c');
        r.produce(1, 10, 10, b'd');
        let got = read_all(&mut readers[1]);
        let n = got.len();
        assert_eq!(got[n - 3].1, filler as usize);
        assert_eq!(got[n - 2], (RING_CHUNK_BYTES as u64 - 16, 4000));
        assert_eq!(got[n - 1].1, 10);
        assert!(read_all(&mut readers[0]).is_empty(), "CPU 0 wrote nothing");
        assert_eq!(readers[1].held(), 0, "everything read was given back");
    }

    #[test]
    fn positions_wrap_around_the_ring_as_the_reader_gives_space_back() {
        let r = TestRings::new(1, 1);
        let mut reader = r.readers().remove(0);
        let mut seen = 0;
        for round in 0..100u8 {
            for _ in 0..10 {
                r.produce(0, 3000, 3000, round);
            }
            let got = read_all(&mut reader);
            assert_eq!(got.len(), 10);
            seen += got.len();
        }
        assert_eq!(seen, 1000, "about 23 laps of a 128 KiB ring");
    }

    #[test]
    fn an_inconsistent_header_covers_what_was_published_and_fails_to_decode() {
        let r = TestRings::new(1, 1);
        let mut reader = r.readers().remove(0);
        r.produce(0, 100, 100, b'x');
        r.produce(0, 100, 60_000, b'y');
        r.produce(0, 100, 100, b'z');
        reader.snapshot();
        let first = reader.peek().expect("first record");
        assert_eq!(first.bytes.len(), 172);
        let footprint = first.footprint;
        reader.advance(footprint);
        let bad = reader.peek().expect("the bad record");
        assert!(bad.bytes.is_empty(), "fails to decode, and is counted");
        assert_eq!(bad.footprint, 2 * record_footprint(100));
        let footprint = bad.footprint;
        reader.advance(footprint);
        assert!(reader.peek().is_none());
        reader.release();
        assert_eq!(reader.held(), 0);
    }
}
