//! One captured TCP segment, oriented towards the watched server. Live capture builds these
//! from kernel `SegmentEvent`s; replay builds them from packets in a capture file.

use std::net::SocketAddr;

/// Which way a segment travels relative to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client -> server: request bytes.
    ToServer,
    /// Server -> client: response bytes.
    ToClient,
}

/// TCP flag bits (the TCP header's low flag byte).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// A TCP segment with a borrowed payload prefix.
///
/// `payload.len() <= payload_len`: the kernel copies only a prefix (the snap length), and the
/// bytes it did not copy are accounted for by sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Wall-clock time the segment was seen, in nanoseconds since the UNIX epoch.
    pub ts_ns: u64,
    /// The client end of the connection.
    pub client: SocketAddr,
    /// The server end (its port is a watched port).
    pub server: SocketAddr,
    pub direction: Direction,
    /// TCP sequence number of the first payload byte (of the SYN when SYN is set).
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// True payload length, which may be larger than `payload.len()`.
    pub payload_len: u32,
    /// The copied prefix of the payload.
    pub payload: &'a [u8],
    /// The interface the segment was seen on (0 when unknown, as in a capture file). A flow
    /// seen on several interfaces (both veths of a bridge) is read from the first one only.
    pub ifindex: u32,
}

impl Segment<'_> {
    /// Payload bytes the capture saw on the wire but did not copy.
    pub fn uncopied_len(&self) -> u32 {
        self.payload_len.saturating_sub(self.payload.len() as u32)
    }
}
