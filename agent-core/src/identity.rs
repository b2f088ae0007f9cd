//! Who is calling (`client.id`), request correlation (`request.id`, W3C trace context) and
//! redaction of secrets in query strings.
//!
//! Nothing here ever returns a credential: an API key becomes `key:` + the first 12 hex digits
//! of its SHA-256, a bearer token becomes its (unverified) JWT `sub` claim, and query values of
//! configured keys become `REDACTED`.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

/// Longest `sub:` value kept (characters after `sub:`).
pub const MAX_SUB_CHARS: usize = 64;
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
/// Longest `request.id` kept.
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
    /// Proxies whose X-Forwarded-For is believed (empty: the header is ignored). See
    /// [`ForwardedFor`].
    pub trusted_proxies: Vec<Cidr>,
    /// Query keys whose values are replaced by `REDACTED` (case-insensitive).
    pub redact_keys: Vec<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            client_id_header: "x-api-key".into(),
            trusted_proxies: Vec::new(),
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

/// The credential a request names its API consumer by, as sent: the configured API-key
/// header's value (trimmed, not empty), which wins, else an `Authorization` header. Kept raw:
/// deriving the id is a SHA-256 or a JWT decode, which a connection repeating its credential
/// need not pay again ([`KnownCredentials`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Credential<'h> {
    ApiKey(&'h [u8]),
    Authorization(&'h [u8]),
}

impl Credential<'_> {
    /// `key:` and a hash prefix of an API key, `sub:` and the subject of a bearer JWT, or
    /// `None` (an `Authorization` header without a bearer JWT that names a subject).
    pub fn client_id(&self) -> Option<String> {
        match self {
            Credential::ApiKey(key) => Some(api_key_id(key)),
            Credential::Authorization(value) => jwt_subject(value),
        }
    }
}

/// The client ids last derived on one connection, one per kind of credential, each with a
/// hash of the credential it came from. A connection sends the same API key or token with
/// every request, and deriving the id is a SHA-256 (~4,300 instructions per request) or a JWT
/// decode (~12,000: base64 and JSON), in a path of ~6,800 without them (`per_tx pipeline
/// api_key|bearer`).
///
/// The hash is foldhash seeded at random per process, over the credential's kind and bytes:
/// another credential taken for the last one would need a 64-bit collision found without the
/// seed, and even then would only give that connection's request the previous one's id.
///
/// It also keeps the last client a trusted proxy forwarded a request for (X-Forwarded-For),
/// with its id: a proxy's connection often carries one client's requests in a row, and the id
/// is the address formatted into a new string.
#[derive(Debug, Default)]
pub struct KnownCredentials {
    api_key: Option<(u64, Option<Arc<str>>)>,
    authorization: Option<(u64, Option<Arc<str>>)>,
    forwarded: Option<(IpAddr, Arc<str>)>,
}

impl KnownCredentials {
    /// The client id `credential` names ([`Credential::client_id`]), derived only when it is
    /// not the connection's last credential of its kind.
    pub fn client_id(&mut self, credential: Credential<'_>) -> Option<Arc<str>> {
        static SEED: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
        let hash = SEED.get_or_init(Default::default).hash_one(credential);
        let slot = match credential {
            Credential::ApiKey(_) => &mut self.api_key,
            Credential::Authorization(_) => &mut self.authorization,
        };
        if let Some((kept, id)) = slot
            && *kept == hash
        {
            return id.clone();
        }
        let id: Option<Arc<str>> = credential.client_id().map(Arc::from);
        *slot = Some((hash, id.clone()));
        id
    }

    /// The client id of a request forwarded for `ip` (the address as text), formatted only
    /// when `ip` is not the connection's last forwarded client.
    pub fn forwarded_id(&mut self, ip: IpAddr) -> Arc<str> {
        if let Some((kept, id)) = &self.forwarded
            && *kept == ip
        {
            return id.clone();
        }
        let id: Arc<str> = Arc::from(ip.to_string());
        self.forwarded = Some((ip, id.clone()));
        id
    }
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

/// One X-Forwarded-For entry as an IP address (a port or IPv6 brackets are accepted and
/// dropped).
fn forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = entry.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    entry.strip_prefix('[')?.split(']').next()?.parse().ok()
}

/// An address range in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a /32
/// or /128). IPv4-mapped IPv6 addresses match the IPv4 ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("invalid CIDR {s:?}: not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("invalid CIDR {s:?}: prefix length must be 0-{max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u8) {
            match ip.to_canonical() {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let (net, net_len) = bits(self.addr);
        let (ip, ip_len) = bits(ip);
        if net_len != ip_len {
            return false;
        }
        let prefix = u32::from(self.prefix);
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        net & mask == ip & mask
    }
}

impl IdentityConfig {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(ip))
    }
}

/// The X-Forwarded-For headers of one request, folded in order. Each proxy appends the address
/// it received the request from, so the list reads client, proxy 1, proxy 2, ...; only the
/// entries added by trusted proxies can be believed, and the left-most one is whatever the
/// client chose to send. The client is therefore the right-most address that is not a trusted
/// proxy (or the left-most one when every address is a trusted proxy), and only when the
/// connection itself comes from a trusted proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForwardedFor {
    /// No X-Forwarded-For header (yet).
    #[default]
    Absent,
    /// The right-most untrusted address so far (or the left-most of an all-trusted list).
    Client(IpAddr),
    /// An entry that is not an address stands between the trusted proxies and the client: the
    /// client is unknown, the connection's peer is used.
    Unknown,
}

impl ForwardedFor {
    /// Folds one more X-Forwarded-For header (a later header continues the list to the right).
    pub fn add(&mut self, value: &[u8], cfg: &IdentityConfig) {
        let Ok(value) = std::str::from_utf8(value) else {
            *self = ForwardedFor::Unknown;
            return;
        };
        let mut leftmost = None;
        for entry in value.rsplit(',').filter(|e| !e.trim().is_empty()) {
            match forwarded_entry(entry) {
                None => {
                    *self = ForwardedFor::Unknown;
                    return;
                }
                Some(ip) if !cfg.trusts(ip) => {
                    *self = ForwardedFor::Client(ip);
                    return;
                }
                Some(ip) => leftmost = Some(ip),
            }
        }
        // Every address of this header is a trusted proxy: the client is further left.
        if let (ForwardedFor::Absent, Some(ip)) = (*self, leftmost) {
            *self = ForwardedFor::Client(ip);
        }
    }

    /// The client's address when the request came from `peer`, a trusted proxy; None means
    /// "use the peer's address".
    pub fn client(self, peer: Option<IpAddr>, cfg: &IdentityConfig) -> Option<IpAddr> {
        match self {
            ForwardedFor::Client(ip) if peer.is_some_and(|p| cfg.trusts(p)) => Some(ip),
            _ => None,
        }
    }
}

/// W3C traceparent → (trace id, parent span id), lowercase hex, validated.
pub fn parse_traceparent(value: &[u8]) -> Option<(&str, &str)> {
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
    Some((trace, parent))
}

/// Header text kept for a record: lossy UTF-8, control characters dropped, at most `max` chars.
/// Printable ASCII within the bound (the usual case) is borrowed, not copied.
pub fn bounded_header(value: &[u8], max: usize) -> Option<Cow<'_, str>> {
    let trimmed = value.trim_ascii();
    if trimmed.len() <= max && crate::ascii::is_printable(trimmed) {
        // Printable ASCII: no decoding or filtering needed (and always UTF-8).
        if trimmed.is_empty() {
            return None;
        }
        return crate::ascii::as_str(trimmed).map(Cow::Borrowed);
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
/// One pass over the bytes: this runs for every query string, most of them a few short pairs,
/// where a `memchr` per pair cost more than the loop.
pub fn needs_redaction(query: &str, keys: &[String]) -> bool {
    let b = query.as_bytes();
    let (mut start, mut eq, mut escaped) = (0, None, false);
    for i in 0..=b.len() {
        match b.get(i).copied().unwrap_or(b'&') {
            b'&' => {
                // Split at ASCII bytes: every part is valid UTF-8.
                if let Some(e) = eq
                    && e + 1 < i
                    && key_matches(&query[start..e], escaped, keys)
                {
                    return true;
                }
                (start, eq, escaped) = (i + 1, None, false);
            }
            b'=' if eq.is_none() => eq = Some(i),
            b'%' | b'+' if eq.is_none() => escaped = true,
            _ => {}
        }
    }
    false
}

fn is_redacted_key(raw: &str, keys: &[String]) -> bool {
    key_matches(
        raw,
        memchr::memchr2(b'%', b'+', raw.as_bytes()).is_some(),
        keys,
    )
}

/// `raw` is a configured key, compared case-insensitively; `escaped` when it holds `%` or `+`
/// (then it is percent-decoded first).
fn key_matches(raw: &str, escaped: bool, keys: &[String]) -> bool {
    if !escaped {
        // Length and first letter first: most query keys are none of the configured ones, and
        // that rejects them without a byte-by-byte comparison.
        let first = raw.as_bytes().first().map(u8::to_ascii_lowercase);
        return keys.iter().any(|k| {
            k.len() == raw.len()
                && k.as_bytes().first().map(u8::to_ascii_lowercase) == first
                && k.eq_ignore_ascii_case(raw)
        });
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

    proptest::proptest! {
        /// The one-pass check says what splitting into pairs and keys says.
        #[test]
        fn needs_redaction_is_any_pair_with_a_redacted_key_and_a_value(
            q in "(token|TOKEN|key|k%65y|a\\+b|x|=|&|%|\\+|1){0,12}",
        ) {
            let split = q.split('&').any(|pair| match pair.split_once('=') {
                Some((k, v)) if !v.is_empty() => is_redacted_key(k, &keys()),
                _ => false,
            });
            proptest::prop_assert_eq!(needs_redaction(&q, &keys()), split, "{}", q);
        }
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

    fn proxies(list: &[&str]) -> IdentityConfig {
        IdentityConfig {
            trusted_proxies: list.iter().map(|c| c.parse().expect("CIDR")).collect(),
            ..IdentityConfig::default()
        }
    }

    /// The client of one request from `peer` with these X-Forwarded-For headers.
    fn client_of(peer: &str, headers: &[&str], cfg: &IdentityConfig) -> Option<String> {
        let mut f = ForwardedFor::default();
        for h in headers {
            f.add(h.as_bytes(), cfg);
        }
        f.client(Some(peer.parse().expect("peer")), cfg)
            .map(|ip| ip.to_string())
    }

    #[rstest]
    #[case::rightmost_untrusted(&["203.0.113.9, 198.51.100.7, 10.0.0.1"], Some("198.51.100.7"))]
    #[case::client_forged_leftmost(&["1.2.3.4, 203.0.113.9"], Some("203.0.113.9"))]
    #[case::all_trusted_is_the_leftmost(&["10.0.0.5, 10.0.0.1"], Some("10.0.0.5"))]
    #[case::second_header_continues_the_list(&["203.0.113.9", "10.0.0.2"], Some("203.0.113.9"))]
    #[case::later_header_wins_when_untrusted(&["203.0.113.9", "198.51.100.7, 10.0.0.2"], Some("198.51.100.7"))]
    #[case::garbage_between_is_unknown(&["203.0.113.9, unknown, 10.0.0.1"], None)]
    #[case::garbage_left_of_the_client_is_fine(&["junk, 203.0.113.9, 10.0.0.1"], Some("203.0.113.9"))]
    #[case::ports_and_brackets(&["[2001:db8::9]:443, 10.0.0.1:80"], Some("2001:db8::9"))]
    #[case::empty_entries_skipped(&["203.0.113.9,, 10.0.0.1,"], Some("203.0.113.9"))]
    #[case::no_header(&[], None)]
    fn client_is_the_rightmost_untrusted_address(
        #[case] headers: &[&str],
        #[case] want: Option<&str>,
    ) {
        let cfg = proxies(&["10.0.0.0/8"]);
        assert_eq!(client_of("10.0.0.1", headers, &cfg).as_deref(), want);
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_peer() {
        let cfg = proxies(&["10.0.0.0/8"]);
        // A client talking to the server directly can write any X-Forwarded-For it likes.
        assert_eq!(client_of("203.0.113.50", &["198.51.100.7"], &cfg), None);
        // No trusted proxies configured: the header is ignored.
        let none = IdentityConfig::default();
        assert_eq!(client_of("10.0.0.1", &["198.51.100.7"], &none), None);
    }

    #[rstest]
    #[case("10.0.0.0/8", "10.255.1.2", true)]
    #[case("10.0.0.0/8", "11.0.0.1", false)]
    #[case("192.0.2.1", "192.0.2.1", true)]
    #[case("192.0.2.1", "192.0.2.2", false)]
    #[case("0.0.0.0/0", "203.0.113.1", true)]
    #[case("2001:db8::/32", "2001:db8:ffff::1", true)]
    #[case("2001:db8::/32", "2001:db9::1", false)]
    #[case("127.0.0.0/8", "::ffff:127.0.0.1", true)]
    #[case("::/0", "10.0.0.1", false)]
    fn cidr_membership(#[case] cidr: &str, #[case] ip: &str, #[case] inside: bool) {
        let c: Cidr = cidr.parse().expect("CIDR");
        assert_eq!(c.contains(ip.parse().expect("ip")), inside, "{cidr} {ip}");
    }

    #[rstest]
    #[case("10.0.0.0/33")]
    #[case("2001:db8::/129")]
    #[case("proxy.local")]
    #[case("10.0.0.0/x")]
    fn bad_cidrs_are_refused(#[case] s: &str) {
        let err = s.parse::<Cidr>().expect_err("refused");
        assert!(err.starts_with("invalid CIDR"), "{err}");
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
