//! pcapng blocks: Section Header (either byte order), Interface Description (link type,
//! `if_tsresol`, `if_tsoffset`), Enhanced / Simple / obsolete Packet blocks. Other blocks are
//! skipped by the reader.

use super::endian::Endian;

pub const SHB: u32 = 0x0a0d_0d0a;
pub const IDB: u32 = 1;
pub const OPB: u32 = 2;
pub const SPB: u32 = 3;
pub const EPB: u32 = 6;
pub const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// Largest block accepted; anything bigger is a corrupt length.
pub const MAX_BLOCK: u32 = 16 * 1024 * 1024 + 64;

const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// Timestamp unit of an interface: 10^-n or 2^-n seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsUnit {
    Pow10(u8),
    Pow2(u8),
}

impl TsUnit {
    fn from_option(v: u8) -> TsUnit {
        if v & 0x80 == 0 {
            TsUnit::Pow10(v)
        } else {
            TsUnit::Pow2(v & 0x7f)
        }
    }

    /// Converts a count of units to nanoseconds (saturating).
    pub fn to_ns(self, units: u64) -> u64 {
        match self {
            TsUnit::Pow10(p) if p <= 9 => units.saturating_mul(10u64.pow(u32::from(9 - p))),
            TsUnit::Pow10(p) => {
                let div = 10u128.checked_pow(u32::from(p - 9)).unwrap_or(u128::MAX);
                u64::try_from(u128::from(units) / div).unwrap_or(u64::MAX)
            }
            TsUnit::Pow2(p) => {
                let ns = (u128::from(units) * 1_000_000_000) >> p.min(127);
                u64::try_from(ns).unwrap_or(u64::MAX)
            }
        }
    }
}

/// One interface of a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    pub linktype: u32,
    pub snaplen: u32,
    pub unit: TsUnit,
    /// `if_tsoffset`: seconds added to every timestamp.
    pub offset_s: u64,
}

/// A packet block's fields; `data` is a range of the block body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketFields {
    pub interface: u32,
    /// Timestamp in interface units, `None` for Simple Packet Blocks (they have none).
    pub ts_units: Option<u64>,
    pub orig_len: u32,
    pub data: std::ops::Range<usize>,
}

/// Parses an Interface Description Block body (after type and length, before the trailer).
pub fn interface(body: &[u8], e: Endian) -> Result<Interface, String> {
    if body.len() < 8 {
        return Err(format!("interface block body of {} bytes", body.len()));
    }
    let mut iface = Interface {
        linktype: u32::from(e.u16(body, 0)),
        snaplen: e.u32(body, 4),
        unit: TsUnit::Pow10(6),
        offset_s: 0,
    };
    let mut at = 8;
    while at + 4 <= body.len() {
        let (code, len) = (e.u16(body, at), usize::from(e.u16(body, at + 2)));
        let value = body
            .get(at + 4..at + 4 + len)
            .ok_or("option runs past its block")?;
        match code {
            OPT_END => break,
            OPT_IF_TSRESOL if len == 1 => iface.unit = TsUnit::from_option(value[0]),
            OPT_IF_TSOFFSET if len == 8 => iface.offset_s = e.u64(value, 0),
            _ => {}
        }
        at += 4 + len.next_multiple_of(4);
    }
    Ok(iface)
}

/// Parses an Enhanced, Simple or obsolete Packet Block body.
pub fn packet(kind: u32, body: &[u8], e: Endian, snaplen0: u32) -> Result<PacketFields, String> {
    let short = || format!("packet block body of {} bytes", body.len());
    let ts = |at: usize| (u64::from(e.u32(body, at)) << 32) | u64::from(e.u32(body, at + 4));
    let (interface, ts_units, cap, orig, start) = match kind {
        EPB if body.len() >= 20 => (
            e.u32(body, 0),
            Some(ts(4)),
            e.u32(body, 12),
            e.u32(body, 16),
            20,
        ),
        OPB if body.len() >= 20 => (
            u32::from(e.u16(body, 0)),
            Some(ts(4)),
            e.u32(body, 12),
            e.u32(body, 16),
            20,
        ),
        SPB if body.len() >= 4 => {
            let orig = e.u32(body, 0);
            let room = u32::try_from(body.len() - 4).unwrap_or(u32::MAX);
            let cap = if snaplen0 == 0 {
                orig
            } else {
                orig.min(snaplen0)
            };
            (0, None, cap.min(room), orig, 4)
        }
        _ => return Err(short()),
    };
    let end = start + cap as usize;
    if end > body.len() {
        return Err(format!("captured length {cap} exceeds its block"));
    }
    Ok(PacketFields {
        interface,
        ts_units,
        orig_len: orig.max(cap),
        data: start..end,
    })
}
