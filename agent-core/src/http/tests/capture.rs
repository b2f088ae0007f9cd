//! Reassembly, loss, partial copies, joins and non-HTTP flows.

use super::*;

#[rstest]
fn out_of_order_segments_are_reordered() {
    let mut c = Conv::new(40002, 9).open();
    c.req(&GET[..20]).req(&GET[20..40]).req(&GET[40..]).resp(OK);
    let mut order = c.segs.clone();
    order.swap(2, 4);
    let mut e = engine();
    let out = c.run_order(&mut e, &order);
    assert_eq!(one(&out).path.as_deref(), Some("/api/users/42"));
    assert_eq!(e.stats().reassembly.out_of_order_segments, 2);
    assert_eq!(e.stats().reassembly.gap_bytes, 0);
}

#[rstest]
fn retransmitted_duplicate_is_counted_and_ignored() {
    let mut c = Conv::new(40003, 9).open();
    c.req(GET).resp(OK);
    let mut order = c.segs.clone();
    order.insert(3, order[2].clone());
    let mut e = engine();
    let out = c.run_order(&mut e, &order);
    assert_eq!(one(&out).status, Some(200));
    assert_eq!(e.stats().reassembly.retransmit_bytes, GET.len() as u64);
}

#[rstest]
fn conflicting_overlap_keeps_first_copy_and_counts() {
    let mut c = Conv::new(40004, 9).open();
    c.req(&GET[..10]).req(&GET[10..30]).req(&GET[30..]).resp(OK);
    let mut order = c.segs.clone();
    // Second segment arrives first, then a conflicting copy of it, then the first.
    let mut bad = order[3].clone();
    bad.data[0] = b'#';
    order.insert(3, bad);
    order.swap(2, 4);
    let mut e = engine();
    let out = c.run_order(&mut e, &order);
    assert_eq!(one(&out).path.as_deref(), Some("/api/users/42"));
    assert_eq!(e.stats().reassembly.overlap_conflicts, 1);
}

#[rstest]
fn gap_in_head_marks_capture_gap_and_resyncs() {
    let mut c = Conv::new(40005, 9).open();
    c.req(&GET[..20]).req(&GET[20..]).resp(OK).req(GET).resp(OK);
    let mut order = c.segs.clone();
    order.remove(3); // the second half of the first head never arrives
    let mut e = engine();
    let mut out = c.run_order(&mut e, &order);
    // The server's ACK is evidence of the loss; it is declared when the reorder window passes.
    assert!(out.is_empty(), "{out:#?}");
    e.advance(T0 + 10_000 * MS, &mut out);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[0].error, Some(ErrorType::CaptureGap));
    assert_eq!(out[0].status, Some(200));
    assert_eq!(out[1].error, None);
    assert_eq!(out[1].path.as_deref(), Some("/api/users/42"));
    assert_eq!(e.stats().reassembly.gap_bytes, (GET.len() - 20) as u64);
    assert!(e.stats().http.resyncs >= 1);
}

#[rstest]
fn uncopied_bytes_in_body_are_fine() {
    let body = vec![b'x'; 4000];
    let mut resp = b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n".to_vec();
    resp.extend_from_slice(&body);
    let mut c = Conv::new(40006, 9).open();
    c.req(GET);
    c.send_copied(Direction::ToClient, &resp[..1448], 256);
    c.send_copied(Direction::ToClient, &resp[1448..2896], 256);
    c.send_copied(Direction::ToClient, &resp[2896..], 256);
    c.req(GET).resp(OK);
    let mut e = engine();
    let out = c.run(&mut e);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].error, None);
    assert_eq!(out[0].response_body_size, Some(4000));
    assert_eq!(out[1].status, Some(200));
    assert_eq!(e.stats().gaps(), 0);
    assert!(e.stats().flows.uncopied_bytes > 0);
}

#[rstest]
fn uncopied_bytes_in_head_are_a_gap() {
    let mut c = Conv::new(40007, 9).open();
    c.send_copied(Direction::ToServer, GET, 10);
    c.resp(OK).req(GET).resp(OK);
    let mut e = engine();
    let out = c.run(&mut e);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[0].error, Some(ErrorType::CaptureGap));
    assert_eq!(out[1].error, None);
    assert_eq!(e.stats().gaps(), 1);
}

#[rstest]
#[case::redis(&b"*1\r\n$4\r\nPING\r\n"[..])]
#[case::tls(&[0x16, 0x03, 0x01, 0x00, 0x10, 1][..])]
#[case::lowercase_words(&b"hello there\r\n"[..])]
fn non_http_port_is_detected_and_ignored(#[case] first: &[u8]) {
    let mut c = Conv::new(40022, 9).open();
    c.req(first).resp(b"+PONG\r\n").req(GET).resp(OK);
    let mut e = engine();
    let out = c.run(&mut e);
    assert!(out.is_empty());
    assert_eq!(e.stats().http.non_http_flows, 1);
    assert!(e.active_connections().is_empty());
}

#[rstest]
fn mid_stream_join_resyncs_at_next_request_and_status() {
    // No handshake: capture starts inside a response body.
    let mut c = Conv::new(40023, 9);
    c.resp(b"ody of an earlier response").req(GET).resp(OK);
    c.req(b"tail of an earlier body{}POST /p HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        .resp(OK);
    let mut e = engine();
    let out = c.run(&mut e);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[0].path.as_deref(), Some("/api/users/42"));
    assert_eq!(out[1].method.as_deref(), Some("POST"));
    assert!(e.stats().http.resyncs >= 2);
}

#[rstest]
fn sequence_wraparound_at_2_pow_32() {
    let mut c = Conv::new(40032, u32::MAX - 30).open();
    c.req(&GET[..20]).req(&GET[20..]).resp(OK).req(GET).resp(OK);
    let mut order = c.segs.clone();
    order.swap(2, 3);
    let mut e = engine();
    let out = c.run_order(&mut e, &order);
    assert_eq!(out.len(), 2);
    assert!(
        out.iter()
            .all(|t| t.error.is_none() && t.status == Some(200))
    );
    assert_eq!(e.stats().reassembly.gap_bytes, 0);
}

#[rstest]
fn lost_request_segment_is_detected_from_the_servers_ack() {
    let mut c = Conv::new(40038, 9).open();
    c.req(GET).resp(OK).req(GET).resp(OK);
    let mut order = c.segs.clone();
    order.remove(4); // second request never captured; its response acknowledges it
    let mut e = engine();
    let mut out = c.run_order(&mut e, &order);
    e.advance(T0 + 10_000 * MS, &mut out);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(e.stats().reassembly.reorder_window_expired, 1);
    assert_eq!(out[0].error, None);
    assert_eq!(
        (out[1].status, out[1].error),
        (Some(200), Some(ErrorType::CaptureGap))
    );
    assert_eq!(e.stats().reassembly.gap_bytes, GET.len() as u64);
}

#[rstest]
fn lost_bytes_inside_a_length_body_keep_framing() {
    let mut resp = b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n".to_vec();
    resp.extend(std::iter::repeat_n(b'z', 3000));
    let mut c = Conv::new(40039, 9).open();
    c.req(GET)
        .resp(&resp[..1000])
        .resp(&resp[1000..2000])
        .resp(&resp[2000..])
        .req(GET)
        .resp(OK);
    let mut order = c.segs.clone();
    order.remove(4);
    let mut e = engine();
    let mut out = c.run_order(&mut e, &order);
    e.advance(T0 + 10_000 * MS, &mut out);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(
        (out[0].status, out[0].error),
        (Some(200), Some(ErrorType::CaptureGap))
    );
    assert_eq!((out[1].status, out[1].error), (Some(200), None));
}

#[rstest]
fn server_speaking_first_is_not_http() {
    let mut c = Conv::new(40040, 9).open();
    c.resp(b"220 smtp.example ESMTP\r\n").req(b"EHLO me\r\n");
    let mut e = engine();
    assert!(c.run(&mut e).is_empty());
    assert_eq!(e.stats().http.non_http_flows, 1);
}

#[rstest]
fn bare_acks_of_unknown_flows_are_ignored() {
    let mut c = Conv::new(40041, 9);
    let (s, a) = (c.cseq, c.sseq);
    c.raw(Direction::ToServer, s, a, TcpFlags::ACK, &[], 0);
    c.raw(
        Direction::ToServer,
        s,
        a,
        TcpFlags::FIN | TcpFlags::ACK,
        &[],
        0,
    );
    let mut e = engine();
    assert!(c.run(&mut e).is_empty());
    assert_eq!(e.stats().flows.opened, 0);
}

fn chunked_body(chunks: usize, size: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..chunks {
        b.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        b.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, size));
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"0\r\n\r\n");
    b
}

#[rstest]
fn chunked_framing_in_uncopied_bytes_is_skimmed_to_the_next_response() {
    let mut resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    resp.extend(chunked_body(8, 1000));
    let mut c = Conv::new(40042, 9).open();
    c.req(GET);
    for part in resp.chunks(3000) {
        c.send_copied(Direction::ToClient, part, part.len().min(200));
    }
    let last_body_ts = c.ts;
    c.req(GET).resp(OK);
    let mut e = engine();
    let out = c.run(&mut e);
    assert_eq!(out.len(), 2, "{out:#?}");
    let t = &out[0];
    assert_eq!(
        (t.status, t.error, t.response_body_size),
        (Some(200), None, None)
    );
    assert_eq!(t.response_wire_bytes, resp.len() as u64);
    assert_eq!(t.start_ns + t.duration_ns.expect("duration"), last_body_ts);
    assert_eq!((out[1].status, out[1].error), (Some(200), None));
    assert_eq!(e.stats().gaps(), 0);
}

#[rstest]
fn skimmed_chunked_response_ends_at_fin() {
    let mut resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    resp.extend(chunked_body(4, 2000));
    let mut c = Conv::new(40043, 9).open();
    c.req(GET);
    c.send_copied(Direction::ToClient, &resp, 100);
    let last_body_ts = c.ts;
    c.fin(Direction::ToClient);
    let out = c.run(&mut engine());
    let t = one(&out);
    assert_eq!((t.status, t.error), (Some(200), None));
    assert_eq!(
        t.start_ns + t.duration_ns.expect("duration"),
        last_body_ts,
        "the response ends with its last byte, not with the later FIN"
    );
}

#[rstest]
fn segment_beyond_reorder_window_gives_up_on_the_hole() {
    let cfg = EngineConfig {
        reorder_window_bytes: 1024,
        ..EngineConfig::default()
    };
    let mut c = Conv::new(40046, 9).open();
    c.req(GET).resp(OK);
    // 4000 request bytes are never seen, then a new request arrives.
    c.cseq = c.cseq.wrapping_add(4000);
    c.req(GET).resp(OK);
    let mut e = Engine::new(cfg);
    let out = c.run(&mut e);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[1].error, None);
    assert_eq!(e.stats().reassembly.gap_bytes, 4000);
    assert_eq!(e.stats().gaps(), 1);
}

#[rstest]
fn held_data_is_given_up_after_the_gap_timeout() {
    let mut c = Conv::new(40047, 9).open();
    c.req(&GET[..10]).req(&GET[10..]);
    let mut order = c.segs.clone();
    order.remove(2);
    let mut e = engine();
    let mut out = c.run_order(&mut e, &order);
    assert_eq!(e.stats().flows.buffered_bytes, (GET.len() - 10) as u64);
    e.advance(T0 + 3_000 * MS, &mut out);
    assert_eq!(e.stats().reassembly.gap_bytes, 10);
    // What followed the hole went to the resync window (no start line in it).
    assert_eq!(e.stats().http.resyncs, 1);
}

#[rstest]
fn flow_budget_bounds_out_of_order_data() {
    let cfg = EngineConfig {
        flow_budget_bytes: 2048,
        ..EngineConfig::default()
    };
    let mut c = Conv::new(40048, 9).open();
    let body = vec![b'b'; 1000];
    c.req(b"POST /u HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
    for _ in 0..5 {
        c.req(&body);
    }
    c.resp(OK);
    let mut order = c.segs.clone();
    order.remove(3); // the first body segment is lost; the rest wait out of order
    let mut e = Engine::new(cfg);
    let out = c.run_order(&mut e, &order);
    assert!(e.stats().flows.buffered_bytes <= 2048);
    let t = one(&out);
    assert_eq!(
        (t.status, t.error),
        (Some(200), Some(ErrorType::CaptureGap))
    );
}

/// Payload bytes per direction, each sequence range once (`apitap_flow_payload_bytes_total`):
/// `(offset from the first payload byte, length)` of request segments, in arrival order.
#[rstest]
#[case::in_order(&[(0, 10), (10, 5)], 15)]
#[case::exact_duplicate_counts_once(&[(0, 10), (0, 10)], 10)]
#[case::overlapping_retransmit_counts_new_part(&[(0, 10), (5, 10)], 15)]
#[case::old_segment_after_newer(&[(0, 10), (10, 10), (0, 10)], 20)]
#[case::reordered_counts_each_once(&[(10, 10), (0, 10), (10, 10)], 20)]
fn flow_bytes_count_each_sequence_range_once(#[case] segs: &[(u32, u32)], #[case] want: u64) {
    for isn in [1000, u32::MAX - 4] {
        let mut c = Conv::new(40100, isn).open();
        let (base, ack) = (c.cseq, c.sseq);
        for &(off, len) in segs {
            let data = vec![b'x'; len as usize];
            let seq = base.wrapping_add(off);
            c.raw(Direction::ToServer, seq, ack, TcpFlags::ACK, &data, len);
        }
        c.raw(Direction::ToClient, ack, base, TcpFlags::ACK, b"1234567", 7);
        let mut e = engine();
        c.run(&mut e);
        let st = &e.stats().reassembly;
        assert_eq!(st.first_seen_request_bytes, want, "isn {isn}");
        assert_eq!(st.first_seen_response_bytes, 7, "isn {isn}");
    }
}
