//! The `WAKE` ring buffer (`BPF_MAP_TYPE_RINGBUF`): a CPU whose ring passes half full writes a
//! record into it, which wakes the reader's epoll. Its records carry nothing the reader needs,
//! so they are given back unread.
//!
//! Mapping (see the kernel's `ringbuf_map_mmap_kern`): one read-write page holding the consumer
//! position at offset 0, then, read-only, a page holding the producer position. Only those two
//! positions are mapped; the data area is never read.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use super::mapping::{Mapping, page_size};

/// The wake-up ring's two positions, mapped.
pub struct WakeRing {
    consumer: Mapping,
    producer: Mapping,
}

impl WakeRing {
    /// Maps the positions of the ring buffer map behind `fd`: the consumer page (offset 0,
    /// read-write) and the producer page (one page in, read-only), as the kernel documents.
    pub fn new(fd: BorrowedFd<'_>) -> io::Result<WakeRing> {
        let page = page_size();
        Ok(WakeRing {
            consumer: Mapping::shared(fd, page, true, 0)?,
            producer: Mapping::shared(fd, page, false, page)?,
        })
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the consumer page is mapped for the lifetime of self and 8-byte aligned.
        unsafe { &*self.consumer.ptr().as_ptr().cast::<AtomicU64>() }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: as above, for the producer page.
        unsafe { &*self.producer.ptr().as_ptr().cast::<AtomicU64>() }
    }

    /// Gives every record published so far back unread.
    pub fn discard_all(&mut self) {
        let end = self.producer_pos().load(Ordering::Acquire);
        self.consumer_pos().store(end, Ordering::Release);
    }
}
