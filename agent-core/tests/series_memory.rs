//! The series ring's memory is fixed: after every service has been seen, hours of simulated
//! seconds (the ring's clock is whatever the caller says) allocate nothing more. Measured with
//! a counting global allocator, so every byte the ring holds is seen, not estimated.

use agent_core::series::{SeriesRing, WINDOW_S};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const NS: u64 = 1_000_000_000;
const T0: u64 = 1_795_000_000;
const MAX_SERVICES: usize = 64;
/// More services than the cap: the rest fold into `other`.
const SERVICES: usize = 80;

/// One simulated second: every service completes a few exchanges with varied durations.
fn second(ring: &mut SeriesRing, names: &[String], s: u64) {
    for (i, name) in names.iter().enumerate() {
        let n = 1 + (s as usize + i) % 2;
        for k in 0..n {
            let d = 1e-5 * (1 + (s as usize * 7 + i * 13 + k * 31) % 100_000) as f64;
            let end = (T0 + s) * NS + (k as u64 * 1_000_000);
            ring.record(name, end, (s + k as u64).is_multiple_of(17), Some(d));
        }
    }
    // A straggler from a few seconds ago, as a slow request would be.
    ring.record(&names[0], (T0 + s.saturating_sub(6)) * NS, false, Some(2.0));
}

#[test]
fn memory_stays_fixed_over_hours_of_simulated_seconds() {
    let names: Vec<String> = (0..SERVICES).map(|i| format!("service-{i}")).collect();
    let base = LIVE.load(Ordering::SeqCst);
    let mut ring = SeriesRing::new(MAX_SERVICES);

    // Warm-up: every service seen, every slot and open histogram touched once.
    let warm = 2 * WINDOW_S as u64;
    for s in 0..warm {
        second(&mut ring, &names, s);
    }
    let after_warmup = LIVE.load(Ordering::SeqCst) - base;
    assert_eq!(ring.len(), MAX_SERVICES + 1, "64 named services plus other");

    // Four hours more, snapshotting every five simulated minutes (snapshots are freed after use).
    let hours = 4 * 3600;
    for s in warm..warm + hours {
        second(&mut ring, &names, s);
        if s.is_multiple_of(300) {
            let snap = ring.snapshot((T0 + s) * NS);
            assert_eq!(snap.services.len(), MAX_SERVICES + 1);
        }
        assert_eq!(
            LIVE.load(Ordering::SeqCst) - base,
            after_warmup,
            "memory changed at simulated second {s}"
        );
    }
    let end = LIVE.load(Ordering::SeqCst) - base;
    assert_eq!(end, after_warmup);

    // And it is what the ring says it is: rings within their bound, the rest is names and
    // the index table.
    assert!(
        ring.bytes_bound() <= end && end <= ring.bytes_bound() + 16 * 1024,
        "live {end} bytes, bound {}",
        ring.bytes_bound()
    );
    let stats = ring.stats();
    assert!(stats.folded_services > 0);
    assert!(
        stats.late_latencies > 0,
        "stragglers past the open seconds are counted"
    );
    eprintln!(
        "series ring: {end} bytes for {} services ({} per service), {stats:?}",
        ring.len(),
        SeriesRing::bytes_per_service()
    );
}
