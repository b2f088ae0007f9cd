//! Message heads: the syntax (the [`fast`] path for the common strict form, httparse for
//! the rest), then the framing decision of RFC 9112 §6 and the few header values a
//! [`Transaction`](crate::Transaction) keeps, folded in one pass over the headers.

use std::borrow::Cow;
use std::mem::MaybeUninit;

mod fast;
#[cfg(test)]
mod tests;

use super::stats::ParseErrorReason;
use crate::ascii;
pub use crate::identity::Credential;
use crate::identity::{self, IdentityConfig};

/// How big a message head may be; past either limit it is malformed. `Default` gives the
/// documented values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLimits {
    /// Header lines per message. Default 100.
    pub max_headers: usize,
    /// Bytes of a head (start line + headers + empty line). Default 16 KiB.
    pub max_head_bytes: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_headers: 100,
            max_head_bytes: 16 * 1024,
        }
    }
}

/// How the body of a message is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
    /// Until the server closes the connection (responses only).
    Close,
}

/// `(method, target)` of an HTTP/0.9 simple request head (`METHOD SP target CRLF`).
pub fn simple_request(head: &[u8]) -> Option<(String, String)> {
    let end = super::startline::simple_request_end(head)?;
    if end != head.len() {
        return None;
    }
    let line = std::str::from_utf8(head).ok()?.trim_end();
    let (method, target) = line.split_once(' ')?;
    Some((method.to_owned(), target.to_owned()))
}

/// The method as a record keeps it: the standard methods (RFC 9110 and PATCH) without a copy.
pub fn method_name(method: &str) -> Cow<'static, str> {
    Cow::Borrowed(match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        other => return Cow::Owned(other.to_owned()),
    })
}

/// What a request head says, besides the transaction fields. Borrowed from the head bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo<'h> {
    pub method: &'h str,
    pub target: &'h str,
    pub minor_version: u8,
    pub user_agent: Option<Cow<'h, str>>,
    pub request_id: Option<Cow<'h, str>>,
    /// Trace and parent span ids of a valid W3C traceparent.
    pub trace: Option<(&'h str, &'h str)>,
    /// What names the API consumer, as sent (the caller derives `key:…` or `sub:…` from it,
    /// and applies the IP fallback).
    pub credential: Option<Credential<'h>>,
    pub forwarded_for: identity::ForwardedFor,
    pub upgrade: bool,
}

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead<'h> {
    pub info: RequestInfo<'h>,
    pub body: BodyKind,
    /// Transfer-Encoding and Content-Length together (framed as chunked, still flagged).
    pub te_with_cl: bool,
}

/// A parsed response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub minor_version: u8,
    pub te_with_cl: bool,
    /// Framing as if the request were a plain GET (the caller applies HEAD / CONNECT).
    pub body: BodyKind,
}

/// The framing headers of a head, folded one header at a time. The first error is kept and
/// reported once the whole head has parsed, so a syntax error further on still wins, as it
/// did when the headers were read after httparse.
#[derive(Default)]
struct Framing {
    chunked: bool,
    te_seen: bool,
    length: Option<u64>,
    error: Option<ParseErrorReason>,
}

impl Framing {
    /// Folds one header; false when it is not a framing header.
    fn header(&mut self, name: &[u8], value: &[u8]) -> bool {
        match name.len() {
            17 if ascii::is_name(name, b"transfer-encoding") => {
                self.te_seen = true;
                let last = value.rsplit(|b| *b == b',').next().unwrap_or(&[]);
                self.chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
                true
            }
            14 if ascii::is_name(name, b"content-length") => {
                if self.error.is_none() {
                    self.error = self.content_length(value).err();
                }
                true
            }
            _ => false,
        }
    }

    fn content_length(&mut self, value: &[u8]) -> Result<(), ParseErrorReason> {
        for part in value.split(|b| *b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || part.len() > 18 || !part.iter().all(u8::is_ascii_digit) {
                return Err(ParseErrorReason::InvalidContentLength);
            }
            let v = part.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0'));
            match self.length {
                Some(prev) if prev != v => return Err(ParseErrorReason::ConflictingContentLength),
                _ => self.length = Some(v),
            }
        }
        Ok(())
    }

    /// Transfer-Encoding other than chunked last.
    fn te_other(&self) -> bool {
        self.te_seen && !self.chunked
    }

    /// Transfer-Encoding and Content-Length together.
    fn te_with_cl(&self) -> bool {
        self.te_seen && self.length.is_some()
    }
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// A head at the start of some bytes: its length and what it says, or `None` when the bytes
/// hold only part of a head.
pub type Prefix<T> = Option<(usize, T)>;

/// Parses a complete request head (`head` ends with the empty line).
pub fn parse_request<'h>(
    head: &'h [u8],
    limits: &HeadLimits,
    id: &IdentityConfig,
) -> Result<RequestHead<'h>, ParseErrorReason> {
    match parse_request_prefix(head, limits, id)? {
        Some((_, parsed)) => Ok(parsed),
        None => Err(ParseErrorReason::RequestHead),
    }
}

/// What a request head's headers say, folded one header at a time.
struct RequestFields<'h, 'c> {
    id: &'c IdentityConfig,
    framing: Framing,
    info: RequestInfo<'h>,
    api_key: Option<&'h [u8]>,
    authorization: Option<&'h [u8]>,
    connection_upgrade: bool,
    upgrade: bool,
}

impl<'h, 'c> RequestFields<'h, 'c> {
    fn new(id: &'c IdentityConfig) -> Self {
        RequestFields {
            id,
            framing: Framing::default(),
            info: RequestInfo::default(),
            api_key: None,
            authorization: None,
            connection_upgrade: false,
            upgrade: false,
        }
    }

    fn header(&mut self, n: &[u8], value: &'h [u8]) {
        let id = self.id;
        let framing = self.framing.header(n, value);
        if n.len() == id.client_id_header.len()
            && n.eq_ignore_ascii_case(id.client_id_header.as_bytes())
        {
            if self.api_key.is_none() && !value.trim_ascii().is_empty() {
                self.api_key = Some(value.trim_ascii());
            }
            return;
        }
        if framing {
            return;
        }
        let info = &mut self.info;
        // Dispatch on the length first: most headers are none of these.
        match n.len() {
            13 if self.authorization.is_none() && ascii::is_name(n, b"authorization") => {
                self.authorization = Some(value);
            }
            10 if ascii::is_name(n, b"user-agent") => {
                info.user_agent = identity::bounded_header(value, identity::MAX_USER_AGENT_CHARS);
            }
            12 if ascii::is_name(n, b"x-request-id") => {
                info.request_id = identity::bounded_header(value, identity::MAX_REQUEST_ID_CHARS);
            }
            11 if ascii::is_name(n, b"traceparent") => {
                info.trace = identity::parse_traceparent(value);
            }
            15 if !id.trusted_proxies.is_empty() && ascii::is_name(n, b"x-forwarded-for") => {
                info.forwarded_for.add(value, id);
            }
            10 if ascii::is_name(n, b"connection") => {
                self.connection_upgrade |= has_token(value, b"upgrade");
            }
            7 if ascii::is_name(n, b"upgrade") => self.upgrade = true,
            _ => {}
        }
    }

    fn finish(
        self,
        len: usize,
        method: &'h str,
        target: &'h str,
        minor_version: u8,
    ) -> Result<Prefix<RequestHead<'h>>, ParseErrorReason> {
        let f = self.framing;
        if let Some(e) = f.error {
            return Err(e);
        }
        let body = if f.te_other() {
            return Err(ParseErrorReason::UnsupportedTransferEncoding);
        } else if f.chunked {
            BodyKind::Chunked
        } else {
            f.length
                .filter(|n| *n > 0)
                .map_or(BodyKind::None, BodyKind::Length)
        };
        let info = RequestInfo {
            method,
            target,
            minor_version,
            credential: self
                .api_key
                .map(Credential::ApiKey)
                .or(self.authorization.map(Credential::Authorization)),
            upgrade: self.upgrade && self.connection_upgrade,
            ..self.info
        };
        Ok(Some((
            len,
            RequestHead {
                info,
                body,
                te_with_cl: f.te_with_cl(),
            },
        )))
    }
}

/// Parses the request head at the start of `bytes`, which may hold more (a body, the next
/// request) or less (`Ok(None)`): one pass finds the end of the head and reads it. Heads in
/// the common strict form take [`fast`]; the rest, and every error, are httparse's.
pub fn parse_request_prefix<'h>(
    bytes: &'h [u8],
    limits: &HeadLimits,
    id: &IdentityConfig,
) -> Result<Prefix<RequestHead<'h>>, ParseErrorReason> {
    let mut fields = RequestFields::new(id);
    if let Some((len, line)) = fast::request(bytes, limits.max_headers, |n, v| fields.header(n, v))
    {
        return fields.finish(len, line.method, line.target, line.minor_version);
    }
    reference::parse_request_prefix(bytes, limits, id)
}

/// Parses a complete response head.
pub fn parse_response(head: &[u8], limits: &HeadLimits) -> Result<ResponseHead, ParseErrorReason> {
    match parse_response_prefix(head, limits)? {
        Some((_, parsed)) => Ok(parsed),
        None => Err(ParseErrorReason::ResponseHead),
    }
}

/// The response head from its status line and framing headers.
fn response_head(
    len: usize,
    status: u16,
    minor_version: u8,
    f: &Framing,
) -> Result<Prefix<ResponseHead>, ParseErrorReason> {
    if let Some(e) = f.error {
        return Err(e);
    }
    let body = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyKind::None
    } else if f.chunked {
        BodyKind::Chunked
    } else if f.te_other() {
        BodyKind::Close
    } else {
        match f.length {
            Some(0) => BodyKind::None,
            Some(n) => BodyKind::Length(n),
            None => BodyKind::Close,
        }
    };
    Ok(Some((
        len,
        ResponseHead {
            status,
            minor_version,
            te_with_cl: f.te_with_cl(),
            body,
        },
    )))
}

/// Parses the response head at the start of `bytes` (see [`parse_request_prefix`]).
pub fn parse_response_prefix(
    bytes: &[u8],
    limits: &HeadLimits,
) -> Result<Prefix<ResponseHead>, ParseErrorReason> {
    let mut f = Framing::default();
    if let Some((len, status, minor)) = fast::response(bytes, limits.max_headers, |n, v| {
        f.header(n, v);
    }) {
        return response_head(len, status, minor, &f);
    }
    reference::parse_response_prefix(bytes, limits)
}

/// The httparse path: every head outside the fast path's strict form, and the reference the
/// fast path is checked against (tests and the `head_differential` fuzz target).
pub mod reference {
    use super::*;

    /// Header slots tried first (on the stack, uninitialised); heads with more headers retry
    /// with `max` on the heap.
    const FEW_HEADERS: usize = 32;

    type Slot<'b> = MaybeUninit<httparse::Header<'b>>;

    /// Runs `parse` with a header slice of at most `max` entries: first a small stack array,
    /// then (only if that overflowed) a heap one.
    fn with_headers<'b, R>(
        max: usize,
        mut parse: impl FnMut(&mut [Slot<'b>]) -> Result<R, ParseErrorReason>,
    ) -> Result<R, ParseErrorReason> {
        let mut few = [const { MaybeUninit::uninit() }; FEW_HEADERS];
        match parse(&mut few[..max.min(FEW_HEADERS)]) {
            Err(ParseErrorReason::TooManyHeaders) if max > FEW_HEADERS => {
                let mut many: Vec<Slot<'b>> = Vec::with_capacity(max);
                many.resize_with(max, MaybeUninit::uninit);
                parse(&mut many)
            }
            other => other,
        }
    }

    /// Maps an httparse failure to a reason.
    fn syntax(e: httparse::Error, otherwise: ParseErrorReason) -> ParseErrorReason {
        match e {
            httparse::Error::TooManyHeaders => ParseErrorReason::TooManyHeaders,
            _ => otherwise,
        }
    }

    /// [`super::parse_request_prefix`] by httparse alone.
    pub fn parse_request_prefix<'h>(
        bytes: &'h [u8],
        limits: &HeadLimits,
        id: &IdentityConfig,
    ) -> Result<Prefix<RequestHead<'h>>, ParseErrorReason> {
        with_headers(limits.max_headers, |slots| {
            let mut req = httparse::Request::new(&mut []);
            let len = match req.parse_with_uninit_headers(bytes, slots) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(syntax(e, ParseErrorReason::RequestHead)),
            };
            let mut fields = RequestFields::new(id);
            for h in req.headers.iter() {
                fields.header(h.name.as_bytes(), h.value);
            }
            fields.finish(
                len,
                req.method.unwrap_or_default(),
                req.path.unwrap_or_default(),
                req.version.unwrap_or(1),
            )
        })
    }

    /// [`super::parse_response_prefix`] by httparse alone.
    pub fn parse_response_prefix(
        bytes: &[u8],
        limits: &HeadLimits,
    ) -> Result<Prefix<ResponseHead>, ParseErrorReason> {
        with_headers(limits.max_headers, |slots| {
            let mut resp = httparse::Response::new(&mut []);
            let len = match httparse::ParserConfig::default()
                .parse_response_with_uninit_headers(&mut resp, bytes, slots)
            {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(syntax(e, ParseErrorReason::ResponseHead)),
            };
            let mut f = Framing::default();
            for h in resp.headers.iter() {
                f.header(h.name.as_bytes(), h.value);
            }
            response_head(len, resp.code.unwrap_or(0), resp.version.unwrap_or(1), &f)
        })
    }
}

/// Splits a request target into (path, query) and applies redaction to the query. Only a
/// redacted query is copied.
pub fn split_target<'t>(target: &'t str, keys: &[String]) -> (&'t str, Option<Cow<'t, str>>) {
    // Absolute form (`http://host/path`): drop scheme and authority. Origin form, the usual
    // one, starts with `/` and cannot be absolute.
    let rest = if target.starts_with('/') {
        target
    } else {
        match target.find("://") {
            Some(i) if !target[..i].contains('/') => {
                let after = &target[i + 3..];
                after.find(['/', '?']).map_or("/", |j| &after[j..])
            }
            _ => target,
        }
    };
    let (path, query) = match memchr::memchr(b'?', rest.as_bytes()) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    let query = query.map(|q| {
        if identity::needs_redaction(q, keys) {
            Cow::Owned(identity::redact_query(q, keys))
        } else {
            Cow::Borrowed(q)
        }
    });
    (path, query)
}
