//! Why a capture file could not be read further.

use std::io;

/// A capture file that cannot be (fully) read. Packets read before the error stay valid.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("not a pcap or pcapng file (magic {0:#010x})")]
    UnknownFormat(u32),
    #[error("unsupported pcap version {major}.{minor}")]
    UnsupportedVersion { major: u16, minor: u16 },
    #[error("truncated capture: file ends inside a {what} at byte {offset}")]
    Truncated { what: &'static str, offset: u64 },
    #[error("corrupt capture at byte {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
}
