//! How requests without a complete response end; flow eviction.

use super::*;

#[rstest]
fn request_without_response_times_out() {
    let mut c = Conv::new(40024, 9).open();
    c.req(GET);
    let mut e = engine();
    let mut out = c.run(&mut e);
    assert!(out.is_empty());
    e.advance(T0 + 31_000 * MS, &mut out);
    let t = one(&out);
    assert_eq!(t.error, Some(ErrorType::Timeout));
    assert_eq!(t.status, None);
}

#[rstest]
fn late_response_after_timeout_pairs_away() {
    let mut c = Conv::new(40025, 9).open();
    c.req(GET);
    let mut e = engine();
    let mut out = c.run(&mut e);
    e.advance(T0 + 31_000 * MS, &mut out);
    c.segs.clear();
    c.ts = T0 + 32_000 * MS;
    c.resp(OK).req(GET).resp(OK);
    out.extend(c.run(&mut e));
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].error, None);
    assert_eq!(e.stats().http.late_responses, 1);
}

#[rstest]
fn reset_yields_connection_reset() {
    let mut c = Conv::new(40026, 9).open();
    c.req(GET)
        .req(b"GET /2 HTTP/1.1\r\n\r\n")
        .rst(Direction::ToClient);
    let mut e = engine();
    let out = c.run(&mut e);
    assert_eq!(out.len(), 2);
    assert!(
        out.iter()
            .all(|t| t.error == Some(ErrorType::ConnectionReset))
    );
    assert_eq!(e.stats().flows.tracked, 0);
}

#[rstest]
fn fin_before_response_yields_connection_closed() {
    let mut c = Conv::new(40027, 9).open();
    c.req(GET).fin(Direction::ToClient);
    let out = c.run(&mut engine());
    assert_eq!(one(&out).error, Some(ErrorType::ConnectionClosed));
}

#[rstest]
fn finish_flushes_pending_as_connection_closed() {
    let mut c = Conv::new(40028, 9).open();
    c.req(GET);
    let mut e = engine();
    let mut out = c.run(&mut e);
    e.finish(&mut out);
    assert_eq!(one(&out).error, Some(ErrorType::ConnectionClosed));
    assert_eq!(e.stats().flows.tracked, 0);
}

#[rstest]
fn idle_flow_is_evicted() {
    let mut c = Conv::new(40029, 9).open();
    c.req(GET).resp(OK);
    let mut e = engine();
    let mut out = c.run(&mut e);
    e.advance(T0 + 301_000 * MS, &mut out);
    assert_eq!(e.stats().flows.evicted_idle, 1);
    assert_eq!(e.stats().flows.tracked, 0);
    assert_eq!(out.len(), 1);
}

#[rstest]
fn total_budget_evicts_least_recently_used_flow() {
    let cfg = EngineConfig {
        total_budget_bytes: 4096,
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg);
    let mut out = Vec::new();
    let partial = vec![b'A'; 3000];
    for port in [40030, 40031] {
        let mut c = Conv::new(port, 9).open();
        c.req(GET).req(b"GET /x HTTP/1.1\r\nX: ").req(&partial);
        out.extend(c.run(&mut e));
    }
    assert_eq!(e.stats().flows.evicted_budget, 1);
    assert_eq!(e.stats().flows.tracked, 1);
    assert!(e.stats().flows.buffered_bytes <= 4096);
    assert_eq!(one(&out).error, Some(ErrorType::CaptureGap));
}

#[rstest]
fn max_flows_evicts_least_recently_used() {
    let cfg = EngineConfig {
        max_flows: 2,
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg);
    for port in [1, 2, 3] {
        let mut c = Conv::new(port, 9).open();
        c.req(GET);
        c.run(&mut e);
    }
    assert_eq!(
        (e.stats().flows.tracked, e.stats().flows.evicted_budget),
        (2, 1)
    );
}

#[rstest]
fn reused_four_tuple_with_new_syn_starts_a_new_flow() {
    let mut c = Conv::new(40037, 9).open();
    c.req(GET);
    let mut d = Conv::new(40037, 5_000_000).open();
    d.ts = c.ts + MS;
    d.req(GET).resp(OK);
    let mut e = engine();
    let mut out = c.run(&mut e);
    out.extend(d.run(&mut e));
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[0].error, Some(ErrorType::ConnectionClosed));
    assert_eq!((out[1].status, out[1].error), (Some(200), None));
    assert_eq!(e.stats().flows.opened, 2);
}

/// A connection that ends in an unusual state (requests unanswered, a head cut short, a
/// tunnel, bytes that are not HTTP) leaves its HTTP/1.x state to the next connection
/// (`http::SpareConns`): the next connection's records must be exactly those a fresh engine
/// makes of it.
#[rstest]
#[case::answered("answered")]
#[case::unanswered_pipelined("unanswered_pipelined")]
#[case::head_cut_short("head_cut_short")]
#[case::response_head_cut_short("response_head_cut_short")]
#[case::in_a_body("in_a_body")]
#[case::tunnel("tunnel")]
#[case::not_http("not_http")]
fn a_connection_after_one_that_ended_reads_as_on_a_fresh_engine(#[case] how: &str) {
    let to_server = Direction::ToServer;
    let to_client = Direction::ToClient;
    let first: &[(Direction, &[u8])] = match how {
        "answered" => &[(to_server, GET), (to_client, OK)],
        "unanswered_pipelined" => &[
            (to_server, GET),
            (to_server, b"GET /2 HTTP/1.1\r\nUser-Agent: other/1\r\n\r\n"),
        ],
        "head_cut_short" => &[(to_server, b"GET /cut HTTP/1.1\r\nHost: x\r\nUser-Ag")],
        "response_head_cut_short" => &[
            (to_server, GET),
            (to_client, b"HTTP/1.1 200 OK\r\nContent-Len"),
        ],
        "in_a_body" => &[(
            to_server,
            b"POST /up HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc",
        )],
        "tunnel" => &[
            (to_server, b"CONNECT db:5432 HTTP/1.1\r\n\r\n"),
            (to_client, b"HTTP/1.1 200 OK\r\n\r\n"),
            (to_server, b"\x00\x01\x02"),
        ],
        _ => &[(to_server, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")],
    };
    let mut a = Conv::new(40100, 9).open();
    for (dir, data) in first {
        a.send(*dir, data);
    }
    a.fin(to_client).fin(to_server);

    let mut b = Conv::new(40101, 7_777);
    b.ts = a.ts;
    let mut b = b.open();
    b.req(b"GET /api/orders/7?x=1 HTTP/1.1\r\nUser-Agent: next/2\r\n\r\n")
        .resp(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        .req(b"POST /api/orders HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody")
        .resp(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        .req(GET);
    b.fin(to_server);

    let mut reused = engine();
    a.run(&mut reused);
    assert_eq!(reused.stats().flows.closed, 1, "the first connection ended");
    let after = b.run(&mut reused);
    let fresh = b.run(&mut engine());
    assert_eq!(fresh.len(), 2, "{fresh:#?}");
    assert_eq!(after, fresh);
}
