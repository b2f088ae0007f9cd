//! The `WAKE` ring buffer (`BPF_MAP_TYPE_RINGBUF`): a CPU whose ring passes half full writes a
//! record into it, which wakes the reader's epoll. Its records carry nothing the reader needs,
//! so they are given back unread.
//!
//! Mapping (see the kernel's `ringbuf_map_mmap_kern`): one read-write page holding the consumer
//! position at offset 0, then, read-only, a page holding the producer position. Only those two
//! positions are mapped; the data area is never read.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// The wake-up ring's two positions, mapped.
pub struct WakeRing {
    consumer: NonNull<u8>,
    producer: NonNull<u8>,
    page: usize,
}

// SAFETY: the mappings belong to this value alone; the kernel side is synchronised through
// the atomic positions.
unsafe impl Send for WakeRing {}

impl WakeRing {
    /// Maps the positions of the ring buffer map behind `fd`.
    pub fn new(fd: BorrowedFd<'_>) -> io::Result<WakeRing> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let map = |prot, offset| {
            // SAFETY: mapping one page of a BPF ring buffer fd at an offset the kernel
            // documents (0: consumer page, read-write; one page in: producer page, read-only).
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    page,
                    prot,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    offset,
                )
            };
            if p == libc::MAP_FAILED {
                Err(io::Error::last_os_error())
            } else {
                NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)
            }
        };
        let consumer = map(libc::PROT_READ | libc::PROT_WRITE, 0)?;
        let producer = match map(libc::PROT_READ, page as libc::off_t) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: unmapping what was mapped just above.
                unsafe { libc::munmap(consumer.as_ptr().cast(), page) };
                return Err(e);
            }
        };
        Ok(WakeRing {
            consumer,
            producer,
            page,
        })
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the consumer page is mapped for the lifetime of self and 8-byte aligned.
        unsafe { &*self.consumer.as_ptr().cast::<AtomicU64>() }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: as above, for the producer page.
        unsafe { &*self.producer.as_ptr().cast::<AtomicU64>() }
    }

    /// Gives every record published so far back unread.
    pub fn discard_all(&mut self) {
        let end = self.producer_pos().load(Ordering::Acquire);
        self.consumer_pos().store(end, Ordering::Release);
    }
}

impl Drop for WakeRing {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the two pages mapped in `new`.
        unsafe {
            libc::munmap(self.producer.as_ptr().cast(), self.page);
            libc::munmap(self.consumer.as_ptr().cast(), self.page);
        }
    }
}
