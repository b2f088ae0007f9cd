//! Who is calling (`client.id`), request correlation (`request.id`, W3C trace context) and
//! redaction of secrets in query strings.
//!
//! Nothing here ever returns a credential: an API key becomes `key:` + the first 12 hex digits
//! of its SHA-256, a bearer token becomes its (unverified) JWT `sub` claim, and query values of
//! configured keys become `REDACTED`.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::net::IpAddr;

/// Longest `sub:` value kept (characters after `sub:`).
pub const MAX_SUB_CHARS: usize = 64;
/// Longest `request.id` kept.
/// Query keys whose values are redacted by default (SPEC): the one list the engine, the agent's
/// config defaults and the golden tests share.
pub const DEFAULT_REDACT_KEYS: [&str; 7] = [
    "token",
    "key",
    "api_key",
    "apikey",
    "password",
    "secret",
    "access_token",
];
pub const MAX_REQUEST_ID_CHARS: usize = 128;
/// Longest `user_agent.original` kept.
pub const MAX_USER_AGENT_CHARS: usize = 256;
/// Replacement for a redacted query value.
pub const REDACTED: &str = "REDACTED";

/// How the API consumer is identified and what is redacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityConfig {
    /// Header carrying an API key (compared case-insensitively), default `x-api-key`.
    pub client_id_header: String,
    /// Use the first address of X-Forwarded-For as the client IP.
    pub trust_forwarded_for: bool,
    /// Query keys whose values are replaced by `REDACTED` (case-insensitive).
    pub redact_keys: Vec<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            client_id_header: "x-api-key".into(),
            trust_forwarded_for: false,
            redact_keys: DEFAULT_REDACT_KEYS.into_iter().map(String::from).collect(),
        }
    }
}

/// True for headers whose values must never be stored anywhere.
pub fn is_secret_header(name: &str, cfg: &IdentityConfig) -> bool {
    [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
        || name.eq_ignore_ascii_case(&cfg.client_id_header)
}

/// `key:` + the first 12 hex digits of SHA-256(value).
pub fn api_key_id(value: &[u8]) -> String {
    let digest = Sha256::digest(value);
    let mut id = String::with_capacity(16);
    id.push_str("key:");
    for b in &digest[..6] {
        id.push(hex_digit(b >> 4));
        id.push(hex_digit(b & 0x0f));
    }
    id
}

fn hex_digit(v: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(v & 0x0f)])
}

/// `sub:<claim>` from `Authorization: Bearer <jwt>`, decoded but not verified.
pub fn jwt_subject(authorization: &[u8]) -> Option<String> {
    let value = std::str::from_utf8(authorization).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut parts = token.trim().split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let sub = match claims.get("sub")? {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    if sub.is_empty() {
        return None;
    }
    Some(format!("sub:{}", bounded(&sub, MAX_SUB_CHARS)))
}

/// The first address of an X-Forwarded-For value, if it is an IP address (a port or IPv6
/// brackets are accepted and dropped).
pub fn forwarded_for_ip(value: &[u8]) -> Option<IpAddr> {
    let first = std::str::from_utf8(value).ok()?.split(',').next()?.trim();
    if let Ok(ip) = first.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = first.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    first.strip_prefix('[')?.split(']').next()?.parse().ok()
}

/// W3C traceparent → (trace id, parent span id), lowercase hex, validated.
pub fn parse_traceparent(value: &[u8]) -> Option<(String, String)> {
    let v = std::str::from_utf8(value).ok()?.trim();
    let b = v.as_bytes();
    if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let (version, trace, parent, flags) = (&v[0..2], &v[3..35], &v[36..52], &v[53..55]);
    let hex = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    };
    if !(hex(version) && hex(trace) && hex(parent) && hex(flags)) || version == "ff" {
        return None;
    }
    // Version 00 is exactly 55 characters; later versions may append `-...` fields.
    if (version == "00" && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
        return None;
    }
    if trace.bytes().all(|c| c == b'0') || parent.bytes().all(|c| c == b'0') {
        return None;
    }
    Some((trace.to_owned(), parent.to_owned()))
}

/// Header text kept for a record: lossy UTF-8, control characters dropped, at most `max` chars.
/// Printable ASCII within the bound (the usual case) is borrowed, not copied.
pub fn bounded_header(value: &[u8], max: usize) -> Option<Cow<'_, str>> {
    let trimmed = value.trim_ascii();
    if trimmed.len() <= max && trimmed.iter().all(|b| (0x20..0x7f).contains(b)) {
        // Printable ASCII: no decoding or filtering needed.
        return (!trimmed.is_empty()).then(|| String::from_utf8_lossy(trimmed));
    }
    let text = String::from_utf8_lossy(value);
    let clean: String = text
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    (!clean.is_empty()).then_some(Cow::Owned(clean))
}

fn bounded(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Replaces the values of configured keys in a query string by `REDACTED`. Keys are compared
/// case-insensitively after percent-decoding; everything else is kept byte for byte.
pub fn redact_query(query: &str, keys: &[String]) -> String {
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((k, v)) if !v.is_empty() && is_redacted_key(k, keys) => {
                out.push_str(k);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
    }
    out
}

/// True when the query string holds any key that would be redacted (fast path check).
pub fn needs_redaction(query: &str, keys: &[String]) -> bool {
    // Byte splitting (memchr) rather than `str::split`: this runs for every query string.
    query.as_bytes().split(|b| *b == b'&').any(|pair| {
        match memchr::memchr(b'=', pair) {
            Some(eq) if eq + 1 < pair.len() => {
                // Split at an ASCII '=': both halves are valid UTF-8.
                let key = &query[offset(query, pair)..][..eq];
                is_redacted_key(key, keys)
            }
            _ => false,
        }
    })
}

/// Where `part` (a sub-slice of `whole`'s bytes) starts in `whole`.
fn offset(whole: &str, part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

fn is_redacted_key(raw: &str, keys: &[String]) -> bool {
    if memchr::memchr2(b'%', b'+', raw.as_bytes()).is_none() {
        return keys.iter().any(|k| k.eq_ignore_ascii_case(raw));
    }
    let decoded = percent_decode(raw);
    keys.iter()
        .any(|k| k.as_bytes().eq_ignore_ascii_case(&decoded))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        match b[i] {
            b'%' => match (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn keys() -> Vec<String> {
        IdentityConfig::default().redact_keys
    }

    #[rstest]
    #[case::configured_keys_any_case(
        "a=1&TOKEN=t&Secret=s&b=2",
        "a=1&TOKEN=REDACTED&Secret=REDACTED&b=2"
    )]
    #[case::percent_encoded_key("access%5Ftoken=abc", "access%5Ftoken=REDACTED")]
    #[case::empty_value_kept("password=&x=1", "password=&x=1")]
    #[case::key_without_value_kept("token&x=1", "token&x=1")]
    #[case::similar_names_kept("tokens=1&monkey=2", "tokens=1&monkey=2")]
    #[case::repeated("key=1&key=2", "key=REDACTED&key=REDACTED")]
    fn redaction_of_query_keys(#[case] q: &str, #[case] want: &str) {
        assert_eq!(redact_query(q, &keys()), want);
        assert_eq!(needs_redaction(q, &keys()), q != want);
    }

    #[rstest]
    fn api_key_is_short_sha256_never_the_key() {
        // SHA-256("abc") = ba7816bf8f01cfea...
        assert_eq!(api_key_id(b"abc"), "key:ba7816bf8f01");
    }

    #[rstest]
    #[case::sub(&b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.x"[..], Some("sub:alice"))]
    #[case::lowercase_scheme(&b"bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.x"[..], Some("sub:alice"))]
    #[case::numeric_sub(&b"Bearer e30.eyJzdWIiOjQyfQ.x"[..], Some("sub:42"))]
    #[case::no_sub(&b"Bearer e30.e30.x"[..], None)]
    #[case::basic(&b"Basic dXNlcjpwYXNz"[..], None)]
    #[case::not_base64(&b"Bearer a.!!!.c"[..], None)]
    #[case::two_parts(&b"Bearer a.b"[..], None)]
    fn jwt_subject_is_decoded_not_verified(#[case] v: &[u8], #[case] want: Option<&str>) {
        assert_eq!(jwt_subject(v).as_deref(), want);
    }

    #[rstest]
    fn long_jwt_subject_is_bounded() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{{\"sub\":\"{}\"}}", "u".repeat(200)));
        let sub = jwt_subject(format!("Bearer e30.{payload}.s").as_bytes()).expect("sub");
        assert_eq!(sub.len(), 4 + MAX_SUB_CHARS);
    }

    #[rstest]
    #[case::valid(&b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..], true)]
    #[case::future_version_with_more(&b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"[..], true)]
    #[case::uppercase_hex(&b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"[..], false)]
    #[case::zero_trace(&b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"[..], false)]
    #[case::zero_parent(&b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"[..], false)]
    #[case::version_ff(&b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..], false)]
    #[case::v00_too_long(&b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"[..], false)]
    #[case::short(&b"00-4bf92f35-00f067aa0ba902b7-01"[..], false)]
    fn traceparent_parsing(#[case] v: &[u8], #[case] ok: bool) {
        let parsed = parse_traceparent(v);
        assert_eq!(parsed.is_some(), ok, "{parsed:?}");
        if let Some((t, p)) = parsed {
            assert_eq!((t.len(), p.len()), (32, 16));
        }
    }

    #[rstest]
    #[case::first_of_list(&b"203.0.113.9, 10.0.0.1"[..], Some("203.0.113.9"))]
    #[case::v6(&b"2001:db8::1"[..], Some("2001:db8::1"))]
    #[case::v6_bracketed_port(&b"[2001:db8::1]:443"[..], Some("2001:db8::1"))]
    #[case::v4_port(&b"203.0.113.9:1234"[..], Some("203.0.113.9"))]
    #[case::garbage(&b"unknown"[..], None)]
    fn forwarded_for_first_address(#[case] v: &[u8], #[case] want: Option<&str>) {
        assert_eq!(
            forwarded_for_ip(v).map(|ip| ip.to_string()).as_deref(),
            want
        );
    }

    #[rstest]
    fn header_text_is_bounded_and_cleaned() {
        let long = "a".repeat(1000);
        assert_eq!(
            bounded_header(long.as_bytes(), MAX_USER_AGENT_CHARS).map(|s| s.len()),
            Some(256)
        );
        assert_eq!(bounded_header(b"x\x01y", 10).as_deref(), Some("xy"));
        assert_eq!(bounded_header(b"  ", 10), None);
    }

    #[rstest]
    #[case("Authorization", true)]
    #[case("proxy-authorization", true)]
    #[case("COOKIE", true)]
    #[case("Set-Cookie", true)]
    #[case("X-Api-Key", true)]
    #[case("User-Agent", false)]
    fn secret_headers_are_known(#[case] name: &str, #[case] secret: bool) {
        assert_eq!(is_secret_header(name, &IdentityConfig::default()), secret);
    }
}
