//! The fast path for message heads: the strict form that clients and servers send almost
//! always, read in one pass, eight bytes at a time, with no header array and no httparse.
//!
//! The strict form is:
//! - every line is printable ASCII (0x20..=0x7E) and ends with CRLF;
//! - the start line comes first (no leading empty lines);
//! - a request line is `token SP target SP HTTP/1.x`, where the target has no space;
//! - a status line is `HTTP/1.x SP 3DIGIT`, then nothing or `SP reason`;
//! - a header is a token name followed directly by `:`;
//! - the empty line that ends the head is in the bytes;
//! - there are at most `max_headers` headers.
//!
//! Anything else returns `None`, and the caller parses the same bytes with httparse. Tabs,
//! bare LF, obs-text, a head cut short and every malformed head take that path. The strict form
//! is a subset of what httparse accepts, and on it this module must give exactly what httparse
//! gives: the head's length, start line fields, and every header's name and trimmed value, in
//! order. `head::tests` checks this for every byte in every position of sample heads, and the
//! `head_differential` fuzz target checks it on arbitrary input.

use crate::ascii;

/// `tchar` of RFC 9110 §5.6.2: the bytes of a method or a header name.
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'!' | b'#'..=b'\'' | b'*' | b'+');
        t[b] |= matches!(c, b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~');
        b += 1;
    }
    t
};

fn is_token(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// The lines of a head in the strict form.
struct Lines<'h> {
    bytes: &'h [u8],
    pos: usize,
}

impl<'h> Lines<'h> {
    /// The next line without its CRLF, or `None` when the bytes leave the strict form.
    #[inline(always)]
    fn next_line(&mut self) -> Option<&'h [u8]> {
        let end = ascii::first_unprintable(self.bytes, self.pos);
        if self.bytes.get(end..end + 2)? != b"\r\n" {
            return None;
        }
        let line = &self.bytes[self.pos..end];
        self.pos = end + 2;
        Some(line)
    }

    /// Hands every header to `header` until the empty line; the head's length. `None` past
    /// `max` headers or on anything outside the strict form.
    fn headers(mut self, max: usize, mut header: impl FnMut(&'h [u8], &'h [u8])) -> Option<usize> {
        let mut count = 0;
        loop {
            let line = self.next_line()?;
            if line.is_empty() {
                return Some(self.pos);
            }
            count += 1;
            if count > max {
                return None;
            }
            let (name, value) = header_line(line)?;
            header(name, value);
        }
    }
}

/// The length of the token at the start of `line` (printable ASCII): eight bytes at a time
/// while they are letters or `-`, then byte by byte.
fn token_len(line: &[u8]) -> usize {
    let mut i = 0;
    while let Some(w) = ascii::word(line, i) {
        let n = ascii::leading_letters_or_dash(w);
        i += n;
        if n < 8 {
            break;
        }
    }
    while line.get(i).is_some_and(|b| is_token(*b)) {
        i += 1;
    }
    i
}

/// `name: value` with the value's surrounding spaces trimmed (the line has no tabs).
fn header_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = token_len(line);
    if colon == 0 || line.get(colon) != Some(&b':') {
        return None;
    }
    Some((&line[..colon], line[colon + 1..].trim_ascii()))
}

/// The start line of a request in the strict form.
pub(super) struct RequestLine<'h> {
    pub method: &'h str,
    pub target: &'h str,
    pub minor_version: u8,
}

fn request_line(line: &[u8]) -> Option<RequestLine<'_>> {
    let sp = token_len(line);
    if sp == 0 || line.get(sp) != Some(&b' ') {
        return None;
    }
    let rest = &line[sp + 1..];
    let (target, version) = rest.split_at_checked(rest.len().checked_sub(9)?)?;
    let minor_version = match version {
        b" HTTP/1.1" => 1,
        b" HTTP/1.0" => 0,
        _ => return None,
    };
    if target.is_empty() || ascii::contains(target, b' ') {
        return None;
    }
    // Printable ASCII, so UTF-8: one check for both fields.
    let line = ascii::as_str(line)?;
    Some(RequestLine {
        method: &line[..sp],
        target: &line[sp + 1..sp + 1 + target.len()],
        minor_version,
    })
}

/// `(status, minor version)` of a status line in the strict form.
fn status_line(line: &[u8]) -> Option<(u16, u8)> {
    let minor_version = match line.get(..9)? {
        b"HTTP/1.1 " => 1,
        b"HTTP/1.0 " => 0,
        _ => return None,
    };
    let code = line.get(9..12)?;
    if !code.iter().all(u8::is_ascii_digit) || line.get(12).is_some_and(|b| *b != b' ') {
        return None;
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    Some((status, minor_version))
}

/// A request head at the start of `bytes` in the strict form: its length and start line, with
/// every header handed to `header` in order.
pub(super) fn request<'h>(
    bytes: &'h [u8],
    max_headers: usize,
    header: impl FnMut(&'h [u8], &'h [u8]),
) -> Option<(usize, RequestLine<'h>)> {
    let mut lines = Lines { bytes, pos: 0 };
    let start = request_line(lines.next_line()?)?;
    let len = lines.headers(max_headers, header)?;
    Some((len, start))
}

/// A response head at the start of `bytes` in the strict form: its length, status and minor
/// version, with every header handed to `header` in order.
pub(super) fn response<'h>(
    bytes: &'h [u8],
    max_headers: usize,
    header: impl FnMut(&'h [u8], &'h [u8]),
) -> Option<(usize, u16, u8)> {
    let mut lines = Lines { bytes, pos: 0 };
    let (status, minor_version) = status_line(lines.next_line()?)?;
    let len = lines.headers(max_headers, header)?;
    Some((len, status, minor_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_len_is_the_first_non_token_byte_in_every_position() {
        for len in 0..20 {
            for at in 0..len {
                for b in 0x20..0x7Fu8 {
                    let mut line = b"Content-Length-Xyz09"[..len].to_vec();
                    line[at] = b;
                    let want = line.iter().position(|c| !is_token(*c)).unwrap_or(len);
                    assert_eq!(
                        token_len(&line),
                        want,
                        "{:?}",
                        String::from_utf8_lossy(&line)
                    );
                }
            }
        }
    }

    #[test]
    fn the_token_table_is_rfc_9110_tchar() {
        let tchar =
            b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        for b in 0..=255u8 {
            assert_eq!(is_token(b), tchar.contains(&b), "byte {b:#x}");
        }
    }
}
