//! The fast path against httparse (`reference`): on every input, [`parse_request_prefix`] and
//! [`parse_response_prefix`] must return what the httparse path alone returns. The inputs are
//! sample heads and, for each, every single-byte substitution, insertion and deletion, every
//! truncation, and the head followed by more bytes.

use super::*;

/// A JWT whose payload is `{"sub":"user-42"}` (the signature is not checked).
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2ln";

fn requests() -> Vec<Vec<u8>> {
    let mut heads: Vec<String> = vec![
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n".into(),
        "GET /api/users/7?fields=name HTTP/1.1\r\nHost: api.example\r\nUser-Agent: wrk/4\r\nAccept: */*\r\n\r\n".into(),
        "POST /v1/items HTTP/1.0\r\nContent-Length: 5\r\nX-Api-Key: secret\r\nX-Request-Id: r-1\r\n\r\nhello".into(),
        format!("PUT /x HTTP/1.1\r\nAuthorization: Bearer {JWT}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        "PATCH /x?token=abc&b=2 HTTP/1.1\r\nContent-Length: 3, 3\r\nContent-Length:3\r\n\r\n".into(),
        "DELETE /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n".into(),
        "GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n".into(),
        "GET /t HTTP/1.1\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.2\r\n\r\n".into(),
        "OPTIONS * HTTP/1.1\r\nEmpty:\r\nSpaces:   padded value   \r\nx-api-key:   \r\n\r\n".into(),
        "GET http://h.example:8080/p?q=1 HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n".into(),
        "M-SEARCH /!$&'()*+,;=:@~ HTTP/1.1\r\nContent-Length: x\r\n\r\n".into(),
    ];
    heads.push(format!(
        "GET /many HTTP/1.1\r\n{}\r\n",
        (0..40).map(|i| format!("H{i}: v\r\n")).collect::<String>()
    ));
    heads.into_iter().map(String::into_bytes).collect()
}

fn responses() -> Vec<Vec<u8>> {
    [
        "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"name\":\"alice\"}\n",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.0 404\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 \r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        "HTTP/1.1 502 Bad  Gateway  \r\nTransfer-Encoding: br\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1,2\r\n\r\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn identity() -> IdentityConfig {
    IdentityConfig {
        trusted_proxies: vec!["10.0.0.0/8".parse().expect("cidr")],
        ..IdentityConfig::default()
    }
}

/// Bytes that matter to either parser, and a few that matter to neither.
const PROBES: &[u8] = &[
    0x00, b'\t', b'\n', 0x0B, b'\r', 0x1F, b' ', b'!', b'"', b',', b'/', b'0', b'1', b'9', b':',
    b';', b'?', b'A', b'H', b'P', b'T', b'[', b'\\', b'a', b'z', b'{', b'|', b'~', 0x7F, 0x80,
    0xC3, 0xFF,
];

/// Every variant of `head` the tests compare on.
fn variants(head: &[u8], mut check: impl FnMut(&[u8])) {
    check(head);
    let mut longer = head.to_vec();
    longer.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    check(&longer);
    for cut in 0..head.len() {
        check(&head[..cut]);
    }
    let mut v = head.to_vec();
    for i in 0..head.len() {
        for &b in PROBES {
            v[i] = b;
            check(&v);
        }
        v[i] = head[i];
        let mut removed = head.to_vec();
        removed.remove(i);
        check(&removed);
        for &b in PROBES {
            let mut inserted = head.to_vec();
            inserted.insert(i, b);
            check(&inserted);
        }
    }
}

#[test]
fn requests_parse_as_httparse_parses_them() {
    let id = identity();
    for limits in [
        HeadLimits::default(),
        HeadLimits {
            max_headers: 2,
            ..HeadLimits::default()
        },
    ] {
        for head in requests() {
            variants(&head, |bytes| {
                assert_eq!(
                    parse_request_prefix(bytes, &limits, &id),
                    reference::parse_request_prefix(bytes, &limits, &id),
                    "{:?}",
                    String::from_utf8_lossy(bytes)
                );
            });
        }
    }
}

#[test]
fn responses_parse_as_httparse_parses_them() {
    for limits in [
        HeadLimits::default(),
        HeadLimits {
            max_headers: 1,
            ..HeadLimits::default()
        },
    ] {
        for head in responses() {
            variants(&head, |bytes| {
                assert_eq!(
                    parse_response_prefix(bytes, &limits),
                    reference::parse_response_prefix(bytes, &limits),
                    "{:?}",
                    String::from_utf8_lossy(bytes)
                );
            });
        }
    }
}

#[test]
fn every_sample_head_takes_the_fast_path() {
    // Otherwise the comparisons above would only compare httparse with itself.
    let limits = HeadLimits::default();
    for head in requests() {
        assert!(
            fast::request(&head, limits.max_headers, |_, _| {}).is_some(),
            "{:?}",
            String::from_utf8_lossy(&head)
        );
    }
    for head in responses() {
        assert!(
            fast::response(&head, limits.max_headers, |_, _| {}).is_some(),
            "{:?}",
            String::from_utf8_lossy(&head)
        );
    }
}

#[test]
fn what_the_fast_path_reads() {
    let id = identity();
    let head = format!(
        "POST /a?b=c HTTP/1.1\r\nAuthorization: Bearer {JWT}\r\nUser-Agent:  curl/8  \r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 12\r\n\r\nbody"
    );
    let (len, req) = parse_request_prefix(head.as_bytes(), &HeadLimits::default(), &id)
        .expect("valid")
        .expect("complete");
    assert_eq!(len, head.len() - 4);
    assert_eq!((req.info.method, req.info.target), ("POST", "/a?b=c"));
    assert_eq!(req.info.minor_version, 1);
    assert_eq!(req.info.user_agent.as_deref(), Some("curl/8"));
    let credential = req.info.credential.expect("credential");
    assert_eq!(credential.client_id().as_deref(), Some("sub:user-42"));
    assert!(req.info.upgrade);
    assert_eq!(req.body, BodyKind::Length(12));

    let (len, resp) = parse_response_prefix(b"HTTP/1.0 503 Busy\r\n\r\n", &HeadLimits::default())
        .expect("valid")
        .expect("complete");
    assert_eq!((len, resp.status, resp.minor_version), (21, 503, 0));
    assert_eq!(resp.body, BodyKind::Close);
}
