//! The drain's merge of the per-CPU rings: every record stamped at or before a cut, across
//! rings, in timestamp order (equal stamps by ring index), at most a given number per drain.
//!
//! The rings with a record before the cut wait in a binary heap keyed by that record's stamp,
//! so a host with many CPUs pays log(rings) per ring switch, not a scan of every ring. A ring
//! leaves the heap when it holds the oldest record, and its records are then handed on in a
//! run, with no heap operation, for as long as its next one is still older than every other
//! ring's: on a quiet CPU or a burst that is most records.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::cpu_ring::CpuRing;
use super::record;

/// Records processed between two releases of ring space to the kernel.
const RELEASE_EVERY: usize = 256;

/// Rings waiting with a record before the cut: `(stamp, ring index)`, oldest first.
pub type Heads = BinaryHeap<Reverse<(u64, usize)>>;

/// What one merge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Merged {
    pub records: usize,
    /// Ring bytes the records covered.
    pub bytes: u64,
    /// Records left in the rings (stamped after the cut, or beyond `max_records`).
    pub more: bool,
}

/// Hands every record of `rings` stamped at or before `cut` (as of each ring's last snapshot)
/// to `each`, oldest first, at most `max_records`. `heads` is working space, kept by the
/// caller so that a drain does not allocate. Read space is given back to the kernel every
/// [`RELEASE_EVERY`] records; the caller releases the rest.
pub fn merge(
    rings: &mut [CpuRing],
    heads: &mut Heads,
    cut: u64,
    max_records: usize,
    mut each: impl FnMut(&[u8]),
) -> Merged {
    heads.clear();
    let mut m = Merged::default();
    for i in 0..rings.len() {
        m.more |= queue(rings, i, cut, heads);
    }
    'rings: while let Some(Reverse((_, i))) = heads.pop() {
        let other = heads.peek().map(|Reverse(head)| *head);
        loop {
            if m.records == max_records {
                m.more = true;
                break 'rings;
            }
            let ring = &mut rings[i];
            let Some(rec) = ring.peek() else {
                continue 'rings;
            };
            let footprint = rec.footprint;
            each(rec.bytes);
            ring.advance(footprint);
            m.bytes += footprint;
            m.records += 1;
            if m.records.is_multiple_of(RELEASE_EVERY) {
                ring.release();
            }
            match head(ring) {
                Some(ts) if ts <= cut && other.is_none_or(|o| (ts, i) < o) => {}
                _ => {
                    m.more |= queue(rings, i, cut, heads);
                    continue 'rings;
                }
            }
        }
    }
    m
}

/// Puts ring `i` in `heads` when its next record is stamped at or before `cut`; returns
/// whether it has one stamped after (left for a later drain).
fn queue(rings: &[CpuRing], i: usize, cut: u64, heads: &mut Heads) -> bool {
    match head(&rings[i]) {
        Some(ts) if ts <= cut => {
            heads.push(Reverse((ts, i)));
            false
        }
        Some(_) => true,
        None => false,
    }
}

/// Timestamp of the ring's next complete record (0 for one too short to carry one: it is
/// handed on, to fail decoding and be counted, first).
fn head(ring: &CpuRing) -> Option<u64> {
    let rec = ring.peek()?;
    Some(record::timestamp(rec.bytes).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::cpu_ring::testing::{TestRings, stamp_of};

    /// Writes records stamped `stamps[cpu]` into each CPU's ring, then [`drain`]s them.
    fn run(stamps: &[&[u64]], cut: u64, max: usize) -> (Vec<(u64, u32)>, Merged, TestRings) {
        let t = TestRings::new(stamps.len() as u32, 1);
        for (cpu, list) in stamps.iter().enumerate() {
            for ts in *list {
                t.produce_stamped(cpu as u32, *ts);
            }
        }
        let (got, m) = drain(&t, cut, max);
        (got, m, t)
    }

    /// Merges what the rings hold with `cut` and `max`, as a drain does (from what earlier
    /// drains gave back); (stamp, cpu) in the order handed on, and what the merge said.
    fn drain(t: &TestRings, cut: u64, max: usize) -> (Vec<(u64, u32)>, Merged) {
        let mut rings = t.readers();
        for r in &mut rings {
            r.snapshot();
        }
        let mut got = Vec::new();
        let m = merge(&mut rings, &mut Heads::new(), cut, max, |bytes| {
            got.push(stamp_of(bytes))
        });
        for r in &rings {
            r.release();
        }
        (got, m)
    }

    #[test]
    fn records_come_in_stamp_order_across_rings_with_ties_by_ring() {
        let (got, m, _) = run(
            &[&[1, 4, 5, 9, 12], &[2, 3, 5, 6, 7, 8], &[], &[5, 10, 11]],
            u64::MAX,
            usize::MAX,
        );
        let want = vec![
            (1, 0),
            (2, 1),
            (3, 1),
            (4, 0),
            (5, 0),
            (5, 1),
            (5, 3),
            (6, 1),
            (7, 1),
            (8, 1),
            (9, 0),
            (10, 3),
            (11, 3),
            (12, 0),
        ];
        assert_eq!(got, want);
        assert_eq!((m.records, m.more), (14, false));
    }

    #[test]
    fn records_after_the_cut_stay_for_the_next_drain() {
        let (got, m, t) = run(&[&[1, 6, 7], &[2, 5, 8]], 5, usize::MAX);
        assert_eq!(got, vec![(1, 0), (2, 1), (5, 1)]);
        assert!(m.more);
        let (later, m) = drain(&t, u64::MAX, usize::MAX);
        assert_eq!(later, vec![(6, 0), (7, 0), (8, 1)]);
        assert!(!m.more);
    }

    #[test]
    fn at_most_max_records_are_handed_on_and_the_rest_is_left() {
        let (got, m, t) = run(&[&[1, 2, 3, 4], &[1, 5]], u64::MAX, 3);
        assert_eq!(got, vec![(1, 0), (1, 1), (2, 0)]);
        assert!(m.more);
        let (later, _) = drain(&t, u64::MAX, usize::MAX);
        assert_eq!(later, vec![(3, 0), (4, 0), (5, 1)]);
    }

    #[test]
    fn a_long_run_of_one_ring_is_handed_on_whole_and_given_back() {
        // 1,000 records of 88 bytes: most of a one-chunk (128 KiB) ring.
        let one: Vec<u64> = (10..1_010).collect();
        let (got, m, t) = run(&[&one, &[5, 3_000]], u64::MAX, usize::MAX);
        assert_eq!(got.len(), 1_002);
        assert_eq!(got[0], (5, 1));
        assert!(got[1..1_001].iter().all(|(_, cpu)| *cpu == 0));
        assert_eq!(got[1_001], (3_000, 1));
        assert!(got.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(m.records, 1_002);
        assert!(t.readers().iter().all(|r| r.held() == 0), "all given back");
    }
}
