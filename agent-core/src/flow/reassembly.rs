//! Per-direction TCP reassembly by sequence number (wrapping `u32` arithmetic).
//!
//! In-order payload is handed on without copying. Segments ahead of the next expected byte
//! wait (copied) within the reorder window (bytes ahead, segments held, the flow budget); the
//! first copy of a byte wins and differing overlaps are counted. Bytes that will not come are
//! reported as [`Piece::Missing`] with `lost: true` when those bounds overflow, when the peer's
//! acknowledgement of them outlives the reorder window (`flow::order`), after the gap timeout,
//! or at the end of the flow. Bytes the capture saw but did not copy are `lost: false`.
//!
//! What it counts is its own ([`ReassemblyStats`]); the engine sums it with the other layers'.

pub use crate::stream::Piece;

/// Reassembly counters, summed over every flow and direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Times reassembly gave up waiting for missing bytes.
    pub gaps: u64,
    /// Sequence-space bytes that never arrived.
    pub gap_bytes: u64,
    /// Bytes received again after they were already delivered or buffered.
    pub retransmit_bytes: u64,
    /// Overlapping bytes whose content differed from the first copy (which wins).
    pub overlap_conflicts: u64,
    pub out_of_order_segments: u64,
    /// Payload bytes client -> server, each sequence range counted once, when it first arrives
    /// (a retransmit, or a packet captured on two interfaces, counts once).
    pub first_seen_request_bytes: u64,
    /// The same, server -> client.
    pub first_seen_response_bytes: u64,
    /// Times the peer acknowledged bytes not seen yet (evidence of loss, held for the reorder
    /// window; one per episode, however many ACKs repeat it).
    pub reorder_evidence: u64,
    /// Evidence resolved by the acknowledged bytes arriving within the window (reordering).
    pub reorder_recovered: u64,
    /// Reorder windows that passed without the acknowledged bytes: they were declared lost.
    pub reorder_window_expired: u64,
    /// Times a direction's reorder bounds (a segment past the window, segments held or
    /// parked, bytes, flow budget) forced the decision before the window passed.
    pub reorder_limit: u64,
}

/// Receives reassembled pieces with the timestamp and the acknowledgement number (when it had
/// one) of the segment that carried them.
pub trait PieceSink {
    fn piece(&mut self, piece: Piece<'_>, ts_ns: u64, ack: Option<u32>);
}

/// One segment's part of a direction, as [`Reassembler::push`] takes it.
#[derive(Clone, Copy, Debug)]
pub struct Payload<'a> {
    /// Sequence number of the first payload byte (after the SYN, when there is one).
    pub seq: u32,
    /// True payload length (`copied` may be shorter).
    pub len: u32,
    pub copied: &'a [u8],
    pub fin: bool,
    pub ts_ns: u64,
    /// The segment's acknowledgement number, when its ACK flag was set.
    pub ack: Option<u32>,
}

/// How much a direction may hold back while it waits for missing bytes.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// How far ahead of the next expected byte a segment may be held.
    pub window: u32,
    /// Bytes this direction may hold (what the flow budget leaves it).
    pub held_max: usize,
    /// Out-of-order segments this direction may hold.
    pub segments_max: usize,
}

#[derive(Debug)]
struct Held {
    seq: u32,
    /// True length in sequence space.
    len: u32,
    /// Copied prefix (may be shorter than `len`).
    data: Vec<u8>,
    ts_ns: u64,
    ack: Option<u32>,
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// Where the stream starts (after the SYN, or the first byte seen); set with `next`.
    start: u32,
    next: Option<u32>,
    held: Vec<Held>,
    held_bytes: usize,
    fin: Option<u32>,
    ended: bool,
    /// Timestamp of the last delivered segment (used when a flush has no segment of its own).
    last_ts_ns: u64,
    /// Bytes of this direction declared lost so far (wrapping: compared, never summed).
    lost: u32,
}

/// Signed distance from `from` to `to` in sequence space.
fn dist(from: u32, to: u32) -> i64 {
    i64::from(to.wrapping_sub(from) as i32)
}

impl Reassembler {
    /// Bytes held out of order (counted against the budgets).
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Gives back the held list's capacity once nothing is held.
    pub fn release(&mut self) {
        if self.held.is_empty() && self.held.capacity() > 0 {
            self.held = Vec::new();
        }
    }

    /// Heap bytes held (the held list and the copies in it).
    pub fn heap_bytes(&self) -> usize {
        self.held.capacity() * std::mem::size_of::<Held>()
            + self.held.iter().map(|h| h.data.capacity()).sum::<usize>()
    }

    /// Where the stream starts (after the SYN, or at the first byte seen), once known.
    pub fn start_seq(&self) -> Option<u32> {
        self.next.map(|_| self.start)
    }

    /// The next expected sequence number, once known.
    pub fn next_seq(&self) -> Option<u32> {
        self.next
    }

    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether the peer's acknowledgement `ack` covers bytes this direction has not delivered
    /// yet (at most `window` bytes ahead; an acknowledgement of the FIN counts up to the FIN).
    pub fn unseen_below(&self, ack: u32, window: u32) -> bool {
        match self.next {
            Some(n) if !self.ended => {
                let target = match self.fin {
                    Some(f) if dist(f, ack) > 0 => f,
                    _ => ack,
                };
                let d = dist(n, target);
                d > 0 && d <= i64::from(window)
            }
            _ => false,
        }
    }

    /// Bytes of this direction declared lost so far (wrapping).
    pub fn lost_bytes(&self) -> u32 {
        self.lost
    }

    /// Timestamp of the oldest held segment.
    pub fn oldest_held_ns(&self) -> Option<u64> {
        self.held.iter().map(|h| h.ts_ns).min()
    }

    /// FIN delivered: nothing more comes this way.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The SYN gives the initial sequence number.
    pub fn syn(&mut self, isn: u32) {
        if self.next.is_none() {
            self.next = Some(isn.wrapping_add(1));
            self.start = isn.wrapping_add(1);
        }
    }

    /// Takes one segment's payload and FIN flag. Returns how many of its bytes this
    /// direction had not seen before (each sequence range counts once, when it first arrives,
    /// whether delivered at once or held).
    pub fn push(
        &mut self,
        p: Payload<'_>,
        bounds: Bounds,
        stats: &mut ReassemblyStats,
        sink: &mut impl PieceSink,
    ) -> u64 {
        let Payload {
            seq,
            len,
            copied,
            fin,
            ts_ns,
            ack,
        } = p;
        let copied = &copied[..copied.len().min(len as usize)];
        if self.next.is_none() {
            self.start = seq;
        }
        let next = *self.next.get_or_insert(seq);
        if self.ended {
            stats.retransmit_bytes += u64::from(len);
            return 0;
        }
        if fin && self.fin.is_none() {
            self.fin = Some(seq.wrapping_add(len));
        }
        let mut new = 0;
        if len > 0 {
            let off = dist(next, seq);
            if off <= 0 && self.held.is_empty() {
                new = self.deliver(seq, len, copied, ts_ns, ack, stats, sink);
            } else if off > i64::from(bounds.window) {
                stats.reorder_limit += 1;
                self.flush(None, stats, sink);
                let next = self.next.unwrap_or(seq);
                let hole = dist(next, seq);
                if hole > 0 {
                    self.lose(hole as u32, ts_ns, stats, sink);
                }
                new = self.deliver(seq, len, copied, ts_ns, ack, stats, sink);
            } else {
                if off > 0 {
                    stats.out_of_order_segments += 1;
                }
                new = self.hold(seq, len, copied, ts_ns, ack, stats);
                self.drain(stats, sink);
                if self.held_bytes > bounds.held_max || self.held.len() > bounds.segments_max {
                    stats.reorder_limit += 1;
                    self.flush(None, stats, sink);
                }
            }
        }
        self.check_fin(ts_ns, sink);
        new
    }

    /// A reset: held bytes are lost (counted) and the direction starts over.
    pub fn discard(&mut self, stats: &mut ReassemblyStats) {
        let held = self.held_bytes as u64;
        if held > 0 {
            stats.gaps += 1;
            stats.gap_bytes += held;
        }
        *self = Reassembler::default();
    }

    /// Gives up waiting: bytes before each held segment (and before `upto`, when given) are
    /// reported lost. With `upto`, only data before that sequence number is forced.
    pub fn flush(
        &mut self,
        upto: Option<u32>,
        stats: &mut ReassemblyStats,
        sink: &mut impl PieceSink,
    ) {
        let Some(mut next) = self.next else { return };
        if self.ended {
            return;
        }
        while let Some(first) = self.held.first() {
            if upto.is_some_and(|u| dist(first.seq, u) <= 0) {
                break;
            }
            let hole = dist(next, first.seq);
            if hole > 0 {
                let ts = first.ts_ns;
                self.lose(hole as u32, ts, stats, sink);
            }
            self.drain(stats, sink);
            next = self.next.unwrap_or(next);
        }
        if let Some(u) = upto {
            let target = match self.fin {
                Some(f) if dist(f, u) > 0 => f,
                _ => u,
            };
            let hole = dist(next, target);
            if hole > 0 {
                let ts = self.held.first().map_or(0, |h| h.ts_ns);
                self.lose(hole as u32, ts, stats, sink);
                self.drain(stats, sink);
            }
        }
        self.check_fin(0, sink);
    }

    /// End of the flow: held data is forced out and, when a FIN was seen, the end delivered.
    pub fn close(&mut self, stats: &mut ReassemblyStats, sink: &mut impl PieceSink) {
        self.flush(None, stats, sink);
        if let (Some(f), Some(n)) = (self.fin, self.next)
            && !self.ended
            && dist(n, f) > 0
        {
            self.lose(dist(n, f) as u32, 0, stats, sink);
            self.check_fin(0, sink);
        }
    }

    fn lose(
        &mut self,
        len: u32,
        ts_ns: u64,
        stats: &mut ReassemblyStats,
        sink: &mut impl PieceSink,
    ) {
        let ts_ns = if ts_ns == 0 { self.last_ts_ns } else { ts_ns };
        stats.gaps += 1;
        stats.gap_bytes += u64::from(len);
        self.lost = self.lost.wrapping_add(len);
        if let Some(n) = self.next.as_mut() {
            *n = n.wrapping_add(len);
        }
        sink.piece(Piece::Missing { len, lost: true }, ts_ns, None);
    }

    /// Delivers a segment that starts at or before `next`, trimming what was already seen;
    /// returns the bytes past `next` (new to the stream).
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        seq: u32,
        len: u32,
        data: &[u8],
        ts_ns: u64,
        ack: Option<u32>,
        stats: &mut ReassemblyStats,
        sink: &mut impl PieceSink,
    ) -> u64 {
        let next = self.next.unwrap_or(seq);
        self.last_ts_ns = self.last_ts_ns.max(ts_ns);
        let back = (-dist(next, seq)).max(0) as u64;
        if back >= u64::from(len) {
            stats.retransmit_bytes += u64::from(len);
            return 0;
        }
        let back = back as u32;
        stats.retransmit_bytes += u64::from(back);
        let copied = &data[(back as usize).min(data.len())..];
        let fresh = len - back;
        self.next = Some(next.wrapping_add(fresh));
        if !copied.is_empty() {
            sink.piece(Piece::Data(copied), ts_ns, ack);
        }
        let uncopied = fresh - copied.len() as u32;
        if uncopied > 0 {
            sink.piece(
                Piece::Missing {
                    len: uncopied,
                    lost: false,
                },
                ts_ns,
                ack,
            );
        }
        u64::from(fresh)
    }

    /// Delivers held segments that became contiguous.
    fn drain(&mut self, stats: &mut ReassemblyStats, sink: &mut impl PieceSink) {
        while let Some(first) = self.held.first() {
            let next = self.next.unwrap_or(first.seq);
            if dist(next, first.seq) > 0 {
                break;
            }
            let h = self.held.remove(0);
            self.held_bytes -= h.data.len();
            self.deliver(h.seq, h.len, &h.data, h.ts_ns, h.ack, stats, sink);
        }
    }

    /// Stores the parts of a segment not already held (first copy wins), counting conflicts;
    /// returns the bytes neither held nor delivered before.
    #[allow(clippy::too_many_arguments)]
    fn hold(
        &mut self,
        seq: u32,
        len: u32,
        data: &[u8],
        ts_ns: u64,
        ack: Option<u32>,
        stats: &mut ReassemblyStats,
    ) -> u64 {
        let next = self.next.unwrap_or(seq);
        let rel = |s: u32| dist(next, s);
        let (start, end) = (rel(seq), rel(seq) + i64::from(len));
        let mut cursor = start;
        let mut fresh: Vec<(i64, i64)> = Vec::new();
        for h in &self.held {
            let (hs, he) = (rel(h.seq), rel(h.seq) + i64::from(h.len));
            if he <= cursor {
                continue;
            }
            if hs >= end {
                break;
            }
            if hs > cursor {
                fresh.push((cursor, hs));
            }
            let (os, oe) = (cursor.max(hs), end.min(he));
            stats.retransmit_bytes += (oe - os) as u64;
            for i in os..oe {
                let a = data.get((i - start) as usize);
                let b = h.data.get((i - hs) as usize);
                if let (Some(a), Some(b)) = (a, b)
                    && a != b
                {
                    stats.overlap_conflicts += 1;
                }
            }
            cursor = oe;
        }
        if cursor < end {
            fresh.push((cursor, end));
        }
        // Offsets below 0 were delivered already: they are trimmed (as retransmits) when drained.
        let new = fresh
            .iter()
            .map(|&(s, e)| (e - s.max(0)).max(0) as u64)
            .sum();
        for (s, e) in fresh {
            let lo = ((s - start) as usize).min(data.len());
            let hi = ((e - start) as usize).min(data.len());
            let piece = Held {
                seq: next.wrapping_add(s as u32),
                len: (e - s) as u32,
                data: data[lo..hi].to_vec(),
                ts_ns,
                ack,
            };
            self.held_bytes += piece.data.len();
            let at = self.held.partition_point(|h| rel(h.seq) < s);
            self.held.insert(at, piece);
        }
        new
    }

    fn check_fin(&mut self, ts_ns: u64, sink: &mut impl PieceSink) {
        if let (Some(f), Some(n)) = (self.fin, self.next)
            && !self.ended
            && self.held.is_empty()
            && dist(n, f) <= 0
        {
            self.ended = true;
            let ts_ns = if ts_ns == 0 { self.last_ts_ns } else { ts_ns };
            sink.piece(Piece::End, ts_ns, None);
        }
    }
}
