//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte header, the rules a frame's shape must follow,
//! and the few payload fields the agent reads (padding, priority, SETTINGS, RST_STREAM,
//! GOAWAY).

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE's initial value, and the largest frame a peer may send until it
/// learns a larger one.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
/// The largest SETTINGS_MAX_FRAME_SIZE allowed.
pub const MAX_MAX_FRAME: u32 = (1 << 24) - 1;

/// Frame types the agent knows (RFC 9113 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    Goaway,
    WindowUpdate,
    Continuation,
    /// Extension frames: ignored, as RFC 9113 §4.1 requires.
    Unknown(u8),
}

impl Kind {
    pub fn from_byte(b: u8) -> Kind {
        match b {
            0 => Kind::Data,
            1 => Kind::Headers,
            2 => Kind::Priority,
            3 => Kind::RstStream,
            4 => Kind::Settings,
            5 => Kind::PushPromise,
            6 => Kind::Ping,
            7 => Kind::Goaway,
            8 => Kind::WindowUpdate,
            9 => Kind::Continuation,
            other => Kind::Unknown(other),
        }
    }

    pub fn as_byte(self) -> u8 {
        match self {
            Kind::Data => 0,
            Kind::Headers => 1,
            Kind::Priority => 2,
            Kind::RstStream => 3,
            Kind::Settings => 4,
            Kind::PushPromise => 5,
            Kind::Ping => 6,
            Kind::Goaway => 7,
            Kind::WindowUpdate => 8,
            Kind::Continuation => 9,
            Kind::Unknown(b) => b,
        }
    }

    /// Flags the type defines (a sender leaves the others unset).
    fn defined_flags(self) -> u8 {
        match self {
            Kind::Data => flags::END_STREAM | flags::PADDED,
            Kind::Headers => {
                flags::END_STREAM | flags::END_HEADERS | flags::PADDED | flags::PRIORITY
            }
            Kind::PushPromise => flags::END_HEADERS | flags::PADDED,
            Kind::Settings | Kind::Ping => flags::ACK,
            Kind::Continuation => flags::END_HEADERS,
            _ => 0,
        }
    }
}

pub mod flags {
    pub const END_STREAM: u8 = 0x01;
    pub const ACK: u8 = 0x01;
    pub const END_HEADERS: u8 = 0x04;
    pub const PADDED: u8 = 0x08;
    pub const PRIORITY: u8 = 0x20;
}

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub kind: Kind,
    pub flags: u8,
    pub stream: u32,
    /// The reserved bit before the stream id (ignored on receipt, checked when resyncing).
    pub reserved: bool,
}

impl Header {
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: Kind::from_byte(b[3]),
            flags: b[4],
            stream: u32::from_be_bytes([b[5] & 0x7f, b[6], b[7], b[8]]),
            reserved: b[5] & 0x80 != 0,
        }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let l = self.len.to_be_bytes();
        let s = self.stream.to_be_bytes();
        [
            l[1],
            l[2],
            l[3],
            self.kind.as_byte(),
            self.flags,
            s[0],
            s[1],
            s[2],
            s[3],
        ]
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Whether the frame obeys RFC 9113's per-type rules on stream id and length (a
    /// violation is a connection error, so parsing of the connection ends). `max_len` is the
    /// receiver's SETTINGS_MAX_FRAME_SIZE.
    pub fn check(&self, max_len: u32) -> Result<(), FrameError> {
        if self.len > max_len {
            return Err(FrameError::TooLarge);
        }
        let zero = self.stream == 0;
        let ok = match self.kind {
            Kind::Data | Kind::Headers | Kind::Continuation | Kind::PushPromise => !zero,
            Kind::Priority => !zero && self.len == 5,
            Kind::RstStream => !zero && self.len == 4,
            Kind::Settings => {
                zero && self.len.is_multiple_of(6) && (!self.has(flags::ACK) || self.len == 0)
            }
            Kind::Ping => zero && self.len == 8,
            Kind::Goaway => zero && self.len >= 8,
            Kind::WindowUpdate => self.len == 4,
            Kind::Unknown(_) => true,
        };
        if ok { Ok(()) } else { Err(FrameError::Shape) }
    }

    /// Stricter than [`check`](Self::check): what a real sender emits, for finding frame
    /// boundaries in bytes joined mid-stream (known type, no undefined flag, reserved bit
    /// clear, HEADERS from a client on an odd stream, no PUSH_PROMISE from a client).
    pub fn plausible(&self, max_len: u32, from_client: bool) -> bool {
        if self.check(max_len).is_err()
            || self.reserved
            || matches!(self.kind, Kind::Unknown(_))
            || self.flags & !self.kind.defined_flags() != 0
        {
            return false;
        }
        match self.kind {
            Kind::Headers if from_client => self.stream % 2 == 1,
            Kind::PushPromise => !from_client,
            _ => true,
        }
    }
}

/// A frame that breaks RFC 9113.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame longer than SETTINGS_MAX_FRAME_SIZE")]
    TooLarge,
    #[error("frame type on the wrong stream or with the wrong length")]
    Shape,
    #[error("padding longer than the frame")]
    Padding,
}

/// Padding and priority fields stripped from a DATA, HEADERS or PUSH_PROMISE payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framing {
    /// Bytes before the content (pad length, priority, promised stream id).
    pub head: u32,
    /// Padding bytes after it.
    pub pad: u32,
}

impl Framing {
    /// Content length of a frame of `len` bytes.
    pub fn content_len(&self, len: u32) -> u32 {
        len - self.head - self.pad
    }
}

/// The framing of a DATA, HEADERS or PUSH_PROMISE frame. `first` is the payload's first byte
/// (the pad length when PADDED is set); `None` when it was not captured.
pub fn framing(h: &Header, first: Option<u8>) -> Result<Option<Framing>, FrameError> {
    let mut head = match h.kind {
        Kind::Headers if h.has(flags::PRIORITY) => 5,
        Kind::PushPromise => 4,
        _ => 0,
    };
    let mut pad = 0;
    if h.has(flags::PADDED) {
        match first {
            Some(p) => pad = u32::from(p),
            None => return Ok(None),
        }
        head += 1;
    }
    if head + pad > h.len {
        return Err(FrameError::Padding);
    }
    Ok(Some(Framing { head, pad }))
}

/// SETTINGS identifiers the agent uses.
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
}

/// (identifier, value) pairs of a SETTINGS payload.
pub fn settings(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    payload.chunks_exact(6).map(|c| {
        (
            u16::from_be_bytes([c[0], c[1]]),
            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
        )
    })
}

/// A 32-bit big-endian field at `at` (error codes, stream ids with the reserved bit cleared
/// by the caller).
pub fn u32_at(payload: &[u8], at: usize) -> Option<u32> {
    let b = payload.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// HTTP/2 error codes (RFC 9113 §7) by name, for the log.
pub fn error_code_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "UNKNOWN",
    }
}

/// The NO_ERROR code.
pub const NO_ERROR: u32 = 0;
/// REFUSED_STREAM: the stream was not processed.
pub const REFUSED_STREAM: u32 = 7;

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn h(len: u32, kind: u8, fl: u8, stream: u32) -> Header {
        Header::parse(
            &Header {
                len,
                kind: Kind::from_byte(kind),
                flags: fl,
                stream,
                reserved: false,
            }
            .encode(),
        )
    }

    #[test]
    fn header_round_trips() {
        let hdr = h(0x12_3456, 1, 0x25, 0x7fff_ffff);
        assert_eq!(
            (hdr.len, hdr.kind, hdr.flags, hdr.stream),
            (0x12_3456, Kind::Headers, 0x25, 0x7fff_ffff)
        );
        let raw = [0, 0, 4, 8, 0, 0x80, 0, 0, 1];
        let w = Header::parse(&raw);
        assert!(w.reserved);
        assert_eq!(w.stream, 1);
    }

    #[rstest]
    #[case::data_on_stream_0(h(1, 0, 0, 0), false)]
    #[case::settings_on_stream_1(h(0, 4, 0, 1), false)]
    #[case::settings_not_multiple_of_6(h(7, 4, 0, 0), false)]
    #[case::settings_ack_with_payload(h(6, 4, 1, 0), false)]
    #[case::ping_7_bytes(h(7, 6, 0, 0), false)]
    #[case::rst_5_bytes(h(5, 3, 0, 1), false)]
    #[case::priority_4_bytes(h(4, 2, 0, 1), false)]
    #[case::goaway_short(h(7, 7, 0, 0), false)]
    #[case::too_large(h(DEFAULT_MAX_FRAME + 1, 0, 0, 1), false)]
    #[case::headers(h(30, 1, 0x5, 1), true)]
    #[case::window_update_connection(h(4, 8, 0, 0), true)]
    #[case::unknown_type(h(100, 0xfa, 0xff, 0), true)]
    fn frame_rules(#[case] hdr: Header, #[case] ok: bool) {
        assert_eq!(hdr.check(DEFAULT_MAX_FRAME).is_ok(), ok, "{hdr:?}");
    }

    #[rstest]
    #[case::client_headers_even_stream(h(10, 1, 4, 2), true, false)]
    #[case::server_headers_even_stream(h(10, 1, 4, 2), false, true)]
    #[case::undefined_flag(h(10, 0, 0x2, 1), true, false)]
    #[case::client_push_promise(h(10, 5, 4, 1), true, false)]
    #[case::unknown_type(h(10, 0xfa, 0, 1), false, false)]
    fn plausibility_for_resync(#[case] hdr: Header, #[case] from_client: bool, #[case] ok: bool) {
        assert_eq!(hdr.plausible(DEFAULT_MAX_FRAME, from_client), ok);
    }

    #[rstest]
    #[case::plain_headers(h(10, 1, 0x4, 1), Some(0), Ok(Some(Framing { head: 0, pad: 0 })))]
    #[case::padded_priority(h(20, 1, 0x2c, 1), Some(4), Ok(Some(Framing { head: 6, pad: 4 })))]
    #[case::padded_data(h(10, 0, 0x8, 1), Some(9), Ok(Some(Framing { head: 1, pad: 9 })))]
    #[case::padding_too_long(h(10, 0, 0x8, 1), Some(10), Err(FrameError::Padding))]
    #[case::pad_byte_not_captured(h(10, 0, 0x8, 1), None, Ok(None))]
    #[case::push_promise(h(10, 5, 0x4, 2), None, Ok(Some(Framing { head: 4, pad: 0 })))]
    fn padding_and_priority(
        #[case] hdr: Header,
        #[case] first: Option<u8>,
        #[case] want: Result<Option<Framing>, FrameError>,
    ) {
        assert_eq!(framing(&hdr, first), want);
    }

    #[test]
    fn settings_pairs() {
        let p = [0, 1, 0, 0, 0x10, 0, 0, 5, 0, 0, 0x40, 0];
        let v: Vec<_> = settings(&p).collect();
        assert_eq!(v, vec![(1, 4096), (5, 16384)]);
    }
}
