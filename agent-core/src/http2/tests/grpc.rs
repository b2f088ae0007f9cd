//! gRPC calls: method, status from trailers or trailers-only responses, code mapping.

use super::*;

fn call(h: &mut Harness, id: u32, method: &str, extra: &[(&str, &str)]) {
    let mut fields = vec![("content-type", "application/grpc"), ("te", "trailers")];
    fields.extend_from_slice(extra);
    let mut c = Vec::new();
    build::headers(
        &mut c,
        id,
        &build::request_block("POST", method, &fields),
        false,
    );
    build::data(&mut c, id, &build::grpc_message(b"\x0a\x05world"), true);
    h.send(C, &c);
}

fn rpc(t: &Transaction) -> (Option<&str>, Option<&str>, Option<u8>) {
    let r = t.rpc.as_ref().expect("a gRPC call");
    (r.service.as_deref(), r.method.as_deref(), r.status)
}

#[test]
fn unary_ok_with_trailers() {
    let mut h = Harness::opened();
    call(&mut h, 1, "/helloworld.Greeter/SayHello", &[]);
    let mut s = Vec::new();
    build::headers(
        &mut s,
        1,
        &build::response_block(200, &[("content-type", "application/grpc")]),
        false,
    );
    build::data(
        &mut s,
        1,
        &build::grpc_message(b"\x0a\x0bHello world"),
        false,
    );
    build::headers(
        &mut s,
        1,
        &build::trailers_block(&[("grpc-status", "0")]),
        true,
    );
    h.send(S, &s);
    let t = &h.out[0];
    assert_eq!(
        rpc(t),
        (Some("helloworld.Greeter"), Some("SayHello"), Some(0))
    );
    assert_eq!(
        (t.request_body_size, t.response_body_size),
        (Some(12), Some(18))
    );
    assert!(!t.is_failure());
    assert_eq!(h.stats.grpc_calls, 1);
}

#[test]
fn trailers_only_error() {
    let mut h = Harness::opened();
    call(&mut h, 1, "/shop.Catalog/GetItem", &[]);
    let mut s = Vec::new();
    let b = build::response_block(
        200,
        &[
            ("content-type", "application/grpc"),
            ("grpc-status", "5"),
            ("grpc-message", "no such item"),
        ],
    );
    build::headers(&mut s, 1, &b, true);
    h.send(S, &s);
    let t = &h.out[0];
    assert_eq!(rpc(t), (Some("shop.Catalog"), Some("GetItem"), Some(5)));
    assert_eq!(
        t.rpc.as_ref().and_then(|r| r.error_name()),
        Some("NOT_FOUND")
    );
    assert!(
        !t.is_failure(),
        "NOT_FOUND is the caller's problem, like a 404"
    );
}

#[test]
fn proxy_error_without_grpc_status_maps_to_a_code() {
    let mut h = Harness::opened();
    call(&mut h, 1, "/a.B/C", &[]);
    let mut s = Vec::new();
    build::headers(&mut s, 1, &build::response_block(503, &[]), true);
    h.send(S, &s);
    assert_eq!(rpc(&h.out[0]).2, Some(crate::http2::grpc::UNAVAILABLE));
    assert!(h.out[0].is_failure());
}

#[test]
fn streaming_calls_count_every_message_byte() {
    let mut h = Harness::opened();
    let mut c = Vec::new();
    let b = build::request_block(
        "POST",
        "/chat.Chat/Stream",
        &[("content-type", "application/grpc+proto")],
    );
    build::headers(&mut c, 1, &b, false);
    for _ in 0..3 {
        build::data(&mut c, 1, &build::grpc_message(b"ping"), false);
    }
    build::data(&mut c, 1, &[], true);
    h.send(C, &c);
    let mut s = Vec::new();
    build::headers(
        &mut s,
        1,
        &build::response_block(200, &[("content-type", "application/grpc")]),
        false,
    );
    for _ in 0..4 {
        build::data(&mut s, 1, &build::grpc_message(b"pong!"), false);
    }
    build::headers(
        &mut s,
        1,
        &build::trailers_block(&[("grpc-status", "14")]),
        true,
    );
    h.send(S, &s);
    let t = &h.out[0];
    assert_eq!(
        (t.request_body_size, t.response_body_size),
        (Some(27), Some(40))
    );
    assert_eq!(rpc(t).2, Some(14));
    assert!(t.is_failure());
}

#[test]
fn cancelled_call_has_no_status() {
    let mut h = Harness::opened();
    call(&mut h, 1, "/a.B/Slow", &[]);
    let mut c = Vec::new();
    build::rst_stream(&mut c, 1, 0x8);
    h.send(C, &c);
    assert_eq!(rpc(&h.out[0]), (Some("a.B"), Some("Slow"), None));
    assert_eq!(h.out[0].error, Some(crate::ErrorType::ConnectionReset));
}
