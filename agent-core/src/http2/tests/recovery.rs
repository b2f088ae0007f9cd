//! Joining mid-connection, lost and uncopied bytes, malformed frames: unknowns are counted and
//! no field is ever guessed.

use super::*;
use crate::ErrorType;
use crate::http2::Malformed;
use crate::http2::hpack::encode;

#[test]
fn joined_mid_connection_static_and_literal_fields_decode_dynamic_are_unknown() {
    let mut h = Harness::new(false);
    // We join in the middle of a DATA frame of an earlier stream.
    let mut c = Vec::new();
    build::data(&mut c, 1, &[7; 40], true);
    // A request that repeats :path from the table we never saw, and one with a literal path.
    let mut b = Vec::new();
    encode::indexed(&mut b, 2);
    encode::indexed(&mut b, 6);
    encode::indexed(&mut b, 64);
    encode::indexed(&mut b, 62);
    build::headers(&mut c, 3, &b, true);
    c.extend(get(5, "/literal"));
    h.send(C, &c[20..]);
    let mut s = Vec::new();
    s.extend(ok(1, b"tail of an old stream"));
    s.extend(ok(3, b"x"));
    s.extend(ok(5, b"y"));
    h.send(S, &s);
    assert_eq!(
        h.out
            .iter()
            .map(|t| (t.method.as_deref(), t.path.as_deref(), t.status))
            .collect::<Vec<_>>(),
        vec![
            (Some("GET"), None, Some(200)),
            (Some("GET"), Some("/literal"), Some(200))
        ]
    );
    assert_eq!(h.stats.unknown_fields, 2);
    assert_eq!(
        h.stats.orphan_streams, 1,
        "stream 1's request was before the join"
    );
    assert_eq!(h.stats.joined_connections, 1);
    assert_eq!(h.out[0].error, None);
}

#[test]
fn a_lost_header_frame_is_a_gap_and_later_references_are_unknown() {
    let mut h = Harness::opened();
    h.send(C, &get(1, "/first")); // inserts :path "/first" and :authority
    let second = get(3, "/second");
    // The frame header arrives, its payload is lost.
    h.send(C, &second[..9]);
    h.piece(
        C,
        Piece::Missing {
            len: (second.len() - 9) as u32,
            lost: true,
        },
    );
    // Stream 5 refers to the table by index: after the lost block, unknown.
    let mut b = Vec::new();
    encode::indexed(&mut b, 2);
    encode::indexed(&mut b, 6);
    encode::indexed(&mut b, 63);
    let mut c = Vec::new();
    build::headers(&mut c, 5, &b, true);
    h.send(C, &c);
    let mut s = ok(1, b"a");
    s.extend(ok(3, b"b"));
    s.extend(ok(5, b"c"));
    h.send(S, &s);
    let got: Vec<_> = h.out.iter().map(|t| (t.path.as_deref(), t.error)).collect();
    assert_eq!(
        got,
        vec![
            (Some("/first"), None),
            (None, Some(ErrorType::CaptureGap)),
            (None, None),
        ]
    );
    assert_eq!(h.stats.header_blocks_lost, 1);
    assert_eq!(h.stats.unknown_fields, 1);
}

#[test]
fn uncopied_data_payload_keeps_sizes_exact() {
    let mut h = Harness::opened();
    h.send(C, &get(1, "/big"));
    let body = vec![b'z'; 5000];
    let s = ok(1, &body);
    // The capture copied the response head and the first 100 body bytes only.
    let head_len = s.len() - body.len();
    h.send(S, &s[..head_len + 100]);
    h.piece(
        S,
        Piece::Missing {
            len: 4900,
            lost: false,
        },
    );
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].response_body_size, Some(5000));
    assert_eq!(h.out[0].error, None);
}

#[test]
fn a_lost_frame_header_resyncs_by_shape() {
    let mut h = Harness::opened();
    let mut c = get(1, "/a");
    c.extend(get(3, "/b"));
    h.send(C, &c);
    let mut s = ok(1, b"one");
    let cut = s.len();
    s.extend(ok(3, b"two"));
    // Lose the middle of stream 1's response, including the DATA frame header.
    h.send(S, &s[..5]);
    h.piece(
        S,
        Piece::Missing {
            len: (cut - 5) as u32,
            lost: true,
        },
    );
    h.send(S, &s[cut..]);
    assert_eq!(h.stats.resyncs, 1);
    let got: Vec<_> = h.out.iter().map(|t| (t.path.as_deref(), t.error)).collect();
    // Stream 3 completes (marked: frames were missed while it was open); stream 1 ends
    // with the connection.
    assert_eq!(got, vec![(Some("/b"), Some(ErrorType::CaptureGap))]);
    h.piece(S, Piece::End);
    assert_eq!(h.out[1].path.as_deref(), Some("/a"));
}

#[test]
fn a_malformed_frame_ends_parsing_and_is_counted() {
    let mut h = Harness::opened();
    h.send(C, &get(1, "/a"));
    let mut s = Vec::new();
    build::data(&mut s, 0, b"bad", false); // DATA on stream 0
    h.send(S, &s);
    assert!(h.conn.stopped());
    assert_eq!(h.stats.malformed_for(Malformed::FrameShape), 1);
    h.send(S, &ok(1, b"ignored"));
    assert!(h.out.is_empty());
    h.close(ErrorType::ConnectionClosed);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].error, Some(ErrorType::ConnectionClosed));
}

#[test]
fn a_bad_preface_is_malformed() {
    let mut h = Harness::new(true);
    h.send(C, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(h.stats.malformed_for(Malformed::Preface), 1);
}

#[test]
fn hpack_errors_and_missing_continuation_are_malformed() {
    let mut h = Harness::opened();
    let mut c = Vec::new();
    build::headers(&mut c, 1, &[0x80], true); // index 0
    h.send(C, &c);
    assert_eq!(h.stats.malformed_for(Malformed::Hpack), 1);

    let mut h = Harness::opened();
    let mut c = Vec::new();
    let b = build::request_block("GET", "/", &[]);
    build::frame(&mut c, crate::http2::frame::Kind::Headers, 0, 1, &b); // no END_HEADERS
    build::data(&mut c, 1, b"x", true);
    h.send(C, &c);
    assert_eq!(h.stats.malformed_for(Malformed::Protocol), 1);
}

#[test]
fn oversize_header_blocks_are_counted_and_the_table_forgotten() {
    let mut h = Harness::with(
        true,
        H2Config {
            max_header_block_bytes: 64,
            ..H2Config::default()
        },
    );
    let mut c = Vec::new();
    build::preface(&mut c);
    build::settings(&mut c, &[]);
    let long = "v".repeat(200);
    let b = build::request_block("GET", "/big-headers", &[("x-long", &long)]);
    build::headers(&mut c, 1, &b, true);
    h.send(C, &c);
    let mut s = Vec::new();
    build::settings(&mut s, &[]);
    s.extend(ok(1, b""));
    h.send(S, &s);
    assert_eq!(h.stats.header_blocks_too_large, 1);
    assert_eq!(h.out[0].path, None);
    assert_eq!(h.out[0].error, Some(ErrorType::CaptureGap));
    assert_eq!(h.conn.buffered(), h.conn.buffered().min(64 * 1024));
}
