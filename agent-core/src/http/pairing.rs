//! The two [`Handler`]s: requests become pending transactions, responses complete the oldest
//! one (HTTP/1.x answers in order).

use super::framer::{Handler, HeadVerdict, Loss, MsgMeta, StartVerdict};
use super::head::{self, BodyKind};
use super::startline;
use super::stats::{HttpStats, ParseErrorReason};
use super::{Ctx, Mode, Pending, Shared};
use crate::spares::Leftovers;
use crate::{ErrorType, Transaction};
use std::borrow::Cow;

/// `network.protocol.version` of an HTTP/0.9 exchange (a simple request, a response without a
/// status line: the record has no status).
pub const HTTP09: &str = "0.9";

/// OpenTelemetry's `http.request.method` for a method that is not known (or not readable).
pub const OTHER_METHOD: &str = "_OTHER";

/// Pushes a finished transaction.
pub(super) fn record(tx: Box<Transaction>, cx: &mut Ctx<'_>, stats: &mut HttpStats) {
    stats.transactions += 1;
    cx.out.push(tx);
}

fn not_http(s: &mut Shared, stats: &mut HttpStats) -> StartVerdict {
    if s.mode == Mode::Http {
        s.mode = Mode::NotHttp;
        stats.non_http_flows += 1;
    }
    StartVerdict::Stop
}

/// `(method, target)` from the first line of a (possibly partial or malformed) request head.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = &head[..memchr::memchr(b'\n', head)?];
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    let (m, t, v) = (parts.next()?, parts.next()?, parts.next()?);
    (v.starts_with("HTTP/1.") && startline::plausible_request_start(line.as_bytes()))
        .then_some((m, t))
}

/// Status code from the first line of a partial response head.
fn status_line(head: &[u8]) -> Option<u16> {
    match head {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            _,
            b' ',
            a,
            b,
            c,
            ..,
        ] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

pub(super) struct ReqSide<'a, 'b> {
    pub s: &'a mut Shared,
    pub cx: &'a mut Ctx<'b>,
}

impl ReqSide<'_, '_> {
    fn new_tx(&self, start_ns: u64) -> Transaction {
        self.cx.meta.transaction(start_ns)
    }

    fn push(
        &mut self,
        tx: Box<Transaction>,
        head_method: bool,
        connect: bool,
        tentative: bool,
    ) -> u64 {
        let http09 = tx.version == Some(HTTP09);
        let id = self.s.next_id;
        self.s.next_id += 1;
        self.s.requests += 1;
        let ack = self.s.client_ack;
        let sequential = match (self.s.last_request_ack, ack) {
            (None, Some(_)) => id == 0 && self.s.fresh,
            (Some(prev), Some(now)) => (now.wrapping_sub(prev) as i32) > 0,
            (_, None) => false,
        };
        self.s.last_request_ack = ack;
        if self.s.queue.capacity() == 0 {
            // One pending request is the common case: room for one, not the four a first
            // push would make room for (kept for the connection's life).
            self.s.queue.reserve_exact(1);
        }
        self.s.queue.push_back(Pending {
            id,
            tx,
            emitted: false,
            head_method,
            connect,
            ack,
            sequential,
            tentative,
            http09,
        });
        id
    }

    /// A request that could not be read fully still pairs with its response. Without a
    /// readable request line its method is `_OTHER` (OpenTelemetry's value for a method not
    /// known) and, when the error says it was malformed, it is tentative: recorded only if the
    /// server answers it.
    fn placeholder(&mut self, head: &[u8], start_ts: u64, error: ErrorType) {
        let mut tx = self.cx.spares.boxed(self.new_tx(start_ts));
        let line = request_line(head);
        let readable = line.is_some();
        if let Some((method, target)) = line {
            let (path, query) = head::split_target(target, &self.cx.identity.redact_keys);
            tx.method = Some(head::method_name(method));
            tx.path = Some(self.s.recent.path.share(path));
            tx.query = query.map(|q| self.s.recent.query.share(&q));
        } else if error == ErrorType::MalformedRequest {
            tx.method = Some(Cow::Borrowed(OTHER_METHOD));
        }
        tx.error = Some(error);
        tx.request_wire_bytes = head.len() as u64;
        let head_method = tx.method.as_deref() == Some("HEAD");
        let tentative = error == ErrorType::MalformedRequest && !readable;
        self.push(tx, head_method, false, tentative);
    }

    /// A request head read cleanly: queue its transaction.
    fn accept(
        &mut self,
        parsed: &head::RequestHead<'_>,
        meta: &MsgMeta,
        stats: &mut HttpStats,
    ) -> HeadVerdict {
        if parsed.te_with_cl {
            stats.parse_error(ParseErrorReason::TransferEncodingWithContentLength);
        }
        let info = &parsed.info;
        let (path, query) = head::split_target(info.target, &self.cx.identity.redact_keys);
        let head_method = info.method == "HEAD";
        let connect = info.method == "CONNECT";
        // Started from a finished record (see `crate::spares`), queued, and completed where it
        // lies, in its box.
        let (tx, left) = self.cx.spares.take(self.cx.meta, meta.start_ts);
        let id = self.push(tx, head_method, connect, false);
        self.s.cur_req = Some(id);
        let s = &mut *self.s;
        let Some(tx) = s.queue.back_mut().map(|p| &mut p.tx) else {
            return HeadVerdict::Body(parsed.body);
        };
        if let Some(id) = info.credential.and_then(|c| s.recent.client.client_id(c)) {
            tx.client_id = Some(id);
        } else if let Some(ip) = info
            .forwarded_for
            .client(tx.client.map(|a| a.ip()), self.cx.identity)
        {
            tx.client_id = Some(s.recent.client.forwarded_id(ip));
        }
        let recent = &mut s.recent;
        tx.path = Some(Leftovers::text(left.path, path, |p| recent.path.share(p)));
        tx.query = query.map(|q| Leftovers::text(left.query, &q, |q| recent.query.share(q)));
        tx.version = Some(if info.minor_version == 0 {
            "1.0"
        } else {
            "1.1"
        });
        tx.user_agent = info
            .user_agent
            .as_deref()
            .map(|ua| Leftovers::text(left.user_agent, ua, |ua| recent.user_agent.share(ua)));
        tx.request_id = info
            .request_id
            .as_deref()
            .map(|id| Leftovers::string(left.request_id, id));
        if let Some((trace, parent)) = info.trace {
            tx.trace_id = Some(Leftovers::string(left.trace_id, trace));
            tx.parent_span_id = Some(Leftovers::string(left.parent_span_id, parent));
        }
        tx.request_wire_bytes = meta.head_len;
        tx.request_body_size = Some(0);
        if let BodyKind::Length(n) = parsed.body {
            tx.request_body_size = Some(n);
            tx.request_wire_bytes += n;
        }
        tx.method = Some(head::method_name(info.method));
        HeadVerdict::Body(parsed.body)
    }

    fn current(&mut self) -> Option<&mut Pending> {
        let id = self.s.cur_req?;
        self.s
            .queue
            .iter_mut()
            .rev()
            .find(|p| p.id == id && !p.emitted)
    }
}

impl Handler for ReqSide<'_, '_> {
    fn on_start(&mut self, first: &[u8], ts: u64, stats: &mut HttpStats) -> StartVerdict {
        if self.s.mode != Mode::Http {
            return StartVerdict::Stop;
        }
        let first_bytes = !self.s.request_bytes_seen && self.s.responses == 0;
        self.s.request_bytes_seen = true;
        if startline::plausible_request_start(first) {
            return StartVerdict::Parse;
        }
        // On a flow joined mid-stream, boundaries are guesses (it starts inside a message):
        // find the next start line.
        if !self.s.fresh {
            return StartVerdict::Resync;
        }
        // Garbage where a request must start (TLS to a plain port, a lower-case method, a
        // binary probe): the server's answer tells a malformed request (a status line, nginx's
        // 400) from another protocol spoken on a watched port.
        let line = first
            .iter()
            .position(|&b| b == b'\n')
            .map_or(first, |n| &first[..=n]);
        self.placeholder(line, ts, ErrorType::MalformedRequest);
        if first_bytes {
            self.s.suspect = true;
        } else {
            stats.parse_error(ParseErrorReason::RequestHead);
        }
        StartVerdict::Resync
    }

    fn on_head(
        &mut self,
        head: &[u8],
        meta: &MsgMeta,
        _ts: u64,
        stats: &mut HttpStats,
    ) -> HeadVerdict {
        if let Some((method, target)) = head::simple_request(head) {
            let (path, query) = head::split_target(&target, &self.cx.identity.redact_keys);
            let tx = Transaction {
                method: Some(head::method_name(&method)),
                path: Some(self.s.recent.path.share(path)),
                query: query.map(|q| self.s.recent.query.share(&q)),
                version: Some(HTTP09),
                request_wire_bytes: head.len() as u64,
                request_body_size: Some(0),
                ..self.new_tx(meta.start_ts)
            };
            let tx = self.cx.spares.boxed(tx);
            self.push(tx, false, false, false);
            return HeadVerdict::Body(BodyKind::None);
        }
        let parsed = match head::parse_request(head, self.cx.limits, self.cx.identity) {
            Ok(p) => p,
            Err(reason) => {
                if self.s.fresh && self.s.requests == 0 && request_line(head).is_none() {
                    // Not even a request line: HTTP only if the server answers it as such.
                    self.s.suspect = true;
                } else {
                    stats.parse_error(reason);
                }
                self.placeholder(head, meta.start_ts, ErrorType::MalformedRequest);
                return HeadVerdict::Resync;
            }
        };
        self.accept(&parsed, meta, stats)
    }

    fn on_head_prefix(
        &mut self,
        bytes: &[u8],
        meta: &mut MsgMeta,
        _ts: u64,
        stats: &mut HttpStats,
    ) -> Option<(usize, HeadVerdict)> {
        // A `let … else` binds the head where the parser wrote it; `.ok().flatten()?` moved
        // the ~200-byte head twice (two `memcpy` calls per request).
        let Ok(Some((len, parsed))) =
            head::parse_request_prefix(bytes, self.cx.limits, self.cx.identity)
        else {
            return None;
        };
        meta.head_len = len as u64;
        Some((len, self.accept(&parsed, meta, stats)))
    }

    fn on_complete(&mut self, meta: &MsgMeta, _ts: u64, _stats: &mut HttpStats) {
        if let Some(p) = self.current() {
            p.tx.request_body_size = (!meta.size_unknown).then_some(meta.body_size);
            p.tx.request_wire_bytes = meta.head_len + meta.body_wire;
            if meta.lost_body {
                p.tx.error.get_or_insert(ErrorType::CaptureGap);
            }
        }
        self.s.cur_req = None;
    }

    fn on_lost(
        &mut self,
        why: Loss,
        in_head: bool,
        partial: &[u8],
        meta: &MsgMeta,
        _ts: u64,
        _stats: &mut HttpStats,
    ) {
        self.s.request_bytes_seen = true;
        let error = match why {
            Loss::Gap => ErrorType::CaptureGap,
            Loss::Malformed => ErrorType::MalformedRequest,
        };
        if in_head && !partial.is_empty() {
            self.placeholder(partial, meta.start_ts, error);
        } else if !in_head
            && self.s.cur_req.is_some()
            && let Some(p) = self.current()
        {
            p.tx.error.get_or_insert(error);
        }
        if why == Loss::Gap {
            // Whole requests may be inside the gap: responses will tell.
            self.s.request_gap = Some(self.s.next_id);
        }
        self.s.cur_req = None;
    }

    fn on_end(&mut self, _in_message: bool, _meta: &MsgMeta, _ts: u64, _stats: &mut HttpStats) {
        // The client half-closed; pending requests still wait for their responses.
        self.s.cur_req = None;
    }

    fn stopped(&self) -> bool {
        self.s.mode != Mode::Http
    }
}

pub(super) struct RespSide<'a, 'b> {
    pub s: &'a mut Shared,
    pub cx: &'a mut Ctx<'b>,
}

impl RespSide<'_, '_> {
    /// Completes the oldest request with the response read so far.
    pub(super) fn pair(
        &mut self,
        meta: &MsgMeta,
        ts: u64,
        error: Option<ErrorType>,
        stats: &mut HttpStats,
    ) {
        let status = self.s.resp.status.take();
        let answers_lost = std::mem::take(&mut self.s.resp.answers_lost);
        let front = if answers_lost {
            None
        } else {
            self.s.queue.front().map(|p| (p.id, p.emitted, p.http09))
        };
        let Some((id, emitted, http09)) = front else {
            if answers_lost || self.s.request_gap.is_some() {
                // The server answered a request that was lost in a gap.
                let tx = Transaction {
                    status,
                    response_wire_bytes: meta.head_len + meta.body_wire,
                    error: Some(ErrorType::CaptureGap),
                    ..self.cx.meta.transaction(meta.start_ts)
                };
                let tx = self.cx.spares.boxed(tx);
                record(tx, self.cx, stats);
            } else {
                stats.orphan_responses += 1;
            }
            return;
        };
        if self
            .s
            .request_gap
            .is_some_and(|first_after| id >= first_after)
        {
            self.s.request_gap = None;
        }
        if emitted {
            self.s.queue.pop_front();
            stats.late_responses += 1;
            return;
        }
        let uncertain = std::mem::take(&mut self.s.resp.uncertain);
        // Completed where it lies in the queue, then moved once, into the output.
        let Some(p) = self.s.queue.front_mut() else {
            return;
        };
        let tx = &mut p.tx;
        tx.status = status;
        if meta.head_len > 0 || http09 {
            tx.ttfb_ns = Some(meta.start_ts.saturating_sub(tx.start_ns));
            tx.response_body_size = (!meta.size_unknown).then_some(meta.body_size);
            tx.response_wire_bytes = meta.head_len + meta.body_wire;
        }
        tx.duration_ns = Some(ts.saturating_sub(tx.start_ns));
        if let Some(e) = error {
            tx.error.get_or_insert(e);
        }
        if uncertain {
            tx.error.get_or_insert(ErrorType::CaptureGap);
        }
        if meta.lost_body {
            tx.error.get_or_insert(ErrorType::CaptureGap);
        }
        if let Some(p) = self.s.queue.pop_front() {
            record(p.tx, self.cx, stats);
        }
    }
}

impl RespSide<'_, '_> {
    /// A response head read cleanly: pair it, or wait for its body.
    fn accept(
        &mut self,
        parsed: head::ResponseHead,
        meta: &MsgMeta,
        ts: u64,
        stats: &mut HttpStats,
    ) -> HeadVerdict {
        if parsed.te_with_cl {
            stats.parse_error(ParseErrorReason::TransferEncodingWithContentLength);
        }
        self.s.responses += 1;
        let status = parsed.status;
        if (100..200).contains(&status) && status != 101 {
            self.s.resp.interim = true;
            return HeadVerdict::Done;
        }
        self.realign(meta.start_pos, stats);
        self.s.resp.status = Some(status);
        let (head_method, connect) = self
            .s
            .queue
            .front()
            .map_or((false, false), |p| (p.head_method, p.connect));
        let tunnel = status == 101 || (connect && (200..300).contains(&status));
        if tunnel {
            self.pair(meta, ts, None, stats);
            self.s.mode = Mode::Tunnel;
            return HeadVerdict::Stop;
        }
        if head_method || connect {
            return HeadVerdict::Body(BodyKind::None);
        }
        HeadVerdict::Body(parsed.body)
    }
}

impl Handler for RespSide<'_, '_> {
    fn on_start(&mut self, first: &[u8], _ts: u64, stats: &mut HttpStats) -> StartVerdict {
        if self.s.mode != Mode::Http {
            return StartVerdict::Stop;
        }
        let first_bytes = self.s.responses == 0 && self.s.requests == 0;
        if first_bytes
            && (startline::looks_like_tls(first) || (self.s.fresh && !self.s.request_bytes_seen))
        {
            return not_http(self.s, stats);
        }
        let status_line = startline::plausible_status_start(first);
        if !status_line && self.s.queue.front().is_some_and(|p| p.http09 && !p.emitted) {
            // The answer to an HTTP/0.9 request: the body alone, until the server closes.
            return StartVerdict::Headless;
        }
        if self.s.suspect {
            if !status_line {
                // Garbage answered by more garbage: another protocol.
                self.s.suspect = false;
                return not_http(self.s, stats);
            }
            // The server answers in HTTP: the flow's first request was malformed.
            self.s.suspect = false;
            stats.parse_error(ParseErrorReason::RequestHead);
        }
        if status_line {
            StartVerdict::Parse
        } else {
            StartVerdict::Resync
        }
    }

    fn on_head(
        &mut self,
        head: &[u8],
        meta: &MsgMeta,
        ts: u64,
        stats: &mut HttpStats,
    ) -> HeadVerdict {
        let parsed = match head::parse_response(head, self.cx.limits) {
            Ok(p) => p,
            Err(reason) => {
                stats.parse_error(reason);
                self.s.resp.status = status_line(head);
                self.pair(meta, ts, Some(ErrorType::MalformedResponse), stats);
                return HeadVerdict::Resync;
            }
        };
        self.accept(parsed, meta, ts, stats)
    }

    fn on_head_prefix(
        &mut self,
        bytes: &[u8],
        meta: &mut MsgMeta,
        ts: u64,
        stats: &mut HttpStats,
    ) -> Option<(usize, HeadVerdict)> {
        let Ok(Some((len, parsed))) = head::parse_response_prefix(bytes, self.cx.limits) else {
            return None;
        };
        meta.head_len = len as u64;
        Some((len, self.accept(parsed, meta, ts, stats)))
    }

    fn on_complete(&mut self, meta: &MsgMeta, ts: u64, stats: &mut HttpStats) {
        if std::mem::take(&mut self.s.resp.interim) {
            return;
        }
        self.pair(meta, ts, None, stats);
    }

    fn on_lost(
        &mut self,
        why: Loss,
        in_head: bool,
        partial: &[u8],
        meta: &MsgMeta,
        ts: u64,
        stats: &mut HttpStats,
    ) {
        let error = match why {
            Loss::Gap => ErrorType::CaptureGap,
            Loss::Malformed => ErrorType::MalformedResponse,
        };
        if in_head {
            self.s.resp.status = status_line(partial);
            self.s.resp.interim = false;
        }
        if why == Loss::Gap {
            self.s.response_gap = true;
            // Lost at a message boundary: how many responses the gap held is for the client's
            // ACKs to tell at the next response (or the end); without them, one.
            let boundary = !in_head && meta.head_len == 0;
            let acked = self.s.queue.front().is_some_and(|p| p.ack.is_some());
            if boundary && (acked || self.s.queue.is_empty()) {
                return;
            }
        }
        if std::mem::take(&mut self.s.resp.interim) {
            return;
        }
        self.pair(meta, ts, Some(error), stats);
    }

    fn on_end(&mut self, in_message: bool, meta: &MsgMeta, ts: u64, stats: &mut HttpStats) {
        if in_message && !std::mem::take(&mut self.s.resp.interim) {
            self.pair(meta, ts, Some(ErrorType::ConnectionClosed), stats);
        }
        if std::mem::take(&mut self.s.suspect) {
            // Garbage never answered with a status line: not shown to be HTTP.
            stats.non_http_flows += 1;
        }
        // The server closed: nothing else will be answered.
        while let Some(p) = self.s.queue.pop_front() {
            if !p.emitted && !p.tentative {
                let mut tx = p.tx;
                tx.error.get_or_insert(self.s.unanswered(p.ack));
                record(tx, self.cx, stats);
            }
        }
    }

    fn stopped(&self) -> bool {
        self.s.mode != Mode::Http
    }
}
