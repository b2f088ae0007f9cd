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
