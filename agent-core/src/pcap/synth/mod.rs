//! Capture synthesis for tests, fixtures and fuzz seeds: read a capture into owned packets,
//! change it deterministically, write it back as classic pcap.
//!
//! - [`encap`]: the same IP packets behind other link types and tunnels (raw IP, VLAN, QinQ,
//!   VXLAN, Geneve, GRE, ERSPAN I/II/III, IP in IP) and as IP fragments.
//! - [`mutate`]: what mirror ports and busy capture hosts do to a capture: segments of one
//!   direction moved later, exact duplicates, late retransmits, and (loss mode) dropped
//!   segments, with the dropped byte ranges reported so tests know what is unrecoverable.
//!
//! Nothing here is on the agent's path; it lives in agent-core so that the golden tests, the
//! fuzz corpus and `UPDATE_GOLDEN=1` fixture regeneration share one implementation.

pub mod build;
pub mod encap;
pub mod mutate;

use std::io::Read;

use super::{CaptureReader, PcapError};

/// One captured packet, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub ts_ns: u64,
    /// The captured bytes.
    pub data: Vec<u8>,
    /// Length on the wire (`>= data.len()`).
    pub orig_len: u32,
}

/// A capture held in memory: one link type, packets in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capture {
    pub linktype: u32,
    pub packets: Vec<Packet>,
}

/// Why a capture cannot be synthesised from.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error(transparent)]
    Read(#[from] PcapError),
    #[error("packets of link types {0} and {1} in one capture")]
    MixedLinkTypes(u32, u32),
}

impl Capture {
    /// Reads a whole pcap or pcapng file.
    pub fn read(input: impl Read) -> Result<Capture, SynthError> {
        let mut reader = CaptureReader::new(input)?;
        let mut linktype = None;
        let mut packets = Vec::new();
        while let Some(p) = reader.next_packet()? {
            match linktype {
                None => linktype = Some(p.linktype),
                Some(l) if l != p.linktype => {
                    return Err(SynthError::MixedLinkTypes(l, p.linktype));
                }
                Some(_) => {}
            }
            packets.push(Packet {
                ts_ns: p.ts_ns,
                data: p.data.to_vec(),
                orig_len: p.orig_len,
            });
        }
        Ok(Capture {
            linktype: linktype.unwrap_or(super::link::LINKTYPE_ETHERNET),
            packets,
        })
    }

    /// The capture as a classic little-endian pcap file with nanosecond timestamps.
    pub fn to_pcap(&self) -> Vec<u8> {
        let snaplen = self.packets.iter().map(|p| p.orig_len).max().unwrap_or(0);
        let mut f = Vec::with_capacity(
            24 + self
                .packets
                .iter()
                .map(|p| 16 + p.data.len())
                .sum::<usize>(),
        );
        f.extend_from_slice(&0xa1b2_3c4d_u32.to_le_bytes());
        f.extend_from_slice(&2u16.to_le_bytes());
        f.extend_from_slice(&4u16.to_le_bytes());
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&snaplen.max(65_535).to_le_bytes());
        f.extend_from_slice(&self.linktype.to_le_bytes());
        for p in &self.packets {
            f.extend_from_slice(&((p.ts_ns / 1_000_000_000) as u32).to_le_bytes());
            f.extend_from_slice(&((p.ts_ns % 1_000_000_000) as u32).to_le_bytes());
            f.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
            f.extend_from_slice(&p.orig_len.max(p.data.len() as u32).to_le_bytes());
            f.extend_from_slice(&p.data);
        }
        f
    }
}

/// A small deterministic generator (splitmix64): fixtures must not change between runs or
/// machines, and agent-core takes no `rand` dependency for it.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.next_u64() % 100 < u64::from(percent)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}
