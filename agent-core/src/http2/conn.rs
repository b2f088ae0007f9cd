//! The HTTP/2 state of one connection: two frame readers, two HPACK decoders, the header
//! block being assembled in each direction, and the streams, paired by stream id.

use std::collections::HashMap;

use super::H2Config;
use super::frame::{self, Kind, flags};
use super::hpack::Decoder;
use super::reader::{Frame, FrameSink, Reader};
use super::stats::{H2Stats, Malformed};
use super::stream::{Head, Stream};
use crate::identity::IdentityConfig;
use crate::recent::RecentFields;
use crate::spares::Spares;
use crate::stream::Piece;
use crate::transaction::ConnMeta;
use crate::{Direction, ErrorType, Records, Transaction};

/// What the connection needs besides bytes: limits, identity rules, the fields its records
/// share, and where records go.
pub struct H2Ctx<'a> {
    pub cfg: &'a H2Config,
    pub identity: &'a IdentityConfig,
    pub meta: &'a ConnMeta,
    pub out: &'a mut Records,
    /// Finished records, whose boxes new ones go into.
    pub spares: &'a mut Spares,
}

/// What a header block belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockKind {
    Headers { end_stream: bool },
    Push { promised: u32 },
}

/// A header block being assembled from HEADERS / PUSH_PROMISE and CONTINUATION frames.
#[derive(Debug)]
struct Block {
    stream: u32,
    kind: BlockKind,
    /// Every fragment was captured and fits the cap.
    intact: bool,
    oversize: bool,
    start_ts: u64,
    /// Frame bytes of the block (headers included), for the stream's wire bytes.
    wire: u64,
}

/// Index of a direction in the per-direction arrays.
fn ix(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

/// State both directions share.
#[derive(Debug)]
struct Shared {
    decoders: [Decoder; 2],
    blocks: [Option<Block>; 2],
    /// Fragments of the open block of each direction.
    block_bytes: [Vec<u8>; 2],
    streams: HashMap<u32, Stream>,
    /// Highest client stream id seen.
    max_client_stream: u32,
    /// SETTINGS_MAX_FRAME_SIZE announced by the receiver of each direction, to apply.
    max_frame: [Option<u32>; 2],
    /// A GOAWAY with an error code was sent: streams still open at the end were reset.
    goaway_error: bool,
    /// Frames may have been missed (joined late, or a frame header lost): a block without
    /// `:status` may be the trailers of a response whose head we did not see.
    missed_frames: bool,
    /// The connection's last path, query, user agent and credentials (see `crate::recent`).
    recent: RecentFields,
}

/// HTTP/2 state of one connection.
#[derive(Debug)]
pub struct H2Conn {
    readers: [Reader; 2],
    s: Shared,
}

impl H2Conn {
    /// `fresh`: the connection was seen from its start (SYN), so its preface and SETTINGS
    /// come first and the HPACK tables start empty.
    pub fn new(fresh: bool, cfg: &H2Config, stats: &mut H2Stats) -> H2Conn {
        stats.connections += 1;
        stats.joined_connections += u64::from(!fresh);
        let keep = cfg.max_header_block_bytes;
        H2Conn {
            readers: [
                Reader::new(true, fresh, keep),
                Reader::new(false, fresh, keep),
            ],
            s: Shared {
                decoders: [
                    Decoder::new(cfg.max_table_bytes, fresh),
                    Decoder::new(cfg.max_table_bytes, fresh),
                ],
                blocks: [None, None],
                block_bytes: [Vec::new(), Vec::new()],
                streams: HashMap::new(),
                max_client_stream: 0,
                max_frame: [None, None],
                goaway_error: false,
                missed_frames: !fresh,
                recent: RecentFields::default(),
            },
        }
    }

    /// Parsing ended on a malformed frame.
    pub fn stopped(&self) -> bool {
        self.readers[0].stopped()
    }

    /// Streams held (open ones and timeout tombstones), at most `max_streams`.
    pub fn tracked_streams(&self) -> usize {
        self.s.streams.len()
    }

    /// Streams not yet recorded.
    pub fn pending(&self) -> usize {
        self.s.streams.values().filter(|s| !s.tombstone).count()
    }

    /// Bytes held: partial frames, header blocks, HPACK tables.
    pub fn buffered(&self) -> usize {
        self.readers.iter().map(Reader::buffered).sum::<usize>()
            + self.s.block_bytes.iter().map(Vec::len).sum::<usize>()
            + self
                .s
                .decoders
                .iter()
                .map(Decoder::held_bytes)
                .sum::<usize>()
    }

    pub fn feed(
        &mut self,
        dir: Direction,
        piece: Piece<'_>,
        ts: u64,
        cx: &mut H2Ctx<'_>,
        stats: &mut H2Stats,
    ) {
        if self.stopped() {
            return;
        }
        let i = ix(dir);
        let mut side = Side {
            s: &mut self.s,
            dir,
            cx,
        };
        if let Err(reason) = self.readers[i].feed(piece, ts, &mut side, stats) {
            stats.malformed(reason);
            self.stop();
            return;
        }
        for (d, r) in self.readers.iter_mut().enumerate() {
            if let Some(v) = self.s.max_frame[d].take() {
                r.set_max_frame(v);
            }
        }
        if piece == Piece::End && dir == Direction::ToClient {
            self.close(ErrorType::ConnectionClosed, ts, cx, stats);
        }
    }

    fn stop(&mut self) {
        for r in &mut self.readers {
            r.stop();
        }
        self.s.blocks = [None, None];
        self.s.block_bytes = [Vec::new(), Vec::new()];
    }

    /// Streams with no response head `timeout_ns` after their first byte become `timeout`
    /// records (kept as tombstones so a late response is recognised).
    pub fn expire(&mut self, now: u64, timeout_ns: u64, cx: &mut H2Ctx<'_>, stats: &mut H2Stats) {
        let mut ids: Vec<u32> = self
            .s
            .streams
            .iter()
            .filter(|(_, st)| {
                !st.tombstone && !st.resp_head && now.saturating_sub(st.tx.start_ns) >= timeout_ns
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(st) = self.s.streams.get_mut(&id) {
                let tx = st.timeout(now);
                record(tx, cx, stats);
            }
        }
    }

    /// Ends the connection: every stream still open is recorded with `error` (reset when a
    /// GOAWAY with an error code announced the end).
    pub fn close(&mut self, error: ErrorType, ts: u64, cx: &mut H2Ctx<'_>, stats: &mut H2Stats) {
        let error = if self.s.goaway_error && error == ErrorType::ConnectionClosed {
            ErrorType::ConnectionReset
        } else {
            error
        };
        let mut ids: Vec<u32> = self.s.streams.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(st) = self.s.streams.remove(&id)
                && !st.tombstone
            {
                record(st.finish(ts, Some(error)), cx, stats);
            }
        }
        self.stop();
    }
}

fn record(tx: Transaction, cx: &mut H2Ctx<'_>, stats: &mut H2Stats) {
    stats.streams += 1;
    stats.grpc_calls += u64::from(tx.rpc.is_some());
    cx.out.push(cx.spares.boxed(tx));
}

/// One direction's view of the connection, receiving its frames.
struct Side<'a, 'b> {
    s: &'a mut Shared,
    dir: Direction,
    cx: &'a mut H2Ctx<'b>,
}

impl FrameSink for Side<'_, '_> {
    fn frame(&mut self, f: &Frame<'_>, stats: &mut H2Stats) -> Result<(), Malformed> {
        let i = ix(self.dir);
        if self.s.blocks[i].is_some() && f.hdr.kind != Kind::Continuation {
            return Err(Malformed::Protocol);
        }
        match f.hdr.kind {
            Kind::Data => self.data(f, stats),
            Kind::Headers | Kind::PushPromise => self.block_start(f, stats)?,
            Kind::Continuation => self.continuation(f, stats)?,
            Kind::RstStream => {
                stats.rst_streams += 1;
                let code = frame::u32_at(f.kept, 0).filter(|_| f.intact);
                self.reset(f.hdr.stream, code, f.end_ts, stats);
            }
            Kind::Settings if !f.hdr.has(flags::ACK) && f.intact => {
                let other = 1 - i;
                for (id, v) in frame::settings(f.kept) {
                    match id {
                        // The sender's decoder: it limits the table of the other direction.
                        frame::setting::HEADER_TABLE_SIZE => {
                            self.s.decoders[other].settings_table_size(v);
                        }
                        frame::setting::MAX_FRAME_SIZE => self.s.max_frame[other] = Some(v),
                        _ => {}
                    }
                }
            }
            Kind::Goaway => {
                stats.goaways += 1;
                if f.intact {
                    let last = frame::u32_at(f.kept, 0).unwrap_or(u32::MAX) & 0x7fff_ffff;
                    let code = frame::u32_at(f.kept, 4).unwrap_or(0);
                    self.goaway(last, code, f.end_ts, stats);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn desync(&mut self, _ts: u64, stats: &mut H2Stats) {
        // Frames were missed: header blocks among them changed the HPACK table, and any
        // open stream may have lost data or its end.
        let i = ix(self.dir);
        self.s.decoders[i].lose_block();
        if self.s.blocks[i].take().is_some() {
            stats.header_blocks_lost += 1;
        }
        self.s.block_bytes[i].clear();
        self.s.missed_frames = true;
        for st in self.s.streams.values_mut() {
            st.gap = true;
        }
    }
}

impl Side<'_, '_> {
    fn data(&mut self, f: &Frame<'_>, stats: &mut H2Stats) {
        let Some(st) = self.s.streams.get_mut(&f.hdr.stream) else {
            return;
        };
        let first = f.kept.first().copied().filter(|_| f.intact);
        let len = match frame::framing(&f.hdr, first) {
            Ok(Some(fr)) => Some(u64::from(fr.content_len(f.hdr.len))),
            // A pad length we did not capture, or padding past the frame (not our stream's
            // problem to end the connection over): the size is unknown.
            _ => None,
        };
        st.gap |= f.lost;
        let end = f.hdr.has(flags::END_STREAM);
        match self.dir {
            Direction::ToServer => {
                st.req_body = st.req_body.zip(len).map(|(a, b)| a + b);
                st.tx.request_wire_bytes += 9 + u64::from(f.hdr.len);
                st.req_ended |= end;
            }
            Direction::ToClient => {
                st.first_resp_ns.get_or_insert(f.start_ts);
                st.resp_body = st.resp_body.zip(len).map(|(a, b)| a + b);
                st.tx.response_wire_bytes += 9 + u64::from(f.hdr.len);
                if end {
                    st.resp_ended = true;
                    self.finish(f.hdr.stream, f.end_ts, stats);
                }
            }
        }
    }

    fn block_start(&mut self, f: &Frame<'_>, stats: &mut H2Stats) -> Result<(), Malformed> {
        let i = ix(self.dir);
        let kind = if f.hdr.kind == Kind::PushPromise {
            if self.dir == Direction::ToServer {
                return Err(Malformed::Protocol);
            }
            BlockKind::Push { promised: 0 }
        } else {
            BlockKind::Headers {
                end_stream: f.hdr.has(flags::END_STREAM),
            }
        };
        if self.dir == Direction::ToServer && f.hdr.stream.is_multiple_of(2) {
            return Err(Malformed::Protocol);
        }
        let mut block = Block {
            stream: f.hdr.stream,
            kind,
            intact: f.intact && !f.oversize && !f.lost,
            oversize: f.oversize,
            start_ts: f.start_ts,
            wire: 9 + u64::from(f.hdr.len),
        };
        self.s.block_bytes[i].clear();
        if block.intact {
            let first = f.kept.first().copied();
            match frame::framing(&f.hdr, first) {
                Ok(Some(fr)) => {
                    let from = fr.head as usize;
                    let to = (f.hdr.len - fr.pad) as usize;
                    if let BlockKind::Push { .. } = block.kind {
                        let at = from - 4;
                        let promised = frame::u32_at(f.kept, at).unwrap_or(0) & 0x7fff_ffff;
                        block.kind = BlockKind::Push { promised };
                    }
                    self.s.block_bytes[i].extend_from_slice(&f.kept[from..to]);
                }
                Ok(None) => block.intact = false,
                Err(_) => return Err(Malformed::Padding),
            }
        }
        self.s.blocks[i] = Some(block);
        if f.hdr.has(flags::END_HEADERS) {
            self.block_end(f.end_ts, stats)?;
        }
        Ok(())
    }

    fn continuation(&mut self, f: &Frame<'_>, stats: &mut H2Stats) -> Result<(), Malformed> {
        let i = ix(self.dir);
        let cap = self.cx.cfg.max_header_block_bytes;
        let Some(block) = self.s.blocks[i].as_mut() else {
            return Err(Malformed::Protocol);
        };
        if block.stream != f.hdr.stream {
            return Err(Malformed::Protocol);
        }
        block.wire += 9 + u64::from(f.hdr.len);
        let bytes = &mut self.s.block_bytes[i];
        if f.oversize || bytes.len() + f.kept.len() > cap {
            block.oversize = true;
            block.intact = false;
        } else if !f.intact || f.lost {
            block.intact = false;
        }
        if block.intact {
            bytes.extend_from_slice(f.kept);
        } else {
            *bytes = Vec::new();
        }
        if f.hdr.has(flags::END_HEADERS) {
            self.block_end(f.end_ts, stats)?;
        }
        Ok(())
    }

    /// A complete header block: decode it (or record its loss) and apply it to its stream.
    fn block_end(&mut self, end_ts: u64, stats: &mut H2Stats) -> Result<(), Malformed> {
        let i = ix(self.dir);
        let Some(block) = self.s.blocks[i].take() else {
            return Ok(());
        };
        let bytes = std::mem::take(&mut self.s.block_bytes[i]);
        let head = if block.intact {
            let mut head = Head::default();
            let identity = self.cx.identity;
            let max = self.cx.cfg.max_header_block_bytes;
            let recent = &mut self.s.recent;
            let sum = self.s.decoders[i]
                .decode(&bytes, max, &mut |field| {
                    head.field_known(field, identity, recent);
                })
                .map_err(|_| Malformed::Hpack)?;
            stats.unknown_fields += u64::from(sum.unknown);
            stats.table_size_capped += u64::from(sum.capped);
            Some(head)
        } else {
            stats.header_blocks_lost += 1;
            stats.header_blocks_too_large += u64::from(block.oversize);
            self.s.decoders[i].lose_block();
            None
        };
        // Keep the buffer's allocation for the next block unless it grew large.
        if bytes.capacity() <= 4096 {
            let mut bytes = bytes;
            bytes.clear();
            self.s.block_bytes[i] = bytes;
        }
        let wire = block.wire;
        match (self.dir, block.kind) {
            (Direction::ToServer, BlockKind::Headers { end_stream }) => {
                self.request_block(block.stream, head, end_stream, block.start_ts, wire, stats);
            }
            (Direction::ToClient, BlockKind::Headers { end_stream }) => {
                let times = (block.start_ts, end_ts);
                self.response_block(block.stream, head, end_stream, times, wire, stats);
            }
            (Direction::ToClient, BlockKind::Push { promised }) => {
                if promised != 0 {
                    let opened = self.open(promised, head, block.start_ts, stats);
                    if let Some(st) = opened {
                        st.req_ended = true;
                    }
                }
            }
            (Direction::ToServer, BlockKind::Push { .. }) => return Err(Malformed::Protocol),
        }
        Ok(())
    }

    fn request_block(
        &mut self,
        id: u32,
        head: Option<Head>,
        end_stream: bool,
        start_ts: u64,
        wire: u64,
        stats: &mut H2Stats,
    ) {
        if let Some(st) = self.s.streams.get_mut(&id) {
            // Request trailers.
            st.req_ended |= end_stream;
            st.tx.request_wire_bytes += wire;
            return;
        }
        if id <= self.s.max_client_stream {
            // A closed stream (already recorded): nothing to pair.
            return;
        }
        self.s.max_client_stream = id;
        if let Some(st) = self.open(id, head, start_ts, stats) {
            st.req_ended = end_stream;
            st.tx.request_wire_bytes += wire;
        }
    }

    fn open(
        &mut self,
        id: u32,
        head: Option<Head>,
        start_ts: u64,
        stats: &mut H2Stats,
    ) -> Option<&mut Stream> {
        if self.s.streams.len() >= self.cx.cfg.max_streams.max(1) {
            // Make room by dropping the oldest tombstone, if any.
            let oldest = self
                .s
                .streams
                .iter()
                .filter(|(_, s)| s.tombstone)
                .map(|(k, _)| *k)
                .min();
            match oldest {
                Some(k) => {
                    self.s.streams.remove(&k);
                }
                None => {
                    stats.streams_over_limit += 1;
                    return None;
                }
            }
        }
        let st = Stream::open(
            head,
            self.cx.meta.transaction(start_ts),
            self.cx.identity,
            &mut self.s.recent,
        );
        Some(self.s.streams.entry(id).or_insert(st))
    }

    fn response_block(
        &mut self,
        id: u32,
        head: Option<Head>,
        end_stream: bool,
        (start_ts, end_ts): (u64, u64),
        wire: u64,
        stats: &mut H2Stats,
    ) {
        let Some(st) = self.s.streams.get_mut(&id) else {
            // The request was never seen (joined mid-stream). Count each stream once, at
            // its response head (trailers have no :status).
            if head.as_ref().is_none_or(|h| h.status.is_some()) {
                stats.orphan_streams += 1;
            }
            return;
        };
        st.first_resp_ns.get_or_insert(start_ts);
        st.tx.response_wire_bytes += wire;
        match head {
            Some(h) => {
                if !st.resp_head {
                    match h.status {
                        Some(s) if (100..200).contains(&s) => {}
                        Some(s) => {
                            st.resp_head = true;
                            st.tx.status = Some(s);
                        }
                        None => {
                            // An undecodable field may have been :status, or (frames missed)
                            // this is the trailers of a head we did not see: unknown. With
                            // every field decoded and nothing missed, the head is malformed.
                            st.resp_head = true;
                            if h.unknown == 0 && !self.s.missed_frames {
                                st.malformed.get_or_insert(ErrorType::MalformedResponse);
                            }
                        }
                    }
                }
                if h.grpc_status.is_some() {
                    st.grpc_status = h.grpc_status;
                }
            }
            None => {
                st.resp_head = true;
                st.gap = true;
            }
        }
        if end_stream {
            st.resp_ended = true;
            self.finish(id, end_ts, stats);
        }
    }

    /// The response ended: record the stream (a tombstone's late response is only counted).
    fn finish(&mut self, id: u32, end_ts: u64, stats: &mut H2Stats) {
        let Some(st) = self.s.streams.remove(&id) else {
            return;
        };
        if st.tombstone {
            stats.late_streams += 1;
            return;
        }
        record(st.finish(end_ts, None), self.cx, stats);
    }

    /// RST_STREAM: the stream ends. REFUSED_STREAM means it was not processed (the client
    /// may retry it): `connection_closed`; any other code is `connection_reset`. A stream
    /// whose response already ended was recorded and is no longer here.
    fn reset(&mut self, id: u32, code: Option<u32>, ts: u64, stats: &mut H2Stats) {
        let Some(st) = self.s.streams.remove(&id) else {
            return;
        };
        if st.tombstone {
            return;
        }
        let error = if code == Some(frame::REFUSED_STREAM) {
            ErrorType::ConnectionClosed
        } else {
            ErrorType::ConnectionReset
        };
        record(st.finish(ts, Some(error)), self.cx, stats);
    }

    /// GOAWAY from one end: streams the other end opened above `last` were not processed
    /// and end now as `connection_closed`; the rest go on until they end or the connection
    /// does.
    fn goaway(&mut self, last: u32, code: u32, ts: u64, stats: &mut H2Stats) {
        if code != frame::NO_ERROR {
            self.s.goaway_error = true;
        }
        // Client streams are odd; a server's GOAWAY refers to them, a client's to pushes.
        let parity = match self.dir {
            Direction::ToClient => 1,
            Direction::ToServer => 0,
        };
        let mut ids: Vec<u32> = self
            .s
            .streams
            .keys()
            .copied()
            .filter(|id| id % 2 == parity && *id > last)
            .collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(st) = self.s.streams.remove(&id)
                && !st.tombstone
            {
                record(
                    st.finish(ts, Some(ErrorType::ConnectionClosed)),
                    self.cx,
                    stats,
                );
            }
        }
    }
}
