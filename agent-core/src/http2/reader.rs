//! One direction of an HTTP/2 connection: reassembled bytes in, whole frames out.
//!
//! Frame payloads are not buffered except for what the connection reads: header block
//! fragments (bounded by the header block cap), SETTINGS, the error codes of RST_STREAM and
//! GOAWAY, and the pad length of DATA. Everything else is skipped by length, so DATA bytes the
//! capture did not copy cost nothing.
//!
//! Alignment: frames are length-delimited, so bytes that were lost or not copied keep the
//! reader aligned as long as no frame *header* is among them. When one is (or when the
//! connection was joined after its start), the reader searches the following bytes for a
//! frame boundary by shape: a chain of headers that each follow RFC 9113's rules for their
//! type, use only defined flags and leave the reserved bit clear, each starting where the
//! previous frame ends ([`find_frames`]).

use super::frame::{self, HEADER_LEN, Header, Kind};
use super::stats::{H2Stats, Malformed};
use crate::stream::Piece;

/// Most bytes held while searching for a frame boundary; older ones are dropped (counted).
pub const SCAN_LIMIT: usize = 16 * 1024;

/// A complete frame as the connection sees it.
#[derive(Debug)]
pub struct Frame<'a> {
    pub hdr: Header,
    /// The payload prefix the connection reads (see the module doc).
    pub kept: &'a [u8],
    /// Every byte of `kept` was captured.
    pub intact: bool,
    /// The payload was longer than the header block cap (nothing kept).
    pub oversize: bool,
    /// Some payload bytes were lost (not merely uncopied).
    pub lost: bool,
    /// Time of the segment that carried the frame's first byte, and its last.
    pub start_ts: u64,
    pub end_ts: u64,
}

/// Receives frames and alignment losses from a [`Reader`].
pub trait FrameSink {
    /// A complete frame; an error ends parsing of the connection.
    fn frame(&mut self, f: &Frame<'_>, stats: &mut H2Stats) -> Result<(), Malformed>;
    /// Frames may have been missed (a frame header was lost or not copied): whatever they
    /// carried is unknown.
    fn desync(&mut self, ts: u64, stats: &mut H2Stats);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Matching the client preface; the count of bytes matched.
    Preface(usize),
    Header,
    Payload,
    /// Searching for a frame boundary.
    Scan,
    Stopped,
}

/// The frame in progress.
#[derive(Clone, Copy, Debug)]
struct Current {
    hdr: Header,
    /// Payload bytes still to come.
    left: u32,
    /// Payload bytes to keep.
    keep: u32,
    intact: bool,
    oversize: bool,
    lost: bool,
    start_ts: u64,
}

/// The frame reader of one direction.
#[derive(Debug)]
pub struct Reader {
    from_client: bool,
    state: State,
    head: [u8; HEADER_LEN],
    head_have: usize,
    head_ts: u64,
    cur: Option<Current>,
    kept: Vec<u8>,
    scan: Vec<u8>,
    /// `scan` starts where a piece started (not after dropped bytes).
    scan_aligned_start: bool,
    /// Offsets of `scan` before this are not frame boundaries.
    scan_from: usize,
    /// The receiver's SETTINGS_MAX_FRAME_SIZE, when seen.
    max_frame: Option<u32>,
    /// Joined after the connection started: its SETTINGS were not seen.
    joined: bool,
    max_keep: usize,
}

/// Outcome of testing one offset for a frame boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    Found,
    Rejected,
    NeedMore,
}

/// Whether `buf[at..]` starts a chain of plausible frames: three chained headers, two with
/// the bytes ending inside the third, or (when `at` is the start of a segment) one frame that
/// ends exactly where the bytes end.
pub fn chain(buf: &[u8], at: usize, max_len: u32, from_client: bool, segment_start: bool) -> Chain {
    let mut p = at;
    let mut n = 0;
    loop {
        if p == buf.len() && n == 1 && segment_start {
            return Chain::Found;
        }
        let Some(raw) = buf.get(p..p + HEADER_LEN) else {
            return if n >= 2 {
                Chain::Found
            } else {
                Chain::NeedMore
            };
        };
        let raw: &[u8; HEADER_LEN] = raw.try_into().expect("slice of HEADER_LEN");
        let h = Header::parse(raw);
        if !h.plausible(max_len, from_client) {
            return Chain::Rejected;
        }
        n += 1;
        if n >= 3 {
            return Chain::Found;
        }
        p += HEADER_LEN + h.len as usize;
        if p > buf.len() {
            return if n >= 2 {
                Chain::Found
            } else {
                Chain::NeedMore
            };
        }
    }
}

/// The first offset of `buf` that starts plausible frames, or whether more bytes could tell.
pub fn find_frames(buf: &[u8], from_client: bool, segment_start: bool) -> Result<usize, bool> {
    let mut need_more = false;
    for at in 0..buf.len() {
        match chain(
            buf,
            at,
            frame::DEFAULT_MAX_FRAME,
            from_client,
            segment_start && at == 0,
        ) {
            Chain::Found => return Ok(at),
            Chain::NeedMore => need_more = true,
            Chain::Rejected => {}
        }
    }
    Err(need_more)
}

impl Reader {
    /// `fresh`: the connection is seen from its start, so the client's first bytes are the
    /// preface and the server's a frame header; otherwise the first frame boundary is found
    /// by shape. `max_keep` bounds the header block bytes kept per frame.
    pub fn new(from_client: bool, fresh: bool, max_keep: usize) -> Reader {
        let state = match (fresh, from_client) {
            (true, true) => State::Preface(0),
            (true, false) => State::Header,
            (false, _) => State::Scan,
        };
        Reader {
            from_client,
            state,
            head: [0; HEADER_LEN],
            head_have: 0,
            head_ts: 0,
            cur: None,
            kept: Vec::new(),
            scan: Vec::new(),
            scan_aligned_start: true,
            scan_from: 0,
            max_frame: None,
            joined: !fresh,
            max_keep,
        }
    }

    /// The peer announced SETTINGS_MAX_FRAME_SIZE for frames sent in this direction.
    pub fn set_max_frame(&mut self, v: u32) {
        self.max_frame = Some(v.clamp(frame::DEFAULT_MAX_FRAME, frame::MAX_MAX_FRAME));
    }

    pub fn stopped(&self) -> bool {
        self.state == State::Stopped
    }

    pub fn stop(&mut self) {
        self.state = State::Stopped;
        self.kept = Vec::new();
        self.scan = Vec::new();
    }

    /// Bytes held (kept payload, partial header, resync buffer).
    pub fn buffered(&self) -> usize {
        self.kept.len() + self.scan.len() + self.head_have
    }

    /// A frame is in progress (header or payload partly read).
    pub fn mid_frame(&self) -> bool {
        match self.state {
            State::Header => self.head_have > 0,
            State::Payload => true,
            _ => false,
        }
    }

    pub fn feed(
        &mut self,
        piece: Piece<'_>,
        ts: u64,
        sink: &mut dyn FrameSink,
        stats: &mut H2Stats,
    ) -> Result<(), Malformed> {
        match piece {
            Piece::Data(data) => self.data(data, ts, sink, stats),
            Piece::Missing { len, lost } => self.missing(len, lost, ts, sink, stats),
            Piece::End => Ok(()),
        }
    }

    fn data(
        &mut self,
        mut data: &[u8],
        ts: u64,
        sink: &mut dyn FrameSink,
        stats: &mut H2Stats,
    ) -> Result<(), Malformed> {
        while !data.is_empty() {
            match self.state {
                State::Stopped => return Ok(()),
                State::Preface(have) => {
                    let want = &frame::PREFACE[have..];
                    let n = want.len().min(data.len());
                    if data[..n] != want[..n] {
                        return Err(Malformed::Preface);
                    }
                    data = &data[n..];
                    self.state = if have + n == frame::PREFACE.len() {
                        State::Header
                    } else {
                        State::Preface(have + n)
                    };
                }
                State::Header => {
                    if self.head_have == 0 {
                        self.head_ts = ts;
                    }
                    let n = (HEADER_LEN - self.head_have).min(data.len());
                    self.head[self.head_have..self.head_have + n].copy_from_slice(&data[..n]);
                    self.head_have += n;
                    data = &data[n..];
                    if self.head_have == HEADER_LEN {
                        self.head_have = 0;
                        self.start_frame(Header::parse(&self.head))?;
                        self.finish_if_done(ts, sink, stats)?;
                    }
                }
                State::Payload => {
                    let Some(cur) = self.cur.as_mut() else {
                        self.state = State::Header;
                        continue;
                    };
                    let n = (cur.left as usize).min(data.len());
                    let consumed = cur.hdr.len - cur.left;
                    if consumed < cur.keep {
                        let k = ((cur.keep - consumed) as usize).min(n);
                        self.kept.extend_from_slice(&data[..k]);
                    }
                    cur.left -= n as u32;
                    data = &data[n..];
                    self.finish_if_done(ts, sink, stats)?;
                }
                State::Scan => {
                    self.scan_push(data, stats);
                    data = &[];
                    if let Some(rest) = self.scan_find(stats) {
                        self.state = State::Header;
                        self.data(&rest, ts, sink, stats)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn start_frame(&mut self, hdr: Header) -> Result<(), Malformed> {
        // A connection joined late may have announced larger frames before we joined.
        let max = self.max_frame.unwrap_or(if self.joined {
            frame::MAX_MAX_FRAME
        } else {
            frame::DEFAULT_MAX_FRAME
        });
        hdr.check(max).map_err(|e| match e {
            frame::FrameError::TooLarge => Malformed::FrameSize,
            _ => Malformed::FrameShape,
        })?;
        let (keep, oversize) = match hdr.kind {
            Kind::Headers | Kind::PushPromise | Kind::Continuation => {
                if hdr.len as usize <= self.max_keep {
                    (hdr.len, false)
                } else {
                    (0, true)
                }
            }
            Kind::Settings => (hdr.len.min(6 * 64), false),
            Kind::RstStream => (4, false),
            Kind::Goaway => (8, false),
            Kind::Data if hdr.has(frame::flags::PADDED) => (hdr.len.min(1), false),
            _ => (0, false),
        };
        self.kept.clear();
        self.cur = Some(Current {
            hdr,
            left: hdr.len,
            keep,
            intact: true,
            oversize,
            lost: false,
            start_ts: self.head_ts,
        });
        self.state = State::Payload;
        Ok(())
    }

    fn finish_if_done(
        &mut self,
        ts: u64,
        sink: &mut dyn FrameSink,
        stats: &mut H2Stats,
    ) -> Result<(), Malformed> {
        let Some(cur) = self.cur else {
            return Ok(());
        };
        if cur.left > 0 {
            return Ok(());
        }
        self.cur = None;
        self.state = State::Header;
        stats.frames += 1;
        let f = Frame {
            hdr: cur.hdr,
            kept: &self.kept,
            intact: cur.intact,
            oversize: cur.oversize,
            lost: cur.lost,
            start_ts: cur.start_ts,
            end_ts: ts,
        };
        let r = sink.frame(&f, stats);
        self.kept.clear();
        r
    }

    fn missing(
        &mut self,
        len: u32,
        lost: bool,
        ts: u64,
        sink: &mut dyn FrameSink,
        stats: &mut H2Stats,
    ) -> Result<(), Malformed> {
        if len == 0 {
            return Ok(());
        }
        match self.state {
            State::Stopped => {}
            State::Payload => {
                let Some(cur) = self.cur.as_mut() else {
                    return Ok(());
                };
                if len <= cur.left {
                    let consumed = cur.hdr.len - cur.left;
                    if consumed < cur.keep {
                        cur.intact = false;
                    }
                    cur.lost |= lost;
                    cur.left -= len;
                    // A frame that ends in the missing bytes is still delivered (its kept
                    // part is marked damaged); the next byte is a frame header.
                    self.finish_if_done(ts, sink, stats)?;
                } else {
                    self.lose_alignment(ts, sink, stats);
                }
            }
            State::Header | State::Preface(_) => self.lose_alignment(ts, sink, stats),
            State::Scan => {
                // The bytes held are not contiguous with what follows: start over.
                stats.resync_skipped_bytes += self.scan.len() as u64;
                self.scan.clear();
                self.scan_from = 0;
                self.scan_aligned_start = true;
            }
        }
        Ok(())
    }

    fn lose_alignment(&mut self, ts: u64, sink: &mut dyn FrameSink, stats: &mut H2Stats) {
        stats.resyncs += 1;
        self.cur = None;
        self.kept.clear();
        self.head_have = 0;
        self.scan.clear();
        self.scan_from = 0;
        self.scan_aligned_start = true;
        self.state = State::Scan;
        sink.desync(ts, stats);
    }

    fn scan_push(&mut self, data: &[u8], stats: &mut H2Stats) {
        if self.scan.is_empty() && self.scan_from == 0 {
            self.scan_aligned_start = true;
        }
        self.scan.extend_from_slice(data);
        if self.scan.len() > SCAN_LIMIT {
            let drop = self.scan.len() - SCAN_LIMIT / 2;
            self.scan.drain(..drop);
            stats.resync_skipped_bytes += drop as u64;
            self.scan_from = self.scan_from.saturating_sub(drop);
            self.scan_aligned_start = false;
        }
    }

    /// Looks for a frame boundary in the held bytes; returns the bytes from it on.
    fn scan_find(&mut self, stats: &mut H2Stats) -> Option<Vec<u8>> {
        let max = self.max_frame.unwrap_or(frame::DEFAULT_MAX_FRAME);
        let mut at = self.scan_from;
        while at < self.scan.len() {
            let seg_start = at == 0 && self.scan_aligned_start;
            match chain(&self.scan, at, max, self.from_client, seg_start) {
                Chain::Found => {
                    stats.resync_skipped_bytes += at as u64;
                    let rest = self.scan.split_off(at);
                    self.scan.clear();
                    self.scan_from = 0;
                    self.scan_aligned_start = true;
                    return Some(rest);
                }
                Chain::NeedMore => break,
                Chain::Rejected => at += 1,
            }
        }
        self.scan_from = at;
        None
    }
}
