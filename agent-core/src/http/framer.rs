//! One direction's message framing: finds heads, walks bodies, resynchronises after loss.
//! What the messages mean (pairing, records) is up to a [`Handler`].

use super::chunked::ChunkDecoder;
use super::head::BodyKind;
use super::startline;
use super::stats::{HttpStats, ParseErrorReason};
use crate::stream::Piece;

/// The message being read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsgMeta {
    /// Timestamp of the segment carrying the first byte.
    pub start_ts: u64,
    /// Head bytes (start line through the empty line).
    pub head_len: u64,
    /// Body bytes on the wire (with chunk framing).
    pub body_wire: u64,
    /// Decoded body length.
    pub body_size: u64,
    /// Some body bytes were lost (framing survived).
    pub lost_body: bool,
    /// The decoded body length is unknown (chunk framing was not copied).
    pub size_unknown: bool,
    /// Timestamp of the last byte read so far.
    pub last_ts: u64,
    /// Offset of the message's first byte in its direction's stream (lost bytes included).
    pub start_pos: u64,
}

/// What the first bytes at a message boundary look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartVerdict {
    Parse,
    /// A message without a head that lasts until the connection closes (an HTTP/0.9 response).
    Headless,
    Resync,
    /// Not HTTP: stop parsing this flow.
    Stop,
}

/// Why framing was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Bytes missing (lost, or not copied where they were needed).
    Gap,
    /// The message broke the syntax (head too large, bad chunk).
    Malformed,
}

/// What to do after a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadVerdict {
    Body(BodyKind),
    /// A 1xx interim response, or a message with nothing more to read: next message.
    Done,
    /// Stop parsing this direction (upgrade, tunnel, not HTTP).
    Stop,
    /// Unparseable: find the next start line.
    Resync,
}

pub trait Handler {
    /// The first bytes at a message boundary, carried by a segment of time `ts`.
    fn on_start(&mut self, first: &[u8], ts: u64, stats: &mut HttpStats) -> StartVerdict;
    /// A complete head (`head` ends with its empty line).
    fn on_head(
        &mut self,
        head: &[u8],
        meta: &MsgMeta,
        ts: u64,
        stats: &mut HttpStats,
    ) -> HeadVerdict;
    /// One pass over bytes at a message start that may hold a whole head and more: when they
    /// begin with a complete, valid head, handles it as [`on_head`](Self::on_head) would (and
    /// sets `meta.head_len`) and returns its length; `None` when they hold only part of a head
    /// or an invalid one (the framer then finds the end of the head itself).
    fn on_head_prefix(
        &mut self,
        bytes: &[u8],
        meta: &mut MsgMeta,
        ts: u64,
        stats: &mut HttpStats,
    ) -> Option<(usize, HeadVerdict)>;
    fn on_complete(&mut self, meta: &MsgMeta, ts: u64, stats: &mut HttpStats);
    /// Framing was lost (gap, uncopied head bytes, bad chunk); `partial` holds head bytes read.
    fn on_lost(
        &mut self,
        why: Loss,
        in_head: bool,
        partial: &[u8],
        meta: &MsgMeta,
        ts: u64,
        stats: &mut HttpStats,
    );
    /// The direction ended (FIN) with a message in progress (`in_message`).
    fn on_end(&mut self, in_message: bool, meta: &MsgMeta, ts: u64, stats: &mut HttpStats);
    /// Set when the handler wants this direction to stop parsing.
    fn stopped(&self) -> bool;
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// At a message boundary.
    Start,
    Head,
    Length(u64),
    Chunked(ChunkDecoder),
    Close,
    /// A chunked body whose chunk framing was not copied: read on until the next start line
    /// (or the end of the connection), which ends it.
    Skim,
    Resync,
    Stopped,
}

/// Framing state of one direction.
#[derive(Debug)]
pub struct Framer {
    state: State,
    buf: Vec<u8>,
    /// Where the next head-end / start-line search begins in `buf`.
    scan: usize,
    meta: MsgMeta,
    /// Looking for a request line (else a status line) when resynchronising.
    request_side: bool,
    max_head: usize,
    /// Stream offset of the next piece (bytes fed and bytes missing so far).
    pos: u64,
    /// Stream offset of the first byte of the slice being read.
    at: u64,
}

impl Framer {
    pub fn new(request_side: bool, max_head: usize) -> Framer {
        Framer {
            state: State::Start,
            buf: Vec::new(),
            scan: 0,
            meta: MsgMeta::default(),
            request_side,
            max_head,
            pos: 0,
            at: 0,
        }
    }

    /// Bytes buffered (partial head or resync window).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn is_stopped(&self) -> bool {
        self.state == State::Stopped
    }

    /// A message has started and not finished.
    pub fn in_message(&self) -> bool {
        !matches!(self.state, State::Start | State::Resync | State::Stopped)
    }

    /// In a body that ends with the connection (close-delimited, or skimmed chunked).
    pub fn in_open_ended_body(&self) -> bool {
        matches!(self.state, State::Close | State::Skim)
    }

    /// Stream offset after the last piece (bytes and missing bytes so far).
    pub fn pos(&self) -> u64 {
        self.pos
    }

    pub fn meta(&self) -> &MsgMeta {
        &self.meta
    }

    pub fn stop(&mut self) {
        self.state = State::Stopped;
        self.buf = Vec::new();
    }

    /// Between messages, gives back the buffer a split head left allocated.
    pub fn release(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = Vec::new();
        }
    }

    /// Heap bytes held (the buffer's capacity).
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Start resynchronising (counted).
    pub fn resync(&mut self, stats: &mut HttpStats) {
        stats.resyncs += 1;
        self.state = State::Resync;
        self.buf.clear();
        self.scan = 0;
    }

    pub fn feed(&mut self, piece: Piece<'_>, ts: u64, h: &mut impl Handler, stats: &mut HttpStats) {
        self.at = self.pos;
        match piece {
            Piece::Data(d) => {
                self.data(d, ts, h, stats);
                self.pos += d.len() as u64;
            }
            Piece::Missing { len, lost } => {
                self.missing(u64::from(len), lost, ts, h, stats);
                self.pos += u64::from(len);
            }
            Piece::End => self.end(ts, h, stats),
        }
        if h.stopped() && self.state != State::Stopped {
            self.stop();
        }
    }

    fn begin(&mut self, ts: u64) {
        self.meta = MsgMeta {
            start_ts: ts,
            start_pos: self.at,
            ..MsgMeta::default()
        };
        self.state = State::Head;
        self.scan = 0;
    }

    fn data(&mut self, mut d: &[u8], ts: u64, h: &mut impl Handler, stats: &mut HttpStats) {
        let (base, len0) = (self.at, d.len());
        while !d.is_empty() {
            self.at = base + (len0 - d.len()) as u64;
            if h.stopped() {
                return;
            }
            match &mut self.state {
                State::Stopped => return,
                State::Start => match h.on_start(d, ts, stats) {
                    StartVerdict::Parse => self.begin(ts),
                    StartVerdict::Headless => {
                        self.begin(ts);
                        self.state = State::Close;
                    }
                    StartVerdict::Resync => self.resync(stats),
                    StartVerdict::Stop => {
                        self.stop();
                        return;
                    }
                },
                State::Head => d = self.head_data(d, ts, h, stats),
                State::Length(left) => {
                    let n = (*left).min(d.len() as u64);
                    *left -= n;
                    self.meta.body_wire += n;
                    self.meta.body_size += n;
                    d = &d[n as usize..];
                    if *left == 0 {
                        self.complete(ts, h, stats);
                    }
                }
                State::Chunked(dec) => match dec.feed(d) {
                    Ok(n) => {
                        self.meta.body_wire += n as u64;
                        self.meta.body_size = dec.body_len();
                        let done = dec.is_done();
                        d = &d[n..];
                        if done {
                            self.complete(ts, h, stats);
                        }
                    }
                    Err(_) => {
                        stats.parse_error(ParseErrorReason::BadChunk);
                        h.on_lost(Loss::Malformed, false, &[], &self.meta, ts, stats);
                        self.resync(stats);
                    }
                },
                State::Close => {
                    self.meta.body_wire += d.len() as u64;
                    self.meta.body_size += d.len() as u64;
                    self.meta.last_ts = ts;
                    return;
                }
                State::Skim | State::Resync => d = self.resync_data(d, ts, h, stats),
            }
        }
    }

    /// Head bytes: parses straight from `d` when the whole head is there (one pass: the parse
    /// finds its end), else buffers.
    fn head_data<'d>(
        &mut self,
        d: &'d [u8],
        ts: u64,
        h: &mut impl Handler,
        stats: &mut HttpStats,
    ) -> &'d [u8] {
        if self.buf.is_empty() {
            let window = &d[..d.len().min(self.max_head)];
            if let Some((end, verdict)) = h.on_head_prefix(window, &mut self.meta, ts, stats) {
                debug_assert_eq!(startline::find_head_end(window, 0), Some(end));
                self.after_head(verdict, ts, h, stats);
                return &d[end..];
            }
            // Partial or invalid: find the end of the head the slow way.
            if let Some(end) = self.head_end(window, 0) {
                self.on_head(&d[..end], ts, h, stats);
                return &d[end..];
            }
        }
        let room = self.max_head - self.buf.len().min(self.max_head);
        let take = d.len().min(room);
        let from = self.scan.min(self.buf.len()).saturating_sub(2);
        self.buf.extend_from_slice(&d[..take]);
        match self.head_end(&self.buf, from) {
            Some(end) => {
                let used = take - (self.buf.len() - end);
                self.buf.truncate(end);
                let head = std::mem::take(&mut self.buf);
                self.on_head(&head, ts, h, stats);
                self.buf = head;
                self.buf.clear();
                &d[used..]
            }
            None if self.buf.len() >= self.max_head => {
                stats.parse_error(ParseErrorReason::HeadTooLarge);
                let partial = std::mem::take(&mut self.buf);
                h.on_lost(Loss::Malformed, true, &partial, &self.meta, ts, stats);
                self.buf = partial;
                self.resync(stats);
                &d[take..]
            }
            None => {
                self.scan = self.buf.len();
                &d[take..]
            }
        }
    }

    /// Where the head in `buf` ends: the empty line, or on the request side the end of an
    /// HTTP/0.9 simple request (a request line without a version has no headers).
    fn head_end(&self, buf: &[u8], from: usize) -> Option<usize> {
        startline::find_head_end(buf, from).or_else(|| {
            self.request_side
                .then(|| startline::simple_request_end(buf))
                .flatten()
        })
    }

    fn on_head(&mut self, head: &[u8], ts: u64, h: &mut impl Handler, stats: &mut HttpStats) {
        self.meta.head_len = head.len() as u64;
        let verdict = h.on_head(head, &self.meta, ts, stats);
        self.after_head(verdict, ts, h, stats);
    }

    fn after_head(
        &mut self,
        verdict: HeadVerdict,
        ts: u64,
        h: &mut impl Handler,
        stats: &mut HttpStats,
    ) {
        match verdict {
            HeadVerdict::Body(BodyKind::None) | HeadVerdict::Done => self.complete(ts, h, stats),
            HeadVerdict::Body(BodyKind::Length(n)) => self.state = State::Length(n),
            HeadVerdict::Body(BodyKind::Chunked) => {
                self.state = State::Chunked(ChunkDecoder::default())
            }
            HeadVerdict::Body(BodyKind::Close) => self.state = State::Close,
            HeadVerdict::Stop => self.stop(),
            HeadVerdict::Resync => self.resync(stats),
        }
    }

    fn complete(&mut self, ts: u64, h: &mut impl Handler, stats: &mut HttpStats) {
        self.state = State::Start;
        h.on_complete(&self.meta, ts, stats);
    }

    fn resync_data<'d>(
        &mut self,
        d: &'d [u8],
        ts: u64,
        h: &mut impl Handler,
        stats: &mut HttpStats,
    ) -> &'d [u8] {
        let from = self.scan.saturating_sub(24);
        let end_pos = self.at + d.len() as u64;
        let skimming = self.state == State::Skim;
        if skimming {
            self.meta.body_wire += d.len() as u64;
        }
        self.buf.extend_from_slice(d);
        let found = if self.request_side {
            startline::find_request_line(&self.buf, from)
        } else {
            startline::find_status_line(&self.buf, from)
        };
        match found {
            Some(start) => {
                if skimming {
                    // The bytes from the start line on are the next message, not this body.
                    self.meta.body_wire -= (self.buf.len() - start) as u64;
                    let body_bytes_here = start > self.buf.len() - d.len();
                    let last = if body_bytes_here {
                        ts
                    } else {
                        self.meta.last_ts
                    };
                    self.complete(last, h, stats);
                }
                self.at = end_pos - (self.buf.len() - start) as u64;
                self.buf.drain(..start);
                self.begin(ts);
                // Let the head logic see the buffered bytes as fresh input.
                let pending = std::mem::take(&mut self.buf);
                let rest = self.head_data(&pending, ts, h, stats);
                let rest = rest.to_vec();
                if !rest.is_empty() {
                    self.at = end_pos - rest.len() as u64;
                    self.data(&rest, ts, h, stats);
                }
                &[]
            }
            None => {
                if skimming {
                    self.meta.last_ts = ts;
                }
                let keep = self.max_head.min(self.buf.len());
                let cut = self.buf.len() - keep;
                self.buf.drain(..cut);
                self.scan = self.buf.len();
                &[]
            }
        }
    }

    fn missing(
        &mut self,
        mut len: u64,
        lost: bool,
        ts: u64,
        h: &mut impl Handler,
        stats: &mut HttpStats,
    ) {
        while len > 0 {
            match &mut self.state {
                State::Stopped => return,
                State::Resync => {
                    self.buf.clear();
                    self.scan = 0;
                    return;
                }
                State::Skim => {
                    self.meta.body_wire += len;
                    self.meta.lost_body |= lost;
                    self.meta.last_ts = ts;
                    self.buf.clear();
                    self.scan = 0;
                    return;
                }
                State::Start | State::Head => {
                    if self.state == State::Start {
                        self.meta = MsgMeta {
                            start_ts: ts,
                            start_pos: self.at,
                            ..MsgMeta::default()
                        };
                    }
                    if !lost {
                        stats.uncopied_head_gaps += 1;
                    }
                    let in_head = self.state == State::Head;
                    let partial = std::mem::take(&mut self.buf);
                    h.on_lost(Loss::Gap, in_head, &partial, &self.meta, ts, stats);
                    self.buf = partial;
                    self.resync(stats);
                    return;
                }
                State::Length(left) => {
                    let n = (*left).min(len);
                    *left -= n;
                    len -= n;
                    self.meta.body_wire += n;
                    self.meta.body_size += n;
                    self.meta.lost_body |= lost;
                    if *left == 0 {
                        self.complete(ts, h, stats);
                    }
                }
                State::Chunked(dec) => {
                    let n = dec.skip(len);
                    self.meta.body_wire += n;
                    self.meta.body_size = dec.body_len();
                    self.meta.lost_body |= lost;
                    len -= n;
                    if len > 0 && !lost {
                        // Chunk framing inside bytes the capture did not copy.
                        self.meta.body_wire += len;
                        self.meta.size_unknown = true;
                        self.meta.last_ts = ts;
                        self.state = State::Skim;
                        self.buf.clear();
                        self.scan = 0;
                        return;
                    }
                    if len > 0 {
                        h.on_lost(Loss::Gap, false, &[], &self.meta, ts, stats);
                        self.resync(stats);
                        return;
                    }
                }
                State::Close => {
                    self.meta.body_wire += len;
                    self.meta.body_size += len;
                    self.meta.lost_body |= lost;
                    self.meta.last_ts = ts;
                    return;
                }
            }
        }
    }

    fn end(&mut self, ts: u64, h: &mut impl Handler, stats: &mut HttpStats) {
        match self.state {
            State::Close => {
                self.state = State::Start;
                h.on_complete(&self.meta, ts, stats);
            }
            // A skimmed body ended with its last byte, not with the FIN that may come much
            // later on a keep-alive connection.
            State::Skim => {
                self.state = State::Start;
                let last = if self.meta.last_ts == 0 {
                    ts
                } else {
                    self.meta.last_ts
                };
                h.on_complete(&self.meta, last, stats);
            }
            State::Head | State::Length(_) | State::Chunked(_) => {
                h.on_end(true, &self.meta, ts, stats)
            }
            State::Start | State::Resync => h.on_end(false, &self.meta, ts, stats),
            State::Stopped => return,
        }
        self.stop();
    }
}
