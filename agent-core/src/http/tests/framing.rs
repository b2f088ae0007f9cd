//! Message framing and pairing.

use super::*;

#[rstest]
fn simple_exchange_yields_one_complete_record() {
    let mut c = Conv::new(40000, 1000).open();
    c.req(GET).resp(OK);
    let mut e = engine();
    let out = c.run(&mut e);
    let t = one(&out);
    assert_eq!(t.method.as_deref(), Some("GET"));
    assert_eq!(t.path.as_deref(), Some("/api/users/42"));
    assert_eq!(t.query.as_deref(), Some("fields=name"));
    assert_eq!(t.status, Some(200));
    assert_eq!(t.version, Some("1.1"));
    assert_eq!(t.response_body_size, Some(5));
    assert_eq!(t.request_wire_bytes, GET.len() as u64);
    assert_eq!(t.response_wire_bytes, OK.len() as u64);
    assert_eq!(t.ttfb_ns, Some(MS));
    assert_eq!(t.duration_ns, Some(MS));
    assert_eq!(&*t.service, "port-8080");
    assert_eq!(t.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(t.client_id.as_deref(), Some("192.0.2.1"));
    assert_eq!(t.error, None);
    assert_eq!(
        e.active_connections(),
        vec![(String::new(), "port-8080".to_string(), 1)]
    );
}

#[rstest]
fn head_split_across_segments_is_reassembled() {
    let mut c = Conv::new(40001, 7).open();
    for chunk in GET.chunks(3) {
        c.req(chunk);
    }
    c.resp(&OK[..10]).resp(&OK[10..]);
    let out = c.run(&mut engine());
    let t = one(&out);
    assert_eq!(t.path.as_deref(), Some("/api/users/42"));
    assert_eq!(t.status, Some(200));
    assert_eq!(t.duration_ns, Some(t.ttfb_ns.expect("ttfb") + MS));
}

#[rstest]
fn chunked_response_with_extensions_and_trailers() {
    let mut c = Conv::new(40008, 9).open();
    c.req(GET).resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;a=b\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n");
    c.req(GET).resp(OK);
    let out = c.run(&mut engine());
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].response_body_size, Some(9));
    assert_eq!(out[1].response_body_size, Some(5));
}

#[rstest]
fn chunked_request_split_at_every_byte() {
    let req = b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    for split in 1..req.len() {
        let mut c = Conv::new(40009, 9).open();
        c.req(&req[..split]).req(&req[split..]).resp(OK);
        let out = c.run(&mut engine());
        let t = one(&out);
        assert_eq!(t.request_body_size, Some(3), "split {split}");
        assert_eq!(t.request_wire_bytes, req.len() as u64, "split {split}");
    }
}

#[rstest]
#[case::head_request(&b"HEAD / HTTP/1.1\r\n\r\n"[..], &b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"[..])]
#[case::no_content(&b"DELETE /x HTTP/1.1\r\n\r\n"[..], &b"HTTP/1.1 204 No Content\r\n\r\n"[..])]
#[case::not_modified(&b"GET /x HTTP/1.1\r\n\r\n"[..], &b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n"[..])]
fn responses_without_body(#[case] req: &[u8], #[case] resp: &[u8]) {
    let mut c = Conv::new(40010, 9).open();
    c.req(req).resp(resp).req(GET).resp(OK);
    let out = c.run(&mut engine());
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[0].response_body_size, Some(0));
    assert_eq!(out[1].status, Some(200));
}

#[rstest]
fn expect_100_continue_is_interim() {
    let mut c = Conv::new(40011, 9).open();
    c.req(b"PUT /f HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    c.resp(b"HTTP/1.1 100 Continue\r\n\r\n");
    c.req(b"data")
        .resp(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    let out = c.run(&mut engine());
    let t = one(&out);
    assert_eq!(t.status, Some(201));
    assert_eq!(t.request_body_size, Some(4));
    assert_eq!(
        t.ttfb_ns,
        Some(3 * MS),
        "ttfb is the final response's first byte"
    );
}

#[rstest]
fn pipelined_requests_pair_in_order() {
    let mut c = Conv::new(40012, 9).open();
    c.req(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n");
    c.resp(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 NF\r\nContent-Length: 0\r\n\r\n");
    c.resp(b"HTTP/1.1 500 E\r\nContent-Length: 2\r\n\r\nzz");
    let out = c.run(&mut engine());
    let got: Vec<_> = out
        .iter()
        .map(|t| (t.path.clone().unwrap_or_default(), t.status))
        .collect();
    assert_eq!(
        got,
        vec![
            ("/1".into(), Some(200)),
            ("/2".into(), Some(404)),
            ("/3".into(), Some(500))
        ]
    );
}

#[rstest]
fn http10_close_delimited_response_ends_at_fin() {
    let mut c = Conv::new(40013, 9).open();
    c.req(b"GET /old HTTP/1.0\r\n\r\n")
        .resp(b"HTTP/1.0 200 OK\r\n\r\nbody...")
        .resp(b"more");
    c.fin(Direction::ToClient).fin(Direction::ToServer);
    let mut e = engine();
    let out = c.run(&mut e);
    let t = one(&out);
    assert_eq!(t.version, Some("1.0"));
    assert_eq!(t.response_body_size, Some(11));
    assert_eq!(t.error, None);
    assert_eq!(e.stats().flows.closed, 1);
    assert_eq!(e.stats().flows.tracked, 0);
}

#[rstest]
fn upgrade_101_is_recorded_then_flow_not_parsed() {
    let mut c = Conv::new(40014, 9).open();
    c.req(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    c.resp(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    c.req(b"\x81\x05hello").resp(b"\x81\x02hi");
    let mut e = engine();
    let out = c.run(&mut e);
    assert_eq!(one(&out).status, Some(101));
    assert_eq!(e.stats().http.resyncs, 0);
    assert_eq!(e.stats().http.parse_errors.iter().sum::<u64>(), 0);
}

#[rstest]
fn connect_2xx_is_recorded_then_tunnel_ignored() {
    let mut c = Conv::new(40015, 9).open();
    c.req(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    c.resp(b"HTTP/1.1 200 Connection Established\r\n\r\n");
    c.req(&[0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5])
        .resp(&[0x16, 3, 3, 0, 1, 9]);
    let mut e = engine();
    let out = c.run(&mut e);
    let t = one(&out);
    assert_eq!(
        (t.method.as_deref(), t.status),
        (Some("CONNECT"), Some(200))
    );
    assert_eq!(t.path.as_deref(), Some("example.com:443"));
}

#[rstest]
fn transfer_encoding_with_content_length_is_chunked_and_flagged() {
    let mut c = Conv::new(40016, 9).open();
    c.req(b"POST /x HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n").resp(OK);
    let mut e = engine();
    let out = c.run(&mut e);
    let t = one(&out);
    assert_eq!((t.request_body_size, t.error), (Some(2), None));
    assert_eq!(
        e.stats()
            .http
            .parse_errors_for(ParseErrorReason::TransferEncodingWithContentLength),
        1
    );
}

#[rstest]
#[case::not_a_number(&b"POST /x HTTP/1.1\r\nContent-Length: ten\r\n\r\n"[..], ParseErrorReason::InvalidContentLength)]
#[case::differing_duplicates(&b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"[..], ParseErrorReason::ConflictingContentLength)]
#[case::differing_list(&b"POST /x HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n"[..], ParseErrorReason::ConflictingContentLength)]
fn bad_content_length_is_malformed_request(#[case] req: &[u8], #[case] reason: ParseErrorReason) {
    let mut c = Conv::new(40017, 9).open();
    c.req(req)
        .resp(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    let mut e = engine();
    let out = c.run(&mut e);
    let t = one(&out);
    assert_eq!(
        (t.error, t.status),
        (Some(ErrorType::MalformedRequest), Some(400))
    );
    assert_eq!(t.method.as_deref(), Some("POST"));
    assert_eq!(e.stats().http.parse_errors_for(reason), 1);
}

#[rstest]
fn identical_duplicate_content_length_is_accepted() {
    let mut c = Conv::new(40018, 9).open();
    c.req(b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc")
        .resp(OK);
    let out = c.run(&mut engine());
    assert_eq!(one(&out).error, None);
}

#[rstest]
fn bad_response_content_length_is_malformed_response() {
    let mut c = Conv::new(40019, 9).open();
    c.req(GET)
        .resp(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
    let out = c.run(&mut engine());
    assert_eq!(one(&out).error, Some(ErrorType::MalformedResponse));
}

#[rstest]
fn header_count_limit_is_malformed() {
    let mut req = b"GET /many HTTP/1.1\r\n".to_vec();
    for i in 0..101 {
        req.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let mut c = Conv::new(40020, 9).open();
    c.req(&req)
        .resp(b"HTTP/1.1 431 Too Large\r\nContent-Length: 0\r\n\r\n")
        .req(GET)
        .resp(OK);
    let mut e = engine();
    let out = c.run(&mut e);
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].error, out[0].status),
        (Some(ErrorType::MalformedRequest), Some(431))
    );
    assert_eq!(out[0].path.as_deref(), Some("/many"));
    assert_eq!(
        e.stats()
            .http
            .parse_errors_for(ParseErrorReason::TooManyHeaders),
        1
    );
}

#[rstest]
fn head_size_limit_is_malformed() {
    let mut req = b"GET /big HTTP/1.1\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 20_000));
    req.extend_from_slice(b"\r\n\r\n");
    let mut c = Conv::new(40021, 9).open();
    for chunk in req.chunks(1400) {
        c.req(chunk);
    }
    c.resp(b"HTTP/1.1 431 Too Large\r\nContent-Length: 0\r\n\r\n")
        .req(GET)
        .resp(OK);
    let mut e = engine();
    let out = c.run(&mut e);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[0].error, Some(ErrorType::MalformedRequest));
    assert_eq!(out[1].error, None);
    assert_eq!(
        e.stats()
            .http
            .parse_errors_for(ParseErrorReason::HeadTooLarge),
        1
    );
}

#[rstest]
fn service_names_map_ports() {
    let mut e = engine();
    e.set_resolver(Box::new(PortNames::new([(8080, "users".to_string())])));
    let mut c = Conv::new(40036, 9).open();
    c.req(GET).resp(OK);
    let out = c.run(&mut e);
    assert_eq!(&*one(&out).service, "users");
    assert_eq!(one(&out).attribution, None);
}

#[rstest]
fn early_hints_103_is_interim() {
    let mut c = Conv::new(40044, 9).open();
    c.req(GET)
        .resp(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        .resp(OK);
    let out = c.run(&mut engine());
    let t = one(&out);
    assert_eq!((t.status, t.response_body_size), (Some(200), Some(5)));
}

#[rstest]
fn response_to_head_with_chunked_header_has_no_body() {
    let mut c = Conv::new(40045, 9).open();
    c.req(b"HEAD /x HTTP/1.1\r\n\r\n")
        .resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        .req(GET)
        .resp(OK);
    let out = c.run(&mut engine());
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|t| t.error.is_none()));
}
