//! Reordering against loss: an ACK ahead of the data is evidence held for the reorder window,
//! late copies of a closed connection are retransmissions, and the client's ACKs pair
//! responses across gaps.

use super::*;
use crate::engine::EngineConfig;

fn window(packets: u32, ms: u64) -> Engine {
    Engine::new(EngineConfig {
        reorder_window_packets: packets,
        reorder_window_ns: ms * MS,
        ..EngineConfig::default()
    })
}

#[rstest]
fn a_response_ahead_of_its_request_waits_for_it() {
    let mut c = Conv::new(40100, 9).open();
    c.req(&GET[..30]).req(&GET[30..]).resp(OK).req(GET).resp(OK);
    let mut order = c.segs.clone();
    // The request's second half arrives after the response that acknowledges it.
    let late = order.remove(3);
    order.insert(4, late);
    let mut e = engine();
    let out = c.run_order(&mut e, &order);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert!(
        out.iter()
            .all(|t| t.error.is_none() && t.status == Some(200))
    );
    assert_eq!(out[0].path.as_deref(), Some("/api/users/42"));
    let r = &e.stats().reassembly;
    assert_eq!((r.gaps, r.reorder_evidence, r.reorder_recovered), (0, 1, 1));
}

#[rstest]
fn loss_is_declared_once_the_window_passed_in_packets_and_time() {
    let mut c = Conv::new(40101, 9).open();
    c.req(&GET[..30]).req(&GET[30..]).resp(OK);
    for _ in 0..4 {
        c.req(b"x");
    }
    let mut order = c.segs.clone();
    order.remove(3); // never arrives
    // Segments 1 ms apart: four of them and 3 ms pass after the response's ACK.
    let mut e = window(4, 3);
    let mut out = Vec::new();
    for (i, s) in order.iter().enumerate() {
        e.ingest(&c.segment(s), &mut out);
        let declared = e.stats().reassembly.reorder_window_expired;
        // Evidence at the response (index 3): packets 4..=6 are inside the window.
        assert_eq!(declared, u64::from(i >= 7), "after segment {i}");
    }
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(
        (out[0].status, out[0].error),
        (Some(200), Some(ErrorType::CaptureGap))
    );
}

#[rstest]
fn an_idle_flow_declares_the_loss_after_the_gap_timeout() {
    let mut c = Conv::new(40102, 9).open();
    c.req(&GET[..30]).req(&GET[30..]).resp(OK);
    let mut order = c.segs.clone();
    order.remove(3);
    let mut e = engine();
    let mut out = c.run_order(&mut e, &order);
    e.advance(T0 + 1_000 * MS, &mut out);
    assert!(out.is_empty(), "inside the gap timeout: {out:#?}");
    e.advance(T0 + 3_000 * MS, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(e.stats().reassembly.reorder_window_expired, 1);
}

#[rstest]
fn parking_more_than_the_segment_bound_ends_the_wait_counted() {
    let mut c = Conv::new(40103, 9).open();
    c.req(&GET[..30]).req(&GET[30..]);
    for _ in 0..5 {
        c.resp(b"x");
    }
    let mut order = c.segs.clone();
    order.remove(3);
    let mut e = Engine::new(EngineConfig {
        reorder_max_segments: 3,
        ..EngineConfig::default()
    });
    let mut out = Vec::new();
    c.run_order(&mut e, &order);
    e.finish(&mut out);
    assert_eq!(e.stats().reassembly.reorder_limit, 1);
}

#[rstest]
fn length_only_segments_reordered_by_more_than_256_kib_are_not_loss() {
    // On lo, 64 KiB segments of one body, the kernel copying none of them, reordered by six
    // segments: a sender moving between CPUs has its segments classified from two backlogs.
    let body = vec![b'x'; 64 * 1024];
    let mut c = Conv::new(40110, 9).open();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        10 * body.len()
    );
    c.req(GET).resp(head.as_bytes());
    for _ in 0..10 {
        c.send_copied(Direction::ToClient, &body, 0);
    }
    let mut order = c.segs.clone();
    let late = order.remove(4); // the first body segment (after SYN, SYN-ACK, GET, head)
    order.insert(10, late); // after the next six
    let mut e = engine();
    let mut out = c.run_order(&mut e, &order);
    e.finish(&mut out);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].error, None, "{:?}", e.stats().reassembly);
    assert_eq!(out[0].response_body_size, Some(10 * 64 * 1024));
    let r = &e.stats().reassembly;
    assert_eq!(
        (r.gaps, r.reorder_limit, r.out_of_order_segments),
        (0, 0, 6)
    );
}

#[rstest]
fn a_segment_past_the_reorder_window_ends_the_wait_counted() {
    let mut c = Conv::new(40111, 9).open();
    c.req(GET)
        .resp(b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n");
    for _ in 0..3 {
        c.send_copied(Direction::ToClient, &[b'x'; 1000], 0);
    }
    let mut order = c.segs.clone();
    order.remove(4); // the first body segment never arrives
    let mut e = Engine::new(EngineConfig {
        reorder_window_bytes: 1500,
        ..EngineConfig::default()
    });
    let mut out = c.run_order(&mut e, &order);
    e.finish(&mut out);
    let r = &e.stats().reassembly;
    assert_eq!((r.gaps, r.gap_bytes, r.reorder_limit), (1, 1000, 1));
    assert_eq!(out[0].error, Some(ErrorType::CaptureGap));
}

#[rstest]
fn a_late_copy_after_both_fins_is_a_retransmission_not_a_new_flow() {
    let mut c = Conv::new(40104, 9).open();
    c.req(GET).resp(OK);
    c.fin(Direction::ToServer).fin(Direction::ToClient);
    let mut order = c.segs.clone();
    order.push(order[2].clone()); // the request again
    order.push(order[3].clone()); // and the response
    let mut e = engine();
    let mut out = c.run_order(&mut e, &order);
    e.finish(&mut out);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(e.stats().flows.opened, 1);
    assert_eq!(
        e.stats().reassembly.retransmit_bytes,
        (GET.len() + OK.len()) as u64
    );
}

#[rstest]
fn two_responses_lost_in_one_gap_pair_by_the_clients_acks() {
    let mut c = Conv::new(40105, 9).open();
    let (a, b): (&[u8], &[u8]) = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nb",
    );
    c.req(GET).resp(a).req(GET).resp(a).req(GET).resp(b);
    let mut order = c.segs.clone();
    order.remove(5); // second response
    order.remove(3); // first response
    let mut e = engine();
    let mut out = c.run_order(&mut e, &order);
    e.finish(&mut out);
    let got: Vec<_> = out.iter().map(|t| (t.status, t.error)).collect();
    let gap = Some(ErrorType::CaptureGap);
    assert_eq!(got, vec![(None, gap), (None, gap), (Some(404), None)]);
}

#[rstest]
fn a_request_lost_whole_is_answered_by_its_own_response() {
    let mut c = Conv::new(40106, 9).open();
    let b: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nb";
    c.req(GET).resp(OK).req(GET).resp(b).req(GET).resp(OK);
    let mut order = c.segs.clone();
    order.remove(4); // the second request
    let mut e = engine();
    let mut out = c.run_order(&mut e, &order);
    e.finish(&mut out);
    let got: Vec<_> = out.iter().map(|t| (t.status, t.error)).collect();
    let gap = Some(ErrorType::CaptureGap);
    assert_eq!(
        got,
        vec![(Some(200), None), (Some(404), gap), (Some(200), None)]
    );
    assert!(out[1].method.is_none());
    assert_eq!(out[2].path.as_deref(), Some("/api/users/42"));
}

#[rstest]
fn after_a_lost_response_of_a_pipelined_batch_the_next_pairing_is_marked() {
    let mut c = Conv::new(40107, 9).open();
    let batch = [GET, GET, GET].concat();
    c.req(&batch).resp(OK).resp(OK).resp(OK);
    let mut order = c.segs.clone();
    order.remove(3); // first response
    let mut e = engine();
    let mut out = c.run_order(&mut e, &order);
    e.finish(&mut out);
    let got: Vec<_> = out.iter().map(|t| (t.status, t.error)).collect();
    let gap = Some(ErrorType::CaptureGap);
    // Which response answers which of the two left is unknowable: the first is marked.
    assert_eq!(got, vec![(None, gap), (Some(200), gap), (Some(200), None)]);
}

#[rstest]
fn a_request_whose_response_was_lost_before_the_fin_is_a_gap_not_a_close() {
    let mut c = Conv::new(40108, 9).open();
    c.req(GET).resp(OK).req(GET).resp(OK);
    c.fin(Direction::ToClient).fin(Direction::ToServer);
    let mut order = c.segs.clone();
    order.remove(5); // the last response
    let mut e = engine();
    let mut out = c.run_order(&mut e, &order);
    e.finish(&mut out);
    let got: Vec<_> = out.iter().map(|t| (t.status, t.error)).collect();
    assert_eq!(
        got,
        vec![(Some(200), None), (None, Some(ErrorType::CaptureGap))]
    );
}

#[rstest]
fn a_server_that_closes_without_answering_is_a_close() {
    let mut c = Conv::new(40109, 9).open();
    c.req(GET).resp(OK).req(GET);
    c.fin(Direction::ToClient).fin(Direction::ToServer);
    let mut e = engine();
    let mut out = c.run(&mut e);
    e.finish(&mut out);
    assert_eq!(out[1].error, Some(ErrorType::ConnectionClosed));
}
