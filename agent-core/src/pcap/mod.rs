//! Capture files: classic pcap and pcapng, read as a stream, decoded to oriented [`Segment`]s
//! (the same input live capture gives the engine), and replayed through the [`Engine`].
//!
//! ```text
//! CaptureReader ──RawPacket──▶ Decoder (link ▸ ip ▸ tcp ▸ Orienter) ──Segment──▶ Engine
//! ```
//! Link types: Ethernet (with 802.1Q / 802.1ad tags), Linux cooked v1 and v2, raw IP (DLT_RAW
//! 12/14/101, LINKTYPE_IPV4 228, LINKTYPE_IPV6 229), BSD loopback (NULL and LOOP). Tunnels:
//! VXLAN, Geneve, GRE (ERSPAN I/II/III) and IP in IP are opened and the inner flow analysed
//! ([`tunnel`]). IPv4 and IPv6 fragments are reassembled in a bounded table ([`frag`]).
//!
//! [`Segment`]: crate::Segment
//! [`Engine`]: crate::engine::Engine

mod classic;
mod decode;
mod endian;
mod error;
pub mod frag;
pub mod ip;
pub mod link;
mod orient;
mod pcapng;
mod reader;
mod replay;
mod source;
pub mod synth;
pub mod tunnel;

#[cfg(test)]
mod frag_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tunnel_tests;

pub use decode::{DecodeStats, Decoder, MAX_ENCAPSULATION};
pub use error::PcapError;
pub use frag::{FragmentLimits, FragmentStats};
pub use orient::{Oriented, Orienter};
pub use reader::{CaptureReader, RawPacket};
pub use replay::{Analyzer, replay};
