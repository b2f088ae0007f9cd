//! Requests only the server understood: garbage, probes and odd request lines that a server
//! answers with a status line are transactions (`_OTHER`, `malformed_request`, the server's
//! status); garbage answered by garbage is another protocol. HTTP/0.9 simple requests too.

use super::*;

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad";

#[rstest]
#[case::garbage_line(&b"GARBAGE\r\n\r\n"[..])]
#[case::lower_case_method(&b"get / HTTP/1.1\r\nHost: x\r\n\r\n"[..])]
#[case::tls_to_a_plain_port(&[0x16, 0x03, 0x01, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o'][..])]
#[case::spaces_in_the_target(&b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n"[..])]
#[case::unknown_version(&b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"[..])]
fn a_request_line_only_the_server_understood_is_a_malformed_request(#[case] req: &[u8]) {
    let mut c = Conv::new(40200, 9).open();
    c.req(req).resp(BAD_REQUEST);
    c.fin(Direction::ToClient).fin(Direction::ToServer);
    let mut e = engine();
    let mut out = c.run(&mut e);
    e.finish(&mut out);
    let t = one(&out);
    assert_eq!(t.method.as_deref(), Some("_OTHER"));
    assert_eq!(t.status, Some(400));
    assert_eq!(t.error, Some(ErrorType::MalformedRequest));
    assert_eq!(e.stats().http.non_http_flows, 0);
    assert_eq!(
        e.stats()
            .http
            .parse_errors_for(ParseErrorReason::RequestHead),
        1
    );
}

#[rstest]
fn garbage_after_a_good_request_on_a_keep_alive_connection_is_counted_too() {
    let mut c = Conv::new(40201, 9).open();
    c.req(GET)
        .resp(OK)
        .req(b"GARBAGE\r\n\r\n")
        .resp(BAD_REQUEST);
    let mut e = engine();
    let mut out = c.run(&mut e);
    e.finish(&mut out);
    let got: Vec<_> = out
        .iter()
        .map(|t| (t.method.as_deref(), t.status, t.error))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("GET"), Some(200), None),
            (Some("_OTHER"), Some(400), Some(ErrorType::MalformedRequest))
        ]
    );
}

#[rstest]
fn garbage_never_answered_is_not_http_and_records_nothing() {
    let mut c = Conv::new(40202, 9).open();
    c.req(b"\x00\x01binary probe\r\n").fin(Direction::ToServer);
    c.fin(Direction::ToClient);
    let mut e = engine();
    let mut out = c.run(&mut e);
    e.finish(&mut out);
    assert!(out.is_empty(), "{out:#?}");
    assert_eq!(e.stats().http.non_http_flows, 1);
}

#[rstest]
fn tls_answered_by_tls_is_not_http() {
    let mut c = Conv::new(40203, 9).open();
    c.req(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        .resp(&[0x16, 0x03, 0x03, 0x00, 0x02, 1, 2]);
    let mut e = engine();
    let out = c.run(&mut e);
    assert!(out.is_empty());
    assert_eq!(e.stats().http.non_http_flows, 1);
    assert!(e.active_connections().is_empty());
}

#[rstest]
fn lf_only_heads_are_requests_like_any_other() {
    let mut c = Conv::new(40204, 9).open();
    c.req(b"GET /lf HTTP/1.1\nHost: x\n\n")
        .resp(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok");
    let mut e = engine();
    let out = c.run(&mut e);
    let t = one(&out);
    assert_eq!(
        (t.path.as_deref(), t.status, t.error),
        (Some("/lf"), Some(200), None)
    );
}

#[rstest]
fn an_http09_simple_request_is_answered_by_the_body_until_close() {
    let mut c = Conv::new(40205, 9).open();
    c.req(b"GET /\r\n").resp(b"ok\n").fin(Direction::ToClient);
    c.fin(Direction::ToServer);
    let mut e = engine();
    let mut out = c.run(&mut e);
    e.finish(&mut out);
    let t = one(&out);
    assert_eq!(
        (
            t.method.as_deref(),
            t.path.as_deref(),
            t.version,
            t.status,
            t.error
        ),
        (Some("GET"), Some("/"), Some("0.9"), None, None)
    );
    assert_eq!(t.response_body_size, Some(3));
    assert_eq!(t.request_wire_bytes, 7);
}

#[rstest]
fn connect_refused_with_400_is_a_transaction() {
    let mut c = Conv::new(40206, 9).open();
    c.req(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .resp(BAD_REQUEST);
    let mut e = engine();
    let mut out = c.run(&mut e);
    e.finish(&mut out);
    let t = one(&out);
    assert_eq!(
        (t.method.as_deref(), t.status),
        (Some("CONNECT"), Some(400))
    );
}
