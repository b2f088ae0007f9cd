//! Classic libpcap files: a 24-byte global header, then 16-byte record headers each followed by
//! the captured bytes. Either byte order, microsecond or nanosecond timestamps.

use super::PcapError;
use super::endian::Endian;

/// Largest record accepted; anything bigger is a corrupt length, not a packet.
pub const MAX_RECORD: u32 = 16 * 1024 * 1024;

/// What the global header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassicHeader {
    pub endian: Endian,
    pub nanos: bool,
    pub linktype: u32,
    pub snaplen: u32,
}

/// The byte order and timestamp unit of a classic magic number, read as little-endian.
pub fn magic(m: u32) -> Option<(Endian, bool)> {
    match m {
        0xa1b2_c3d4 => Some((Endian::Little, false)),
        0xd4c3_b2a1 => Some((Endian::Big, false)),
        0xa1b2_3c4d => Some((Endian::Little, true)),
        0x4d3c_b2a1 => Some((Endian::Big, true)),
        _ => None,
    }
}

/// Parses the 24-byte global header (magic included).
pub fn global_header(h: &[u8], endian: Endian, nanos: bool) -> Result<ClassicHeader, PcapError> {
    let (major, minor) = (endian.u16(h, 4), endian.u16(h, 6));
    if major != 2 {
        return Err(PcapError::UnsupportedVersion { major, minor });
    }
    // The upper bits of the link-type field may carry FCS information; the type is the low 16.
    let linktype = endian.u32(h, 20) & 0xffff;
    Ok(ClassicHeader {
        endian,
        nanos,
        linktype,
        snaplen: endian.u32(h, 16),
    })
}

/// A record header: (timestamp in ns, captured length, original length).
pub fn record_header(
    h: &[u8],
    hdr: &ClassicHeader,
    offset: u64,
) -> Result<(u64, u32, u32), PcapError> {
    let e = hdr.endian;
    let (sec, frac) = (u64::from(e.u32(h, 0)), u64::from(e.u32(h, 4)));
    let (incl, orig) = (e.u32(h, 8), e.u32(h, 12));
    if incl > MAX_RECORD {
        return Err(PcapError::Corrupt {
            offset,
            reason: format!("record length {incl}"),
        });
    }
    let frac_ns = if hdr.nanos { frac } else { frac * 1_000 };
    Ok((sec * 1_000_000_000 + frac_ns, incl, orig.max(incl)))
}
