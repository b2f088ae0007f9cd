//! Memory shared with the kernel through a BPF map's file descriptor (`mmap`), unmapped when
//! dropped. The per-CPU rings (`cpu_ring`) and the wake-up ring's positions (`ring`) are read
//! and written through such mappings.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::ptr::NonNull;

/// A mapping, owned: unmapped on drop.
pub(super) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; its users synchronise with the kernel through atomic
// positions and read only what the kernel no longer writes (see `cpu_ring` and `ring`).
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `bytes` (rounded up to whole pages) of the map behind `fd` from `offset`, shared with
    /// the kernel; read-only unless `writable`. The offset is the map type's to define (0 for
    /// an mmap-able array's values; one page in for a ring buffer's producer page).
    pub(super) fn shared(
        fd: BorrowedFd<'_>,
        bytes: usize,
        writable: bool,
        offset: usize,
    ) -> io::Result<Mapping> {
        let len = bytes.div_ceil(page_size()) * page_size();
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        map(len, prot, libc::MAP_SHARED, fd.as_raw_fd(), offset)
    }

    /// Private anonymous memory, standing in for a map in tests.
    #[cfg(test)]
    pub(super) fn anonymous(bytes: usize) -> Mapping {
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        map(bytes, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0).expect("mapped")
    }

    /// The first byte.
    pub(super) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `map`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The system's page size.
pub(super) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

fn map(len: usize, prot: i32, flags: i32, fd: RawFd, offset: usize) -> io::Result<Mapping> {
    // SAFETY: a new mapping at an address the kernel picks, owned by the returned value; the
    // callers pass an fd and offset the kernel documents for the map, or an anonymous mapping.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            flags,
            fd,
            offset as libc::off_t,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let ptr = NonNull::new(ptr.cast()).ok_or_else(io::Error::last_os_error)?;
    Ok(Mapping { ptr, len })
}
