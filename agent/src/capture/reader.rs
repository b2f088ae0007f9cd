//! [`SegmentSource`]: the per-CPU rings read in place, merged in timestamp order.
//!
//! The classifiers never wake the reader on their own (no wake-up per record, no IPI): the
//! analysis thread drains on its own short timer, and a CPU whose ring passes half full wakes
//! it early (a record in the small `WAKE` ring buffer). Each drain first reads the clock, then
//! every ring's producer position, and hands on only records stamped before that clock
//! reading, merged across rings by timestamp. That keeps the two directions of a connection in
//! causal order even when they are captured on different CPUs: a response is caused by its
//! request, whose record was published before the response was stamped, so by the time the
//! response is older than the cut, the request is in its ring. Later records stay in their
//! ring for the next drain.

use agent_core::segment::Segment;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tracing::trace;

use super::clock::monotonic_ns;
use super::cpu_ring::{CpuRing, CpuRings};
use super::loader::RingMaps;
use super::merge::{self, Heads};
use super::port_map::CopyHints;
use super::record;
use super::ring::WakeRing;
use super::stats::UserCounters;

/// Why [`SegmentSource::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The timeout passed.
    Timeout,
    /// A ring is filling up: drain now.
    Ring,
    /// Capture is shutting down: drain what is left and stop.
    Stop,
}

/// Wakes a [`SegmentSource`] blocked in `wait` for good (capture shutdown).
#[derive(Debug)]
pub struct StopSignal(OwnedFd);

impl StopSignal {
    pub fn stop(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a local to our own eventfd.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// What one drain did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    pub records: usize,
    /// Records left in the rings (stamped after the cut, or beyond `max_records`).
    pub more: bool,
}

pub struct SegmentSource {
    rings: Vec<CpuRing>,
    /// The merge's working space (kept for its room).
    heads: Heads,
    /// The wake-up ring: its records only end `wait` early.
    wake: WakeRing,
    /// Keeps the ring maps (and the wake ring's fd, registered with epoll) alive.
    _maps: RingMaps,
    epoll: OwnedFd,
    stop: Arc<StopSignal>,
    stopped: bool,
    hints: Option<CopyHints>,
    counters: Arc<UserCounters>,
    wall_offset_ns: i64,
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl SegmentSource {
    pub fn new(
        maps: RingMaps,
        hints: Option<CopyHints>,
        counters: Arc<UserCounters>,
        wall_offset_ns: i64,
    ) -> io::Result<SegmentSource> {
        let rings = CpuRings::map(&maps)?.readers();
        let wake = WakeRing::new(maps.wake.fd().as_fd())?;
        // SAFETY: plain syscalls; the returned fds are owned below.
        let epoll = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        // SAFETY: as above.
        let efd = unsafe {
            OwnedFd::from_raw_fd(cvt(libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
            ))?)
        };
        let add = |fd: i32, token: u64, flags: u32| -> io::Result<()> {
            let mut ev = libc::epoll_event {
                events: flags,
                u64: token,
            };
            // SAFETY: registering a live fd with our epoll instance.
            cvt(unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })
                .map(|_| ())
        };
        // Edge-triggered: only the kernel's explicit wake-up (a ring half full) ends a wait.
        add(
            maps.wake.fd().as_fd().as_raw_fd(),
            0,
            (libc::EPOLLIN | libc::EPOLLET) as u32,
        )?;
        add(efd.as_raw_fd(), u64::MAX, libc::EPOLLIN as u32)?;
        Ok(SegmentSource {
            heads: Heads::with_capacity(rings.len()),
            rings,
            wake,
            _maps: maps,
            epoll,
            stop: Arc::new(StopSignal(efd)),
            stopped: false,
            hints,
            counters,
            wall_offset_ns,
        })
    }

    /// What the analysis thread shows each transaction to, so that servers whose messages
    /// heads alone do not frame get copied in full (once; later calls return `None`).
    pub fn take_copy_hints(&mut self) -> Option<CopyHints> {
        self.hints.take()
    }

    /// A handle that ends [`SegmentSource::wait`] with [`Wake::Stop`].
    pub fn stop_signal(&self) -> Arc<StopSignal> {
        self.stop.clone()
    }

    /// Blocks until a ring asks to be drained, capture stops, or `timeout` passes.
    pub fn wait(&mut self, timeout: Duration) -> Wake {
        if self.stopped {
            return Wake::Stop;
        }
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `events` is a valid buffer of 8 entries.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), 8, ms) };
        if n <= 0 {
            return Wake::Timeout;
        }
        let mut wake = Wake::Timeout;
        for ev in &events[..n as usize] {
            if ev.u64 == u64::MAX {
                self.stopped = true;
                return Wake::Stop;
            }
            wake = Wake::Ring;
        }
        if wake == Wake::Ring {
            self.counters.wakeups.fetch_add(1, Relaxed);
        }
        wake
    }

    /// Hands at most `max_records` records, stamped before now, to `f` in timestamp order
    /// (every record when `everything`, at shutdown). Ring space is given back as it goes.
    pub fn drain(
        &mut self,
        max_records: usize,
        everything: bool,
        mut f: impl FnMut(&Segment<'_>),
    ) -> Drained {
        let cut = if everything { u64::MAX } else { monotonic_ns() };
        self.wake.discard_all();
        let mut fullest = 0;
        for r in &mut self.rings {
            fullest = fullest.max(r.snapshot());
        }
        self.counters.ring_peak_bytes.fetch_max(fullest, Relaxed);
        let (wall_offset_ns, counters) = (self.wall_offset_ns, &self.counters);
        let m = merge::merge(
            &mut self.rings,
            &mut self.heads,
            cut,
            max_records,
            |bytes| match record::decode(bytes, wall_offset_ns) {
                Ok(seg) => f(&seg),
                Err(e) => {
                    counters.decode_errors.fetch_add(1, Relaxed);
                    trace!("undecodable record: {e}");
                }
            },
        );
        for r in &self.rings {
            r.release();
        }
        // Counted once per drain: an atomic add per record cost ~4 % of the thread.
        self.counters
            .events_read
            .fetch_add(m.records as u64, Relaxed);
        self.counters.ring_bytes.fetch_add(m.bytes, Relaxed);
        Drained {
            records: m.records,
            more: m.more,
        }
    }

    /// Records the bytes the kernel holds across the rings (read or not) for the self-metric.
    pub fn publish_held_bytes(&self) {
        let held = self.rings.iter().map(CpuRing::held).sum();
        self.counters.ring_held_bytes.store(held, Relaxed);
    }
}
