//! Streams: one record per stream, paired by id, with sizes and times.

use super::*;
use crate::ErrorType;
use crate::http2::frame::{self, Kind, flags};
use crate::http2::hpack::encode;

#[test]
fn one_get_is_one_record() {
    let mut h = Harness::opened();
    h.send(C, &get(1, "/api/users/42?token=secret&x=1"));
    let t_req = h.ts;
    h.send(S, &ok(1, b"hello"));
    let t_end = h.ts;
    assert_eq!(h.out.len(), 1);
    let t = &h.out[0];
    assert_eq!(t.method.as_deref(), Some("GET"));
    assert_eq!(t.path.as_deref(), Some("/api/users/42"));
    assert_eq!(t.query.as_deref(), Some("token=REDACTED&x=1"));
    assert_eq!(t.status, Some(200));
    assert_eq!(t.version, Some("2"));
    assert_eq!(t.start_ns, t_req);
    assert_eq!(t.duration_ns, Some(t_end - t_req));
    assert_eq!(t.ttfb_ns, Some(t_end - t_req));
    assert_eq!(
        (t.request_body_size, t.response_body_size),
        (Some(0), Some(5))
    );
    assert_eq!(t.error, None);
    assert_eq!(t.client_id.as_deref(), Some("192.0.2.1"));
    assert_eq!(&*t.service, "port-8080");
    assert!(t.rpc.is_none());
    let req = get(1, "/api/users/42?token=secret&x=1");
    assert_eq!(t.request_wire_bytes, req.len() as u64);
    assert_eq!(t.response_wire_bytes, ok(1, b"hello").len() as u64);
    assert_eq!(h.stats.streams, 1);
}

#[test]
fn streams_changing_credentials_each_get_their_own_client() {
    const ALICE: &str = "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.x";
    const BOB: &str = "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ.x";
    let streams: [&[(&str, &str)]; 8] = [
        &[("authorization", ALICE)],
        &[("authorization", ALICE)],
        &[("authorization", BOB)],
        &[("x-api-key", "k1")],
        &[("authorization", ALICE), ("x-api-key", "k1")],
        &[("x-api-key", "k2")],
        &[],
        &[("authorization", BOB)],
    ];
    let request = |stream: u32, fields: &[(&str, &str)]| {
        let mut c = Vec::new();
        build::headers(
            &mut c,
            stream,
            &build::request_block("GET", "/", fields),
            true,
        );
        c
    };
    let alone: Vec<Option<String>> = streams
        .iter()
        .map(|fields| {
            let mut h = Harness::opened();
            h.send(C, &request(1, fields));
            h.send(S, &ok(1, b"x"));
            h.out[0].client_id.as_deref().map(str::to_owned)
        })
        .collect();
    let mut h = Harness::opened();
    for (i, fields) in streams.iter().enumerate() {
        let id = 2 * i as u32 + 1;
        h.send(C, &request(id, fields));
        h.send(S, &ok(id, b"x"));
    }
    let together: Vec<Option<String>> = h
        .out
        .iter()
        .map(|t| t.client_id.as_deref().map(str::to_owned))
        .collect();
    assert_eq!(together, alone);
    assert_eq!(alone[0].as_deref(), Some("sub:alice"));
    assert_eq!(alone[2].as_deref(), Some("sub:bob"));
    assert_eq!(alone[4], alone[3], "an API key wins over a token");
    assert_eq!(alone[6].as_deref(), Some("192.0.2.1"));
}

#[test]
fn interleaved_streams_pair_by_id_not_order() {
    let mut h = Harness::opened();
    let mut c = Vec::new();
    for (id, p) in [(1, "/a"), (3, "/b"), (5, "/c")] {
        c.extend(get(id, p));
    }
    h.send(C, &c);
    // Responses in reverse order, DATA of different streams interleaved.
    let mut s = Vec::new();
    for id in [5, 3, 1] {
        build::headers(
            &mut s,
            id,
            &build::response_block(if id == 3 { 404 } else { 200 }, &[]),
            false,
        );
    }
    build::data(&mut s, 1, b"x", false);
    build::data(&mut s, 5, b"yyyyy", true);
    build::data(&mut s, 3, b"", true);
    build::data(&mut s, 1, b"zz", true);
    h.send(S, &s);
    assert_eq!(
        h.paths(),
        vec![
            (Some("/c"), Some(200)),
            (Some("/b"), Some(404)),
            (Some("/a"), Some(200))
        ]
    );
    let sizes: Vec<_> = h.out.iter().map(|t| t.response_body_size).collect();
    assert_eq!(sizes, vec![Some(5), Some(0), Some(3)]);
}

#[test]
fn byte_by_byte_equals_all_at_once() {
    let mut c = Vec::new();
    let mut s = Vec::new();
    for id in [1u32, 3, 5, 7] {
        let path = format!("/item/{id}");
        c.extend(get(id, &path));
        s.extend(ok(id, &vec![b'x'; id as usize * 100]));
    }
    let mut whole = Harness::opened();
    whole.send(C, &c);
    whole.send(S, &s);
    let mut bytes = Harness::opened();
    for b in &c {
        bytes.send(C, std::slice::from_ref(b));
    }
    for b in &s {
        bytes.send(S, std::slice::from_ref(b));
    }
    assert_eq!(whole.paths(), bytes.paths());
    let sizes = |h: &Harness| {
        h.out
            .iter()
            .map(|t| t.response_body_size)
            .collect::<Vec<_>>()
    };
    assert_eq!(sizes(&whole), sizes(&bytes));
    assert_eq!(whole.out.len(), 4);
}

#[test]
fn continuation_padding_and_priority_are_understood() {
    let mut h = Harness::opened();
    let block = build::request_block("POST", "/upload", &[("user-agent", "grpc-test/1.0")]);
    let (a, b) = block.split_at(5);
    // HEADERS with PADDED and PRIORITY: pad length 3, 5 priority bytes, fragment, padding.
    let mut p = vec![3, 0, 0, 0, 1, 16];
    p.extend_from_slice(a);
    p.extend_from_slice(&[0, 0, 0]);
    let mut c = Vec::new();
    build::frame(
        &mut c,
        Kind::Headers,
        flags::PADDED | flags::PRIORITY,
        1,
        &p,
    );
    build::frame(&mut c, Kind::Continuation, flags::END_HEADERS, 1, b);
    // Padded DATA: 10 bytes of content, 4 of padding.
    let mut d = vec![4];
    d.extend_from_slice(&[b'u'; 10]);
    d.extend_from_slice(&[0; 4]);
    build::frame(&mut c, Kind::Data, flags::PADDED | flags::END_STREAM, 1, &d);
    build::frame(&mut c, Kind::Priority, 0, 1, &[0, 0, 0, 0, 200]);
    h.send(C, &c);
    h.send(S, &ok(1, b"done"));
    let t = &h.out[0];
    assert_eq!(t.method.as_deref(), Some("POST"));
    assert_eq!(t.path.as_deref(), Some("/upload"));
    assert_eq!(t.user_agent.as_deref(), Some("grpc-test/1.0"));
    assert_eq!(t.request_body_size, Some(10));
    assert_eq!(
        t.request_wire_bytes,
        c.len() as u64 - 14,
        "PRIORITY frame is not the stream's wire bytes"
    );
}

#[test]
fn interim_100_is_not_the_status_and_trailers_are_read() {
    let mut h = Harness::opened();
    h.send(C, &get(1, "/x"));
    let mut s = Vec::new();
    build::headers(&mut s, 1, &build::response_block(100, &[]), false);
    build::headers(&mut s, 1, &build::response_block(201, &[]), false);
    build::data(&mut s, 1, b"abc", false);
    build::headers(
        &mut s,
        1,
        &build::trailers_block(&[("x-checksum", "1")]),
        true,
    );
    h.send(S, &s);
    assert_eq!(h.paths(), vec![(Some("/x"), Some(201))]);
    assert_eq!(h.out[0].response_body_size, Some(3));
}

#[test]
fn rst_stream_ends_the_stream_with_the_right_error() {
    let mut h = Harness::opened();
    let mut c = get(1, "/cancelled");
    c.extend(get(3, "/refused"));
    h.send(C, &c);
    let mut c = Vec::new();
    build::rst_stream(&mut c, 1, 0x8); // CANCEL from the client
    h.send(C, &c);
    let mut s = Vec::new();
    build::rst_stream(&mut s, 3, frame::REFUSED_STREAM);
    h.send(S, &s);
    let errs: Vec<_> = h.out.iter().map(|t| (t.path.as_deref(), t.error)).collect();
    assert_eq!(
        errs,
        vec![
            (Some("/cancelled"), Some(ErrorType::ConnectionReset)),
            (Some("/refused"), Some(ErrorType::ConnectionClosed)),
        ]
    );
    assert_eq!(h.stats.rst_streams, 2);
    // RST_STREAM(NO_ERROR) after a complete response changes nothing.
    h.send(C, &get(5, "/done"));
    let mut s = ok(5, b"k");
    build::rst_stream(&mut s, 5, 0);
    h.send(S, &s);
    assert_eq!(h.out[2].error, None);
}

#[test]
fn goaway_closes_streams_above_last_id_and_an_error_resets_the_rest() {
    let mut h = Harness::opened();
    let mut c = Vec::new();
    for (id, p) in [(1, "/a"), (3, "/b"), (5, "/c")] {
        c.extend(get(id, p));
    }
    h.send(C, &c);
    let mut s = Vec::new();
    build::goaway(&mut s, 1, 0x2); // INTERNAL_ERROR, processed up to stream 1
    h.send(S, &s);
    assert_eq!(
        h.out
            .iter()
            .map(|t| (t.path.as_deref(), t.error))
            .collect::<Vec<_>>(),
        vec![
            (Some("/b"), Some(ErrorType::ConnectionClosed)),
            (Some("/c"), Some(ErrorType::ConnectionClosed)),
        ]
    );
    h.piece(S, Piece::End);
    assert_eq!(h.out[2].path.as_deref(), Some("/a"));
    assert_eq!(h.out[2].error, Some(ErrorType::ConnectionReset));
    assert_eq!(h.stats.goaways, 1);
}

#[test]
fn no_response_in_time_is_a_timeout_and_the_late_response_is_counted() {
    let mut h = Harness::opened();
    h.send(C, &get(1, "/slow"));
    let start = h.ts;
    h.expire(start + 10, 30);
    assert!(h.out.is_empty());
    h.expire(start + 40, 30);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].error, Some(ErrorType::Timeout));
    assert_eq!(h.out[0].duration_ns, Some(40));
    h.send(S, &ok(1, b"late"));
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.stats.late_streams, 1);
    assert_eq!(h.conn.pending(), 0);
}

#[test]
fn streams_over_the_limit_are_counted_not_recorded() {
    let mut h = Harness::with(
        true,
        H2Config {
            max_streams: 2,
            ..H2Config::default()
        },
    );
    let mut c = Vec::new();
    build::preface(&mut c);
    build::settings(&mut c, &[]);
    for id in [1, 3, 5] {
        c.extend(get(id, "/p"));
    }
    h.send(C, &c);
    assert_eq!(h.stats.streams_over_limit, 1);
    let mut s = Vec::new();
    build::settings(&mut s, &[]);
    for id in [1, 3, 5] {
        s.extend(ok(id, b""));
    }
    h.send(S, &s);
    assert_eq!(h.out.len(), 2);
}

#[test]
fn settings_table_size_and_size_updates_are_followed() {
    let mut h = Harness::opened();
    // The client shrinks the server's encoder table to 0: no dynamic entries.
    let mut c = Vec::new();
    build::settings(&mut c, &[(frame::setting::HEADER_TABLE_SIZE, 0)]);
    h.send(C, &c);
    let mut s = Vec::new();
    build::settings_ack(&mut s);
    let mut b = Vec::new();
    encode::size_update(&mut b, 0);
    b.extend(build::response_block(200, &[("server", "test")]));
    h.send(C, &get(1, "/t"));
    build::headers(&mut s, 1, &b, true);
    h.send(S, &s);
    assert_eq!(h.paths(), vec![(Some("/t"), Some(200))]);
    assert_eq!(h.stats.table_size_capped, 0);
}

#[test]
fn dynamic_table_references_resolve_across_requests() {
    let mut h = Harness::opened();
    h.send(C, &get(1, "/same"));
    // The second request repeats every field by index: :authority 62, :path 63.
    let mut b = Vec::new();
    encode::indexed(&mut b, 2);
    encode::indexed(&mut b, 6);
    encode::indexed(&mut b, 63);
    encode::indexed(&mut b, 62);
    let mut c = Vec::new();
    build::headers(&mut c, 3, &b, true);
    h.send(C, &c);
    let mut s = ok(1, b"");
    s.extend(ok(3, b""));
    h.send(S, &s);
    assert_eq!(
        h.paths(),
        vec![(Some("/same"), Some(200)), (Some("/same"), Some(200))]
    );
    assert_eq!(h.stats.unknown_fields, 0);
}

#[test]
fn server_push_is_a_stream_of_its_own() {
    let mut h = Harness::opened();
    h.send(C, &get(1, "/index"));
    let mut s = Vec::new();
    let mut p = 2u32.to_be_bytes().to_vec();
    p.extend(build::request_block("GET", "/style.css", &[]));
    build::frame(&mut s, Kind::PushPromise, flags::END_HEADERS, 1, &p);
    s.extend(ok(1, b"<html>"));
    s.extend(ok(2, b"body{}"));
    h.send(S, &s);
    assert_eq!(
        h.paths(),
        vec![(Some("/index"), Some(200)), (Some("/style.css"), Some(200))]
    );
}

#[test]
fn end_of_server_direction_closes_open_streams() {
    let mut h = Harness::opened();
    h.send(C, &get(1, "/open"));
    h.piece(S, Piece::End);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].error, Some(ErrorType::ConnectionClosed));
    assert_eq!(h.out[0].status, None);
}

#[test]
fn identity_from_api_key_and_jwt() {
    let mut h = Harness::opened();
    let mut c = Vec::new();
    let b = build::request_block(
        "GET",
        "/k",
        &[("x-api-key", "abc"), ("x-request-id", "r-1")],
    );
    build::headers(&mut c, 1, &b, true);
    let b = build::request_block(
        "GET",
        "/j",
        &[(
            "authorization",
            "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.x",
        )],
    );
    build::headers(&mut c, 3, &b, true);
    h.send(C, &c);
    let mut s = ok(1, b"");
    s.extend(ok(3, b""));
    h.send(S, &s);
    assert_eq!(h.out[0].client_id.as_deref(), Some("key:ba7816bf8f01"));
    assert_eq!(h.out[0].request_id.as_deref(), Some("r-1"));
    assert_eq!(h.out[1].client_id.as_deref(), Some("sub:alice"));
}

#[test]
fn a_generated_session_yields_exactly_its_streams() {
    let sess = build::session(100, 10);
    let mut h = Harness::new(true);
    for chunk in sess.client.chunks(1000) {
        h.send(C, chunk);
    }
    for chunk in sess.server.chunks(777) {
        h.send(S, chunk);
    }
    let got: Vec<_> = h
        .out
        .iter()
        .map(|t| {
            let p = t.path.as_deref().unwrap_or_default().to_string();
            (p, t.status.unwrap_or(0), t.response_body_size.unwrap_or(0))
        })
        .collect();
    assert_eq!(got, sess.expected);
    assert!(h.out.iter().all(|t| t.error.is_none()));
    assert_eq!(h.out.iter().filter(|t| t.rpc.is_some()).count(), 33);
    assert_eq!((h.stats.unknown_fields, h.stats.resyncs), (0, 0));
}

#[test]
fn forwarded_for_is_believed_only_through_trusted_proxies() {
    let mut h = Harness::opened();
    // The connection comes from 192.0.2.1, a trusted proxy; 1.1.1.1 is what the client wrote.
    h.identity.trusted_proxies = vec!["192.0.2.1".parse().expect("cidr")];
    let mut c = Vec::new();
    let b = build::request_block("GET", "/x", &[("x-forwarded-for", "1.1.1.1, 203.0.113.9")]);
    build::headers(&mut c, 1, &b, true);
    h.send(C, &c);
    h.send(S, &ok(1, b""));
    assert_eq!(h.out[0].client_id.as_deref(), Some("203.0.113.9"));

    let mut h = Harness::opened();
    let mut c = Vec::new();
    build::headers(&mut c, 1, &b, true);
    h.send(C, &c);
    h.send(S, &ok(1, b""));
    assert_eq!(
        h.out[0].client_id.as_deref(),
        Some("192.0.2.1"),
        "no trusted proxies: the header is ignored"
    );
}
