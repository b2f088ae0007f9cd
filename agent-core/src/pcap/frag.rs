//! IPv4 and IPv6 fragment reassembly for replay, in a bounded table.
//!
//! Datagrams are keyed by (addresses, protocol, identification). A datagram is complete when
//! its last fragment (no "more fragments") has been seen and every byte before it is covered;
//! it is then rebuilt as one unfragmented IP packet and decoded again, so a fragmented tunnel
//! packet and a fragmented TCP segment are treated alike. Overlaps keep the first copy (a
//! differing copy is counted). Bounds: [`FragmentLimits`] (datagrams in flight, bytes held,
//! time to complete, in packet time); what they drop is counted, never silent.
//!
//! A capture cut by its snap length still reassembles: the rebuilt packet carries the true
//! length in its header and the captured prefix as data, like any cut packet.

use std::net::IpAddr;

use super::ip::Fragment;

/// The bounds of the reassembly table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentLimits {
    /// Datagrams being reassembled at once; a new one past it evicts the oldest.
    pub max_datagrams: usize,
    /// Fragment bytes held in total; past it the oldest datagrams are evicted.
    pub max_bytes: usize,
    /// A datagram not complete this long after its first fragment (packet time) is dropped
    /// (Linux's `ipfrag_time` default).
    pub timeout_ns: u64,
}

impl Default for FragmentLimits {
    fn default() -> Self {
        FragmentLimits {
            max_datagrams: 1024,
            max_bytes: 8 << 20,
            timeout_ns: 30_000_000_000,
        }
    }
}

/// What the table did, in fragments (packets) unless named otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragmentStats {
    /// Fragments received.
    pub fragments: u64,
    /// Datagrams completed and decoded.
    pub reassembled: u64,
    /// Fragments dropped because their datagram was incomplete after the timeout.
    pub timed_out: u64,
    /// Fragments dropped because the table was full (datagrams or bytes).
    pub overflow: u64,
    /// Fragments that cannot belong to a datagram (past 65,535 bytes, inconsistent end).
    pub invalid: u64,
    /// Overlapping fragment bytes that differ from the first copy (the first copy is kept).
    pub conflicts: u64,
    /// Fragments held now, waiting for the rest of their datagram.
    pub pending: u64,
    /// Bytes held now (bounded by [`FragmentLimits::max_bytes`]).
    pub pending_bytes: u64,
}

/// The largest IP datagram (IPv4 total length; IPv6 without jumbograms).
const MAX_DATAGRAM: u32 = 65_535;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
}

#[derive(Debug)]
struct Datagram {
    key: Key,
    first_ns: u64,
    /// Received byte ranges (true lengths), sorted and merged.
    seen: Vec<(u32, u32)>,
    /// Captured byte ranges, sorted and merged.
    captured: Vec<(u32, u32)>,
    /// Captured bytes at their offsets (holes are zero until filled).
    data: Vec<u8>,
    /// Length of the datagram, once its last fragment arrived.
    total: Option<u32>,
    /// IPv4 header of the first fragment.
    v4_header: Vec<u8>,
    fragments: u64,
}

/// The reassembly table.
#[derive(Debug, Default)]
pub struct Fragments {
    limits: FragmentLimits,
    /// In arrival order of first fragments (oldest first); small, so a scan is cheap.
    open: Vec<Datagram>,
    bytes: usize,
    stats: FragmentStats,
}

impl Fragments {
    pub fn new(limits: FragmentLimits) -> Fragments {
        Fragments {
            limits,
            ..Fragments::default()
        }
    }

    pub fn stats(&self) -> &FragmentStats {
        &self.stats
    }

    /// Adds a fragment seen at `now_ns`; returns the rebuilt IP packet when it completes its
    /// datagram.
    pub fn insert(&mut self, f: &Fragment<'_>, now_ns: u64) -> Option<Vec<u8>> {
        self.stats.fragments += 1;
        self.expire(now_ns);
        let packet = self.add(f, now_ns);
        if packet.is_some() {
            self.stats.reassembled += 1;
        }
        self.stats.pending = self.open.iter().map(|d| d.fragments).sum();
        self.stats.pending_bytes = self.bytes as u64;
        packet
    }

    fn add(&mut self, f: &Fragment<'_>, now_ns: u64) -> Option<Vec<u8>> {
        let end = f.offset.saturating_add(f.len);
        if end > MAX_DATAGRAM || (f.more && !f.len.is_multiple_of(8)) {
            self.stats.invalid += 1;
            return None;
        }
        let captured = &f.data[..f.data.len().min(f.len as usize)];
        let key = Key {
            src: f.src,
            dst: f.dst,
            proto: f.proto,
            id: f.id,
        };
        let mut at = self.open.iter().position(|d| d.key == key);
        let held = at.map_or(0, |i| self.open[i].data.len());
        let growth = (f.offset as usize + captured.len()).saturating_sub(held);
        // Room: the oldest other datagrams go first.
        while self.bytes + growth > self.limits.max_bytes
            || (at.is_none() && self.open.len() >= self.limits.max_datagrams)
        {
            let victim = usize::from(at == Some(0));
            if victim >= self.open.len() {
                self.stats.overflow += 1;
                return None;
            }
            self.stats.overflow += self.open[victim].fragments;
            self.remove(victim);
            if let Some(i) = at.as_mut()
                && victim < *i
            {
                *i -= 1;
            }
        }
        let at = at.unwrap_or_else(|| {
            self.open.push(Datagram {
                key,
                first_ns: now_ns,
                seen: Vec::new(),
                captured: Vec::new(),
                data: Vec::new(),
                total: None,
                v4_header: Vec::new(),
                fragments: 0,
            });
            self.open.len() - 1
        });
        let d = &mut self.open[at];
        let known_end = d.seen.last().map_or(0, |r| r.1);
        let inconsistent = if f.more {
            d.total.is_some_and(|t| end > t)
        } else {
            d.total.is_some_and(|t| t != end) || known_end > end
        };
        if inconsistent {
            // Two different ends: the datagram cannot be rebuilt.
            self.stats.invalid += d.fragments + 1;
            self.remove(at);
            return None;
        }
        d.fragments += 1;
        if !f.more {
            d.total = Some(end);
        }
        if f.offset == 0 && d.v4_header.is_empty() {
            d.v4_header = f.v4_header.to_vec();
        }
        add_range(&mut d.seen, f.offset, end);
        let before = d.data.len();
        self.stats.conflicts += write_fresh(d, f.offset, captured);
        self.bytes += d.data.len() - before;
        let complete = d.total.is_some_and(|t| d.seen.first() == Some(&(0, t)));
        if !complete {
            return None;
        }
        let packet = rebuild(d);
        self.remove(at);
        Some(packet)
    }

    /// Drops datagrams whose first fragment is older than the timeout.
    fn expire(&mut self, now_ns: u64) {
        let timeout = self.limits.timeout_ns;
        while let Some(at) = self
            .open
            .iter()
            .position(|d| now_ns.saturating_sub(d.first_ns) >= timeout)
        {
            self.stats.timed_out += self.open[at].fragments;
            self.remove(at);
        }
    }

    fn remove(&mut self, at: usize) {
        let d = self.open.remove(at);
        self.bytes -= d.data.len();
    }
}

/// Merges `[start, end)` into sorted, disjoint `ranges`.
fn add_range(ranges: &mut Vec<(u32, u32)>, start: u32, end: u32) {
    if start >= end {
        return;
    }
    let (mut s, mut e) = (start, end);
    ranges.retain(|&(a, b)| {
        if b < s || a > e {
            true
        } else {
            s = s.min(a);
            e = e.max(b);
            false
        }
    });
    let at = ranges.partition_point(|r| r.0 < s);
    ranges.insert(at, (s, e));
}

/// Writes the captured bytes of a fragment where nothing was captured before; returns how many
/// overlapping bytes differ from what is already there.
fn write_fresh(d: &mut Datagram, offset: u32, bytes: &[u8]) -> u64 {
    let (start, end) = (offset as usize, offset as usize + bytes.len());
    if d.data.len() < end {
        d.data.resize(end, 0);
    }
    let mut conflicts = 0;
    let mut cursor = start;
    for &(s, e) in &d.captured {
        let (s, e) = (s as usize, e as usize);
        if e <= cursor {
            continue;
        }
        if s >= end {
            break;
        }
        if s > cursor {
            d.data[cursor..s].copy_from_slice(&bytes[cursor - start..s - start]);
        }
        let (os, oe) = (cursor.max(s), end.min(e));
        let differ = d.data[os..oe]
            .iter()
            .zip(&bytes[os - start..oe - start])
            .filter(|(a, b)| a != b)
            .count();
        conflicts += differ as u64;
        cursor = oe;
    }
    if cursor < end {
        d.data[cursor..end].copy_from_slice(&bytes[cursor - start..]);
    }
    add_range(&mut d.captured, offset, end as u32);
    conflicts
}

/// The unfragmented packet of a complete datagram: its header with the full length, then the
/// captured prefix of its data. Empty when no header can be built (decoded as malformed).
fn rebuild(d: &Datagram) -> Vec<u8> {
    let total = d.total.unwrap_or(0);
    let prefix = match d.captured.first() {
        Some(&(0, e)) => e.min(total) as usize,
        _ => 0,
    };
    let data = &d.data[..prefix];
    match (d.key.src, d.key.dst) {
        (IpAddr::V4(_), _) => {
            let mut h = d.v4_header.clone();
            let Ok(len) = u16::try_from(h.len() + total as usize) else {
                return Vec::new();
            };
            if h.len() < 20 {
                return Vec::new();
            }
            h[2..4].copy_from_slice(&len.to_be_bytes());
            h[6..8].copy_from_slice(&[0, 0]);
            h.extend_from_slice(data);
            h
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&(total as u16).to_be_bytes());
            h.extend_from_slice(&[d.key.proto, 64]);
            h.extend_from_slice(&src.octets());
            h.extend_from_slice(&dst.octets());
            h.extend_from_slice(data);
            h
        }
        (IpAddr::V6(_), IpAddr::V4(_)) => Vec::new(),
    }
}
