//! Recognising start lines in a byte stream: the first bytes of a flow (is this HTTP at all?)
//! and resynchronisation after a gap or a mid-stream join.

use memchr::memmem;

/// Methods recognised when a request line is glued to the end of a previous body.
const KNOWN_METHODS: [&[u8]; 9] = [
    b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE",
];
const MAX_METHOD: usize = 20;

fn is_method_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'-' || b == b'_'
}

/// Could `bytes` be the beginning of a request line? (`false` only when surely not.)
pub fn plausible_request_start(bytes: &[u8]) -> bool {
    let method = bytes.iter().take_while(|b| is_method_byte(**b)).count();
    if method == 0 {
        return bytes.is_empty();
    }
    if method > MAX_METHOD {
        return false;
    }
    match bytes.get(method) {
        None => true,
        Some(b' ') => match bytes.get(method + 1) {
            None => true,
            Some(c) => c.is_ascii_graphic(),
        },
        Some(_) => false,
    }
}

/// Could `bytes` be the beginning of a status line?
pub fn plausible_status_start(bytes: &[u8]) -> bool {
    let n = bytes.len().min(7);
    bytes[..n] == b"HTTP/1."[..n]
}

/// The end (after its line feed) of an HTTP/0.9 simple request, `METHOD SP target CRLF`, at the
/// start of `buf`: a request line without a version. `None` for anything else, or before the
/// line is complete.
pub fn simple_request_end(buf: &[u8]) -> Option<usize> {
    let lf = memchr::memchr(b'\n', buf)?;
    let line = buf[..lf].strip_suffix(b"\r").unwrap_or(&buf[..lf]);
    let method = line.iter().take_while(|b| is_method_byte(**b)).count();
    let target = line.get(method + 1..)?;
    let simple = (1..=MAX_METHOD).contains(&method)
        && line[method] == b' '
        && !target.is_empty()
        && target.iter().all(u8::is_ascii_graphic);
    simple.then_some(lf + 1)
}

/// TLS record header (handshake, alert, change cipher spec, application data).
pub fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [0x14..=0x17, 0x03, 0x00..=0x04, ..])
}

/// Finds the start of the first complete request line (`TOKEN SP target SP HTTP/1.x` + LF) in
/// `buf` at or after `from`.
pub fn find_request_line(buf: &[u8], from: usize) -> Option<usize> {
    let finder = memmem::Finder::new(b" HTTP/1.");
    let mut pos = from;
    while let Some(rel) = finder.find(buf.get(pos..)?) {
        let h = pos + rel;
        pos = h + 1;
        let tail = &buf[h + 8..];
        let line_end = matches!(tail, [d, b'\r', b'\n', ..] | [d, b'\n', ..] if d.is_ascii_digit());
        if !line_end {
            continue;
        }
        // Walk back over the target, then the method.
        let target_start = buf[..h]
            .iter()
            .rposition(|b| !b.is_ascii_graphic())
            .map_or(0, |p| p + 1);
        if target_start == h || target_start == 0 || buf[target_start - 1] != b' ' {
            continue;
        }
        let method_end = target_start - 1;
        let method_start = buf[..method_end]
            .iter()
            .rposition(|b| !is_method_byte(*b))
            .map_or(0, |p| p + 1);
        let method = &buf[method_start..method_end];
        if method.is_empty() {
            continue;
        }
        let known = |m: &[u8]| KNOWN_METHODS.contains(&m);
        if !known(method)
            && let Some(m) = KNOWN_METHODS.iter().find(|m| method.ends_with(m))
        {
            return Some(method_end - m.len());
        }
        let at_line_start = method_start == 0 || buf[method_start - 1] == b'\n';
        if method.len() <= MAX_METHOD && (at_line_start || known(method)) {
            return Some(method_start);
        }
    }
    None
}

/// Finds the start of the first status line (`HTTP/1.x SP 3DIGIT`) at or after `from`.
pub fn find_status_line(buf: &[u8], from: usize) -> Option<usize> {
    let finder = memmem::Finder::new(b"HTTP/1.");
    let mut pos = from;
    while let Some(rel) = finder.find(buf.get(pos..)?) {
        let h = pos + rel;
        pos = h + 1;
        if let [v, b' ', a, b, c, e, ..] = buf[h + 7..]
            && v.is_ascii_digit()
            && a.is_ascii_digit()
            && b.is_ascii_digit()
            && c.is_ascii_digit()
            && matches!(e, b' ' | b'\r' | b'\n')
        {
            return Some(h);
        }
    }
    None
}

/// Index just past the empty line that ends a head (`CRLF CRLF` or bare `LF LF`), searching
/// from `from`.
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    while let Some(rel) = memchr::memchr(b'\n', buf.get(pos..)?) {
        let i = pos + rel;
        match &buf[i + 1..] {
            [b'\n', ..] => return Some(i + 2),
            [b'\r', b'\n', ..] => return Some(i + 3),
            _ => pos = i + 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::at_start(&b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"[..], Some(0))]
    #[case::after_body_line(&b"xx\r\nPOST /b?q=1 HTTP/1.0\r\n"[..], Some(4))]
    #[case::glued_to_body(&b"{\"a\":1}GET /c HTTP/1.1\r\n"[..], Some(7))]
    #[case::glued_to_uppercase_body(&b"ABCGET /c HTTP/1.1\r\n"[..], Some(3))]
    #[case::incomplete_line(&b"GET /a HTTP/1.1"[..], None)]
    #[case::no_method(&b" /a HTTP/1.1\r\n"[..], None)]
    #[case::response_is_not_request(&b"HTTP/1.1 200 OK\r\n"[..], None)]
    fn request_lines_are_found(#[case] buf: &[u8], #[case] want: Option<usize>) {
        assert_eq!(find_request_line(buf, 0), want);
    }

    #[rstest]
    #[case::at_start(&b"HTTP/1.1 200 OK\r\n"[..], Some(0))]
    #[case::after_body(&b"abcHTTP/1.0 404 Not Found\r\n"[..], Some(3))]
    #[case::no_reason(&b"HTTP/1.1 204\r\n"[..], Some(0))]
    #[case::not_status(&b"HTTP/1.1 2x0 OK\r\n"[..], None)]
    fn status_lines_are_found(#[case] buf: &[u8], #[case] want: Option<usize>) {
        assert_eq!(find_status_line(buf, 0), want);
    }

    #[rstest]
    #[case::crlf(&b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest"[..], Some(24))]
    #[case::bare_lf(&b"GET / HTTP/1.1\nA: b\n\nrest"[..], Some(21))]
    #[case::partial(&b"GET / HTTP/1.1\r\nA: b\r\n"[..], None)]
    fn head_ends_are_found(#[case] buf: &[u8], #[case] want: Option<usize>) {
        assert_eq!(find_head_end(buf, 0), want);
    }

    #[rstest]
    #[case::get(&b"GET /"[..], true)]
    #[case::partial_method(&b"GE"[..], true)]
    #[case::redis(&b"*1\r\n$4\r\nPING\r\n"[..], false)]
    #[case::lowercase(&b"hello world"[..], false)]
    #[case::tls(&[0x16, 0x03, 0x01, 0x02][..], false)]
    fn first_bytes_of_a_flow_are_judged(#[case] bytes: &[u8], #[case] plausible: bool) {
        assert_eq!(plausible_request_start(bytes), plausible);
    }
}
