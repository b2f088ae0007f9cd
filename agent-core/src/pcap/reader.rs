//! [`CaptureReader`]: a streaming reader of classic pcap and pcapng files over any `Read`.
//! It holds one packet in memory at a time and reuses its buffer.

use std::io::Read;

use super::PcapError;
use super::classic::{self, ClassicHeader};
use super::endian::Endian;
use super::pcapng::{self, Interface};
use super::source::Source;

/// One captured packet, borrowed from the reader's buffer until the next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawPacket<'a> {
    /// Capture time in nanoseconds since the UNIX epoch.
    pub ts_ns: u64,
    /// The link-layer type (LINKTYPE_* number) of the interface.
    pub linktype: u32,
    /// Length on the wire; `data.len()` is smaller when the capture cut the packet.
    pub orig_len: u32,
    pub data: &'a [u8],
}

enum Format {
    Classic(ClassicHeader),
    Pcapng(Section),
}

/// State of the current pcapng section.
struct Section {
    endian: Endian,
    interfaces: Vec<Interface>,
    /// Simple Packet Blocks carry no time: they get the previous packet's.
    last_ts_ns: u64,
}

/// Streaming pcap / pcapng reader.
pub struct CaptureReader<R> {
    src: Source<R>,
    format: Format,
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header and detects the format.
    pub fn new(input: R) -> Result<CaptureReader<R>, PcapError> {
        let mut src = Source::new(input);
        src.fill(4, "file header", false)?;
        let magic = Endian::Little.u32(src.peek(), 0);
        let format = if let Some((endian, nanos)) = classic::magic(magic) {
            src.fill(24, "file header", false)?;
            let header = classic::global_header(src.peek(), endian, nanos)?;
            src.consume(24);
            Format::Classic(header)
        } else if magic == pcapng::SHB {
            Format::Pcapng(read_section_header(&mut src)?)
        } else {
            return Err(PcapError::UnknownFormat(magic));
        };
        Ok(CaptureReader { src, format })
    }

    /// The next packet, `Ok(None)` at a clean end of file.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, PcapError> {
        let CaptureReader { src, format } = self;
        match format {
            Format::Classic(hdr) => next_classic(src, hdr),
            Format::Pcapng(section) => next_pcapng(src, section),
        }
    }
}

fn next_classic<'b, R: Read>(
    src: &'b mut Source<R>,
    hdr: &ClassicHeader,
) -> Result<Option<RawPacket<'b>>, PcapError> {
    let at = src.offset();
    if !src.fill(16, "record header", true)? {
        return Ok(None);
    }
    let (ts_ns, incl, orig_len) = classic::record_header(src.peek(), hdr, at)?;
    src.consume(16);
    src.fill(incl as usize, "packet record", false)?;
    let range = src.consume(incl as usize);
    let data = &src.data()[range];
    Ok(Some(RawPacket {
        ts_ns,
        linktype: hdr.linktype,
        orig_len,
        data,
    }))
}

fn next_pcapng<'b, R: Read>(
    src: &'b mut Source<R>,
    section: &mut Section,
) -> Result<Option<RawPacket<'b>>, PcapError> {
    loop {
        let at = src.offset();
        if !src.fill(8, "block header", true)? {
            return Ok(None);
        }
        let kind = section.endian.u32(src.peek(), 0);
        if kind == pcapng::SHB {
            *section = read_section_header(src)?;
            continue;
        }
        let endian = section.endian;
        let total = block_length(endian.u32(src.peek(), 4), at)?;
        src.fill(total, "block", false)?;
        let block = src.consume(total);
        let body = block.start + 8..block.end - 4;
        let corrupt = |reason: String| PcapError::Corrupt { offset: at, reason };
        match kind {
            pcapng::IDB => {
                let iface = pcapng::interface(&src.data()[body], endian).map_err(corrupt)?;
                section.interfaces.push(iface);
            }
            pcapng::EPB | pcapng::SPB | pcapng::OPB => {
                let snap0 = section.interfaces.first().map_or(0, |i| i.snaplen);
                let fields = pcapng::packet(kind, &src.data()[body.clone()], endian, snap0)
                    .map_err(corrupt)?;
                let Some(iface) = section.interfaces.get(fields.interface as usize) else {
                    return Err(corrupt(format!(
                        "packet on undeclared interface {}",
                        fields.interface
                    )));
                };
                let ts_ns = match fields.ts_units {
                    Some(units) => iface
                        .unit
                        .to_ns(units)
                        .saturating_add(iface.offset_s.saturating_mul(1_000_000_000)),
                    None => section.last_ts_ns,
                };
                section.last_ts_ns = ts_ns;
                let (linktype, orig_len) = (iface.linktype, fields.orig_len);
                let data =
                    &src.data()[body.start + fields.data.start..body.start + fields.data.end];
                return Ok(Some(RawPacket {
                    ts_ns,
                    linktype,
                    orig_len,
                    data,
                }));
            }
            _ => {}
        }
    }
}

/// Validates a pcapng block length (multiple of 4, at least 12 bytes, bounded).
fn block_length(total: u32, at: u64) -> Result<usize, PcapError> {
    if total < 12 || !total.is_multiple_of(4) || total > pcapng::MAX_BLOCK {
        return Err(PcapError::Corrupt {
            offset: at,
            reason: format!("block length {total}"),
        });
    }
    Ok(total as usize)
}

/// Reads a Section Header Block (not yet consumed) and starts a new section: its byte order,
/// no interfaces yet.
fn read_section_header<R: Read>(src: &mut Source<R>) -> Result<Section, PcapError> {
    let at = src.offset();
    src.fill(12, "section header", false)?;
    let head = src.peek();
    let endian = match Endian::Little.u32(head, 8) {
        pcapng::BYTE_ORDER_MAGIC => Endian::Little,
        m if m.swap_bytes() == pcapng::BYTE_ORDER_MAGIC => Endian::Big,
        m => {
            let reason = format!("byte-order magic {m:#010x}");
            return Err(PcapError::Corrupt { offset: at, reason });
        }
    };
    let total = block_length(endian.u32(head, 4), at)?;
    if total < 28 {
        let reason = format!("section header length {total}");
        return Err(PcapError::Corrupt { offset: at, reason });
    }
    src.fill(total, "section header", false)?;
    let (major, minor) = (endian.u16(src.peek(), 12), endian.u16(src.peek(), 14));
    if major != 1 {
        return Err(PcapError::UnsupportedVersion { major, minor });
    }
    src.consume(total);
    Ok(Section {
        endian,
        interfaces: Vec::new(),
        last_ts_ns: 0,
    })
}
