//! Client identity, redaction and correlation ids in records.

use super::*;

#[rstest]
fn query_keys_are_redacted() {
    let mut c = Conv::new(40033, 9).open();
    c.req(b"GET /p?a=1&Token=abc&api%5Fkey=k&password=&x=2 HTTP/1.1\r\n\r\n")
        .resp(OK);
    let out = c.run(&mut engine());
    assert_eq!(
        one(&out).query.as_deref(),
        Some("a=1&Token=REDACTED&api%5Fkey=REDACTED&password=&x=2")
    );
}

#[rstest]
#[case::api_key(&b"X-API-Key: secret-key-1\r\n"[..], false, "key:")]
#[case::jwt_sub(&b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTcifQ.sig\r\n"[..], false, "sub:user-7")]
#[case::ip(&b""[..], false, "192.0.2.1")]
#[case::xff_without_trusted_proxies(&b"X-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n"[..], false, "192.0.2.1")]
#[case::xff_through_trusted_proxies(&b"X-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n"[..], true, "203.0.113.9")]
#[case::xff_forged_leftmost_ignored(&b"X-Forwarded-For: 1.1.1.1, 203.0.113.9, 10.0.0.1\r\n"[..], true, "203.0.113.9")]
#[case::xff_two_headers(&b"X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: 10.0.0.1\r\n"[..], true, "203.0.113.9")]
fn client_id_is_derived(#[case] header: &[u8], #[case] trust_xff: bool, #[case] want: &str) {
    let mut cfg = EngineConfig::default();
    if trust_xff {
        // The connection comes from 192.0.2.1 (the proxy in front of the server) and
        // 10.0.0.1 (a proxy before it) appended its peer.
        cfg.identity.trusted_proxies = vec![
            "192.0.2.1".parse().expect("cidr"),
            "10.0.0.0/8".parse().expect("cidr"),
        ];
    }
    let mut req = b"GET / HTTP/1.1\r\n".to_vec();
    req.extend_from_slice(header);
    req.extend_from_slice(b"Cookie: s=1\r\n\r\n");
    let mut c = Conv::new(40034, 9).open();
    c.req(&req).resp(OK);
    let out = c.run(&mut Engine::new(cfg));
    let t = one(&out);
    let id = t.client_id.clone().unwrap_or_default();
    assert!(id.starts_with(want), "{id}");
    let json = serde_json::to_string(t).expect("json");
    assert!(!json.contains("secret-key-1") && !json.contains("eyJ") && !json.contains("s=1"));
}

/// The client id of each request with `headers`, sent alone on its own connection; asserts
/// that sending them in sequence on one connection gives every request the same id.
fn ids_alone_and_together(
    headers: &[String],
    port: u16,
    engine: impl Fn() -> Engine,
) -> Vec<Option<String>> {
    let alone: Vec<Option<String>> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut c = Conv::new(port + i as u16, 9).open();
            c.req(format!("GET / HTTP/1.1\r\n{h}\r\n").as_bytes())
                .resp(OK);
            let out = c.run(&mut engine());
            one(&out).client_id.as_deref().map(str::to_owned)
        })
        .collect();
    let mut c = Conv::new(port + 100, 9).open();
    for h in headers {
        c.req(format!("GET / HTTP/1.1\r\n{h}\r\n").as_bytes())
            .resp(OK);
    }
    let out = c.run(&mut engine());
    let together: Vec<Option<String>> = out
        .iter()
        .map(|t| t.client_id.as_deref().map(str::to_owned))
        .collect();
    assert_eq!(together, alone);
    alone
}

#[rstest]
fn a_connection_changing_credentials_gets_each_request_its_own_client() {
    let jwt = |sub: &str| {
        use base64::Engine as _;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{{\"sub\":\"{sub}\"}}"));
        format!("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.{claims}.sig\r\n")
    };
    let (a, b) = (
        "X-API-Key: key-a\r\n".to_owned(),
        "X-API-Key: key-b\r\n".to_owned(),
    );
    // Each request alone, then in sequence on one connection (the last id is remembered).
    let headers = [
        a.clone(),
        a.clone(),
        b,
        a.clone(),
        jwt("u-1"),
        jwt("u-1"),
        jwt("u-2"),
        "Authorization: Basic dTpw\r\n".to_owned(),
        String::new(),
        format!("{a}{}", jwt("u-1")),
        jwt("u-2"),
    ];
    let alone = ids_alone_and_together(&headers, 41000, engine);
    let ids: Vec<&str> = alone.iter().map(|i| i.as_deref().unwrap_or("")).collect();
    assert!(ids[0].starts_with("key:") && ids[0] == ids[1] && ids[1] != ids[2]);
    assert_eq!(
        (ids[4], ids[6], ids[7], ids[8]),
        ("sub:u-1", "sub:u-2", "192.0.2.1", "192.0.2.1")
    );
    assert_eq!(ids[9], ids[0], "an API key wins over a token");
}

#[rstest]
fn a_proxy_connection_forwarding_for_several_clients_gets_each_request_its_own_client() {
    let trusting = || {
        let mut cfg = EngineConfig::default();
        cfg.identity.trusted_proxies = vec!["192.0.2.1".parse().expect("cidr")];
        Engine::new(cfg)
    };
    let xff = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
    // Each request alone, then in sequence on one connection (the last client is remembered).
    let headers = [
        xff("203.0.113.9"),
        xff("203.0.113.9"),
        xff("2001:db8::7"),
        String::new(),
        xff("203.0.113.9"),
        xff("not-an-address"),
        xff("203.0.113.9"),
        format!("X-API-Key: key-a\r\n{}", xff("203.0.113.9")),
        xff("198.51.100.4"),
    ];
    let alone = ids_alone_and_together(&headers, 42000, trusting);
    let ids: Vec<&str> = alone.iter().map(|i| i.as_deref().unwrap_or("")).collect();
    assert_eq!(
        (ids[0], ids[2], ids[3], ids[5], ids[8]),
        (
            "203.0.113.9",
            "2001:db8::7",
            "192.0.2.1",
            "192.0.2.1",
            "198.51.100.4"
        )
    );
    assert!(
        ids[7].starts_with("key:"),
        "an API key wins over the forwarded address"
    );
}

#[rstest]
fn trace_context_and_request_id_are_kept() {
    let mut c = Conv::new(40035, 9).open();
    c.req(b"GET / HTTP/1.1\r\nX-Request-ID: req-1\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n").resp(OK);
    let out = c.run(&mut engine());
    let t = one(&out);
    assert_eq!(t.request_id.as_deref(), Some("req-1"));
    assert_eq!(
        t.trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(t.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
}
