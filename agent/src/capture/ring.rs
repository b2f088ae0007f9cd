//! A BPF ring buffer (`BPF_MAP_TYPE_RINGBUF`; the agent's is `WAKE`, whose records only wake
//! the reader) read in place: records are borrowed straight from the shared mapping and
//! their space is given back only after they have been processed, so nothing is copied on the
//! way to the pipeline.
//!
//! Mapping (see the kernel's `ringbuf_map_mmap_kern`): one read-write page holding the consumer
//! position, then, read-only, one page holding the producer position followed by the data
//! area. The kernel offers the data area twice in a row so that a record wrapping around the
//! end is contiguous; we map it once (the pages are mapped eagerly, so a second copy would
//! double the resident size for nothing) and copy the rare wrapping record into a buffer.
//! Each record starts with an 8-byte header: its length (bit 31: still being written, bit 30:
//! discarded) and a page offset the reader ignores; records are 8-byte aligned.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const BUSY_BIT: u32 = 1 << 31;
const DISCARD_BIT: u32 = 1 << 30;
const HEADER_BYTES: u64 = 8;

/// One mapped ring buffer.
pub struct RingReader {
    consumer: NonNull<u8>,
    producer: NonNull<u8>,
    page: usize,
    data_bytes: u64,
    /// Position of the next record to read (ahead of the published consumer position while
    /// records are being processed).
    next: u64,
    /// Producer position seen by the last `snapshot`.
    end: u64,
    /// A record that wraps around the end of the data area, made contiguous.
    wrapped: Vec<u8>,
}

// SAFETY: the mappings belong to this value alone; the kernel side is synchronised through
// the atomic positions and record headers.
unsafe impl Send for RingReader {}

/// One record as it lies in a ring (a BPF ring buffer's or a CPU's).
pub struct Record<'a> {
    /// The record's bytes (without the ring's 8-byte header).
    pub bytes: &'a [u8],
    /// Discarded by the producer: skip it.
    pub discarded: bool,
    /// Ring bytes the record occupies (header and alignment included).
    pub footprint: u64,
}

impl RingReader {
    /// Maps the ring buffer map behind `fd`, of `data_bytes` (a power of two).
    pub fn new(fd: BorrowedFd<'_>, data_bytes: u32) -> io::Result<RingReader> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let data_bytes = u64::from(data_bytes);
        // SAFETY: mapping a BPF ring buffer fd as the kernel documents: one writable page at
        // offset 0, then the read-only producer page and twice the data area.
        let consumer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if consumer == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let len = page + data_bytes as usize;
        // SAFETY: as above.
        let producer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                page as libc::off_t,
            )
        };
        if producer == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            // SAFETY: unmapping what was mapped above.
            unsafe { libc::munmap(consumer, page) };
            return Err(err);
        }
        let mut r = RingReader {
            consumer: NonNull::new(consumer.cast()).ok_or_else(io::Error::last_os_error)?,
            producer: NonNull::new(producer.cast()).ok_or_else(io::Error::last_os_error)?,
            page,
            data_bytes,
            next: 0,
            end: 0,
            wrapped: Vec::new(),
        };
        r.next = r.consumer_pos().load(Ordering::Acquire);
        r.end = r.next;
        Ok(r)
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the consumer page is mapped for the lifetime of self and 8-byte aligned.
        unsafe { &*self.consumer.as_ptr().cast::<AtomicU64>() }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: as above, for the producer page.
        unsafe { &*self.producer.as_ptr().cast::<AtomicU64>() }
    }

    /// Reads the producer position: records before it are visible to `peek` until the next
    /// snapshot. Returns the bytes pending.
    pub fn snapshot(&mut self) -> u64 {
        self.end = self.producer_pos().load(Ordering::Acquire);
        self.end.saturating_sub(self.next)
    }

    /// The record at the read position, if one is complete.
    pub fn peek(&mut self) -> Option<Record<'_>> {
        if self.next >= self.end {
            return None;
        }
        let off = (self.next & (self.data_bytes - 1)) as usize;
        // SAFETY: `off` is inside the data area, which starts one page into the producer
        // mapping; record headers are 8-byte aligned.
        let hdr = unsafe {
            &*self
                .producer
                .as_ptr()
                .add(self.page + off)
                .cast::<AtomicU32>()
        };
        let word = hdr.load(Ordering::Acquire);
        if word & BUSY_BIT != 0 {
            return None;
        }
        let len = u64::from(word & !(BUSY_BIT | DISCARD_BIT));
        let footprint = (len + HEADER_BYTES + 7) & !7;
        if len > self.data_bytes || self.next + footprint > self.end {
            return None;
        }
        // SAFETY: `data_bytes` bytes follow the producer page in the mapping made in `new`;
        // the kernel does not write a record's bytes again until the consumer position passes
        // them.
        let data = unsafe {
            std::slice::from_raw_parts(
                self.producer.as_ptr().add(self.page),
                self.data_bytes as usize,
            )
        };
        let bytes = contiguous(
            data,
            off + HEADER_BYTES as usize,
            len as usize,
            &mut self.wrapped,
        );
        Some(Record {
            bytes,
            discarded: word & DISCARD_BIT != 0,
            footprint,
        })
    }

    /// Moves the read position past the record `peek` returned.
    pub fn advance(&mut self, footprint: u64) {
        self.next += footprint;
    }

    /// Gives the space of every record read so far back to the kernel.
    pub fn release(&self) {
        self.consumer_pos().store(self.next, Ordering::Release);
    }

    /// Gives every record published so far back unread.
    pub fn discard_all(&mut self) {
        self.snapshot();
        self.next = self.end;
        self.release();
    }

    /// Bytes the kernel still holds for this reader (read or not).
    pub fn held(&self) -> u64 {
        self.producer_pos()
            .load(Ordering::Acquire)
            .saturating_sub(self.consumer_pos().load(Ordering::Acquire))
    }
}

impl Drop for RingReader {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the two mappings made in `new`.
        unsafe {
            libc::munmap(
                self.producer.as_ptr().cast(),
                self.page + self.data_bytes as usize,
            );
            libc::munmap(self.consumer.as_ptr().cast(), self.page);
        }
    }
}

/// `len` bytes of the circular `data` from `start` (which may be at or past its end): borrowed
/// when they do not wrap, else copied into `buf`.
fn contiguous<'a>(data: &'a [u8], start: usize, len: usize, buf: &'a mut Vec<u8>) -> &'a [u8] {
    let start = start % data.len();
    if start + len <= data.len() {
        return &data[start..start + len];
    }
    let first = data.len() - start;
    buf.clear();
    buf.extend_from_slice(&data[start..]);
    buf.extend_from_slice(&data[..len - first]);
    buf
}

#[cfg(test)]
mod tests {
    use super::contiguous;
    use rstest::rstest;

    #[rstest]
    #[case::inside(0, 4, b"abcd")]
    #[case::up_to_the_end(4, 4, b"efgh")]
    #[case::wraps(6, 4, b"ghab")]
    #[case::starts_at_the_end(8, 3, b"abc")]
    fn records_are_contiguous(#[case] start: usize, #[case] len: usize, #[case] want: &[u8]) {
        let data = b"abcdefgh";
        let mut buf = Vec::new();
        assert_eq!(contiguous(data, start, len, &mut buf), want);
    }
}
