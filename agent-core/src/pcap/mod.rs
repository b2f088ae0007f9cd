//! Capture files: classic pcap and pcapng, read as a stream, decoded to oriented [`Segment`]s
//! (the same input live capture gives the engine), and replayed through the [`Engine`].
//!
//! ```text
//! CaptureReader ──RawPacket──▶ Decoder (link ▸ ip ▸ tcp ▸ Orienter) ──Segment──▶ Engine
//! ```
//! Link types: Ethernet (with 802.1Q / 802.1ad tags), Linux cooked v1 and v2, raw IP, BSD
//! loopback (NULL and LOOP). IP fragments are counted and skipped.
//!
//! [`Segment`]: crate::Segment
//! [`Engine`]: crate::engine::Engine

mod classic;
mod decode;
mod endian;
mod error;
pub mod ip;
pub mod link;
mod orient;
mod pcapng;
mod reader;
mod replay;
mod source;

#[cfg(test)]
mod tests;

pub use decode::{DecodeStats, Decoder};
pub use error::PcapError;
pub use orient::{Oriented, Orienter};
pub use reader::{CaptureReader, RawPacket};
pub use replay::{Analyzer, replay};
