//! Engine behaviour, driven by a small TCP conversation builder.

use crate::engine::{Engine, EngineConfig, ParseErrorReason};
use crate::{Direction, ErrorType, Segment, TcpFlags, Transaction};
use rstest::rstest;
use std::net::SocketAddr;

const MS: u64 = 1_000_000;
const T0: u64 = 1_795_585_921_000_000_000;

/// An owned segment.
#[derive(Clone, Debug)]
pub struct Seg {
    pub ts: u64,
    pub dir: Direction,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub data: Vec<u8>,
    pub len: u32,
}

/// Builds one client/server conversation with real sequence numbers.
pub struct Conv {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub cseq: u32,
    pub sseq: u32,
    pub ts: u64,
    pub segs: Vec<Seg>,
}

impl Conv {
    pub fn new(client_port: u16, isn: u32) -> Conv {
        Conv {
            client: SocketAddr::from(([192, 0, 2, 1], client_port)),
            server: SocketAddr::from(([192, 0, 2, 2], 8080)),
            cseq: isn,
            sseq: isn.wrapping_add(0x1000_0000),
            ts: T0,
            segs: Vec::new(),
        }
    }

    /// Three-way handshake.
    pub fn open(mut self) -> Conv {
        let (c, s) = (self.cseq, self.sseq);
        self.raw(Direction::ToServer, c, 0, TcpFlags::SYN, &[], 0);
        self.raw(
            Direction::ToClient,
            s,
            c.wrapping_add(1),
            TcpFlags::SYN | TcpFlags::ACK,
            &[],
            0,
        );
        self.cseq = c.wrapping_add(1);
        self.sseq = s.wrapping_add(1);
        self
    }

    pub fn raw(&mut self, dir: Direction, seq: u32, ack: u32, flags: u8, data: &[u8], len: u32) {
        self.ts += MS;
        self.segs.push(Seg {
            ts: self.ts,
            dir,
            seq,
            ack,
            flags,
            data: data.to_vec(),
            len,
        });
    }

    /// One data segment in `dir`, in order.
    pub fn send(&mut self, dir: Direction, data: &[u8]) -> &mut Conv {
        self.send_copied(dir, data, data.len())
    }

    /// A data segment of which only `copied` bytes were captured.
    pub fn send_copied(&mut self, dir: Direction, data: &[u8], copied: usize) -> &mut Conv {
        let (seq, ack) = self.seq_ack(dir);
        self.raw(
            dir,
            seq,
            ack,
            TcpFlags::ACK | TcpFlags::PSH,
            &data[..copied],
            data.len() as u32,
        );
        self.bump(dir, data.len() as u32);
        self
    }

    pub fn req(&mut self, data: &[u8]) -> &mut Conv {
        self.send(Direction::ToServer, data)
    }

    pub fn resp(&mut self, data: &[u8]) -> &mut Conv {
        self.send(Direction::ToClient, data)
    }

    pub fn fin(&mut self, dir: Direction) -> &mut Conv {
        let (seq, ack) = self.seq_ack(dir);
        self.raw(dir, seq, ack, TcpFlags::FIN | TcpFlags::ACK, &[], 0);
        self.bump(dir, 1);
        self
    }

    pub fn rst(&mut self, dir: Direction) -> &mut Conv {
        let (seq, ack) = self.seq_ack(dir);
        self.raw(dir, seq, ack, TcpFlags::RST, &[], 0);
        self
    }

    fn seq_ack(&self, dir: Direction) -> (u32, u32) {
        match dir {
            Direction::ToServer => (self.cseq, self.sseq),
            Direction::ToClient => (self.sseq, self.cseq),
        }
    }

    fn bump(&mut self, dir: Direction, n: u32) {
        match dir {
            Direction::ToServer => self.cseq = self.cseq.wrapping_add(n),
            Direction::ToClient => self.sseq = self.sseq.wrapping_add(n),
        }
    }

    pub fn segment<'a>(&self, s: &'a Seg) -> Segment<'a> {
        Segment {
            ts_ns: s.ts,
            client: self.client,
            server: self.server,
            direction: s.dir,
            seq: s.seq,
            ack: s.ack,
            flags: TcpFlags(s.flags),
            payload_len: s.len,
            payload: &s.data,
        }
    }

    /// Feeds the segments (in the given order) and returns the records.
    pub fn run_order(&self, engine: &mut Engine, order: &[Seg]) -> Vec<Transaction> {
        let mut out = Vec::new();
        for s in order {
            engine.ingest(&self.segment(s), &mut out);
            engine.advance(s.ts, &mut out);
        }
        out
    }

    pub fn run(&self, engine: &mut Engine) -> Vec<Transaction> {
        self.run_order(engine, &self.segs)
    }
}

fn engine() -> Engine {
    Engine::new(EngineConfig::default())
}

const GET: &[u8] =
    b"GET /api/users/42?fields=name HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\n";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn one(out: &[Transaction]) -> &Transaction {
    assert_eq!(out.len(), 1, "{out:#?}");
    &out[0]
}

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
    assert_eq!(t.service, "port-8080");
    assert_eq!(t.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(t.client_id.as_deref(), Some("192.0.2.1"));
    assert_eq!(t.error, None);
    assert_eq!(e.active_connections(), vec![("port-8080".to_string(), 1)]);
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
fn out_of_order_segments_are_reordered() {
    let mut c = Conv::new(40002, 9).open();
    c.req(&GET[..20]).req(&GET[20..40]).req(&GET[40..]).resp(OK);
    let mut order = c.segs.clone();
    order.swap(2, 4);
    let mut e = engine();
    let out = c.run_order(&mut e, &order);
    assert_eq!(one(&out).path.as_deref(), Some("/api/users/42"));
    assert_eq!(e.stats().out_of_order_segments, 2);
    assert_eq!(e.stats().gap_bytes, 0);
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
    assert_eq!(e.stats().retransmit_bytes, GET.len() as u64);
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
    assert_eq!(e.stats().overlap_conflicts, 1);
}

#[rstest]
fn gap_in_head_marks_capture_gap_and_resyncs() {
    let mut c = Conv::new(40005, 9).open();
    c.req(&GET[..20]).req(&GET[20..]).resp(OK).req(GET).resp(OK);
    let mut order = c.segs.clone();
    order.remove(3); // the second half of the first head never arrives
    let mut e = engine();
    let out = c.run_order(&mut e, &order);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[0].error, Some(ErrorType::CaptureGap));
    assert_eq!(out[0].status, Some(200));
    assert_eq!(out[1].error, None);
    assert_eq!(out[1].path.as_deref(), Some("/api/users/42"));
    assert_eq!(e.stats().gap_bytes, (GET.len() - 20) as u64);
    assert!(e.stats().resyncs >= 1);
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
    assert_eq!(e.stats().gaps, 0);
    assert!(e.stats().uncopied_bytes > 0);
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
    assert_eq!(e.stats().gaps, 1);
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
    assert_eq!(e.stats().flows_closed, 1);
    assert_eq!(e.stats().flows_tracked, 0);
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
    assert_eq!(e.stats().resyncs, 0);
    assert_eq!(e.stats().parse_errors.iter().sum::<u64>(), 0);
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
    assert_eq!(e.stats().parse_errors_for(reason), 1);
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
        e.stats().parse_errors_for(ParseErrorReason::TooManyHeaders),
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
        e.stats().parse_errors_for(ParseErrorReason::HeadTooLarge),
        1
    );
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
    assert_eq!(e.stats().non_http_flows, 1);
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
    assert!(e.stats().resyncs >= 2);
}

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
    assert_eq!(e.stats().late_responses, 1);
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
    assert_eq!(e.stats().flows_tracked, 0);
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
    assert_eq!(e.stats().flows_tracked, 0);
}

#[rstest]
fn idle_flow_is_evicted() {
    let mut c = Conv::new(40029, 9).open();
    c.req(GET).resp(OK);
    let mut e = engine();
    let mut out = c.run(&mut e);
    e.advance(T0 + 301_000 * MS, &mut out);
    assert_eq!(e.stats().flows_evicted_idle, 1);
    assert_eq!(e.stats().flows_tracked, 0);
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
    assert_eq!(e.stats().flows_evicted_budget, 1);
    assert_eq!(e.stats().flows_tracked, 1);
    assert!(e.stats().buffered_bytes <= 4096);
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
        (e.stats().flows_tracked, e.stats().flows_evicted_budget),
        (2, 1)
    );
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
    assert_eq!(e.stats().gap_bytes, 0);
}

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
#[case::xff_untrusted(&b"X-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n"[..], false, "192.0.2.1")]
#[case::xff_trusted(&b"X-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n"[..], true, "203.0.113.9")]
fn client_id_is_derived(#[case] header: &[u8], #[case] trust_xff: bool, #[case] want: &str) {
    let mut cfg = EngineConfig::default();
    cfg.identity.trust_forwarded_for = trust_xff;
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

#[rstest]
fn service_names_map_ports() {
    let mut cfg = EngineConfig::default();
    cfg.service_names.insert(8080, "users".into());
    let mut c = Conv::new(40036, 9).open();
    c.req(GET).resp(OK);
    let out = c.run(&mut Engine::new(cfg));
    assert_eq!(one(&out).service, "users");
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
    assert_eq!(e.stats().flows_opened, 2);
}

#[rstest]
fn lost_request_segment_is_detected_from_the_servers_ack() {
    let mut c = Conv::new(40038, 9).open();
    c.req(GET).resp(OK).req(GET).resp(OK);
    let mut order = c.segs.clone();
    order.remove(4); // second request never captured; its response acknowledges it
    let mut e = engine();
    let out = c.run_order(&mut e, &order);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[0].error, None);
    assert_eq!(
        (out[1].status, out[1].error),
        (Some(200), Some(ErrorType::CaptureGap))
    );
    assert_eq!(e.stats().gap_bytes, GET.len() as u64);
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
    assert_eq!(e.stats().non_http_flows, 1);
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
    assert_eq!(e.stats().flows_opened, 0);
}
