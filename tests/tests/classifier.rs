//! The agent's kernel classifiers under BPF_PROG_TEST_RUN with synthetic frames (root): what
//! becomes a record, what is copied (the head-only policy), what is counted, and that every
//! packet passes. Without root these tests fail loudly; they never skip.

use agent_common::{Counter, copy_reason, direction, hook, programs};
use apitap_e2e::bpf::{Classifier, TC_ACT_UNSPEC, options};
use apitap_e2e::frames::{self, ACK, Ext, FIN, PSH, SYN, Tcp};
use apitap_e2e::require_root;
use std::net::Ipv6Addr;

const CLI: [u8; 4] = [192, 0, 2, 2];
const SRV: [u8; 4] = [192, 0, 2, 1];

fn req(payload: &[u8]) -> Tcp<'_> {
    Tcp {
        sport: 40000,
        dport: 80,
        seq: 1000,
        ack: 2000,
        flags: ACK | PSH,
        payload,
    }
}

fn v6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().expect("literal").octets()
}

#[test]
fn ipv4_request_to_watched_port_becomes_one_event() {
    require_root();
    let mut c = Classifier::load(4096, &[80]).expect("load");
    let body = b"GET /api/users/1 HTTP/1.1\r\nHost: x\r\n\r\n";
    let frame = frames::ipv4_tcp(CLI, SRV, &req(body), None);
    assert_eq!(
        c.run(programs::TC_INGRESS, &frame).expect("run"),
        TC_ACT_UNSPEC
    );
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    let (ev, payload) = &evs[0];
    assert_eq!(ev.direction, direction::TO_SERVER);
    assert_eq!(ev.hook, hook::INGRESS);
    assert_eq!(ev.family, 4);
    assert_eq!(&ev.saddr[..4], &CLI);
    assert_eq!(&ev.daddr[..4], &SRV);
    assert_eq!(
        (ev.sport, ev.dport, ev.seq, ev.ack),
        (40000, 80, 1000, 2000)
    );
    assert_eq!(ev.tcp_flags, ACK | PSH);
    assert_eq!(ev.payload_len as usize, body.len());
    assert_eq!(payload.as_slice(), body);
    assert_eq!(c.counter(Counter::SegmentsMatched), 1);
    assert_eq!(c.counter(Counter::PayloadBytes), body.len() as u64);
    assert_eq!(c.counter(Counter::CopiedBytes), body.len() as u64);
    assert_eq!(c.counter(Counter::Errors), 0);
    assert_eq!(c.counter(Counter::EventsLost), 0);
}

#[test]
fn ipv6_response_from_watched_port_is_to_client_at_egress() {
    require_root();
    let mut c = Classifier::load(4096, &[8080]).expect("load");
    let body = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let t = Tcp {
        sport: 8080,
        dport: 51000,
        seq: 7,
        ack: 9,
        flags: ACK | PSH,
        payload: body,
    };
    let frame = frames::ipv6_tcp(v6("2001:db8::1"), v6("2001:db8::2"), &t);
    assert_eq!(
        c.run(programs::TC_EGRESS, &frame).expect("run"),
        TC_ACT_UNSPEC
    );
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    let (ev, payload) = &evs[0];
    assert_eq!(
        (ev.direction, ev.hook, ev.family),
        (direction::TO_CLIENT, hook::EGRESS, 6)
    );
    assert_eq!(ev.saddr, v6("2001:db8::1"));
    assert_eq!(ev.daddr, v6("2001:db8::2"));
    assert_eq!(payload.as_slice(), body);
}

#[test]
fn a_response_without_a_departure_time_is_timed_by_the_clock() {
    require_root();
    let mut c = Classifier::load(4096, &[8080]).expect("load");
    let resp = Tcp {
        sport: 8080,
        dport: 51000,
        seq: 7,
        ack: 9,
        flags: ACK | PSH,
        payload: b"HTTP/1.1 204 No Content\r\n\r\n",
    };
    let frame = frames::ipv4_tcp(SRV, CLI, &resp, None);
    // A receive time on the realtime clock, as a NIC's packets may carry: never a departure
    // time, whatever its value. (BPF_PROG_TEST_RUN accepts no other kind, so the departure
    // path is checked live, in capture's lo and veth tests.)
    let realtime = 1_700_000_000_000_000_000u64;
    let before = apitap::capture::monotonic_ns();
    for prog in [programs::TC_INGRESS, programs::TC_EGRESS] {
        assert_eq!(
            c.run_stamped(prog, &frame, realtime).expect("run"),
            TC_ACT_UNSPEC
        );
    }
    let after = apitap::capture::monotonic_ns();
    let evs = c.events();
    assert_eq!(evs.len(), 2);
    for (ev, _) in &evs {
        assert_eq!(ev.direction, direction::TO_CLIENT);
        assert!(
            (before..=after).contains(&ev.ts_ns),
            "{} not read from the clock between {before} and {after}",
            ev.ts_ns
        );
    }
    assert_eq!(c.counter(Counter::StackStamps), 0);
}

#[test]
fn udp_and_unwatched_ports_pass_without_events() {
    require_root();
    let mut c = Classifier::load(4096, &[80]).expect("load");
    let udp = frames::ipv4_udp(CLI, SRV, 5353, 80, b"not tcp");
    let other = Tcp {
        dport: 443,
        ..req(b"GET / HTTP/1.1\r\n\r\n")
    };
    let unwatched = frames::ipv4_tcp(CLI, SRV, &other, None);
    for frame in [&udp, &unwatched] {
        assert_eq!(
            c.run(programs::TC_INGRESS, frame).expect("run"),
            TC_ACT_UNSPEC
        );
    }
    assert!(c.events().is_empty());
    assert_eq!(c.counter(Counter::PacketsSeen), 2);
    assert_eq!(c.counter(Counter::SegmentsMatched), 0);
    assert_eq!(c.counter(Counter::Errors), 0);
}

#[test]
fn truncated_headers_are_counted_as_errors_and_passed() {
    require_root();
    let mut c = Classifier::load(4096, &[80]).expect("load");
    let full = frames::ipv4_tcp(CLI, SRV, &req(b"GET / HTTP/1.1\r\n\r\n"), None);
    // The frame ends inside the TCP header.
    let cut = &full[..14 + 20 + 8];
    // The IPv4 header claims 60 bytes (IHL 15), so the TCP header lies past the frame's end.
    let mut long_ihl = frames::ipv4_tcp(CLI, SRV, &req(b""), None);
    long_ihl[14] = 0x4f;
    for frame in [cut, &long_ihl[..]] {
        assert_eq!(
            c.run(programs::TC_INGRESS, frame).expect("run"),
            TC_ACT_UNSPEC
        );
    }
    assert!(c.events().is_empty());
    assert_eq!(c.counter(Counter::Errors), 2);
    assert_eq!(c.counter(Counter::SegmentsMatched), 0);
}

#[test]
fn payload_longer_than_snap_length_is_cut_with_true_length_kept() {
    require_root();
    let mut c = Classifier::load(1024, &[80]).expect("load");
    let body = vec![b'a'; 3000];
    let frame = frames::ipv4_tcp(CLI, SRV, &req(&body), None);
    c.run(programs::TC_INGRESS, &frame).expect("run");
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].0.payload_len, 3000);
    assert_eq!(evs[0].0.copied_len, 1024);
    assert_eq!(evs[0].0.copy_reason, copy_reason::NEW_FLOW);
    assert_eq!(evs[0].1, vec![b'a'; 1024]);
    assert_eq!(c.counter(Counter::PayloadBytes), 3000);
    assert_eq!(c.counter(Counter::CopiedBytes), 1024);
}

#[test]
fn ip_length_beyond_the_frame_is_reported_as_true_length() {
    require_root();
    let mut c = Classifier::load(4096, &[80]).expect("load");
    // A GSO-style super-packet: the IP header announces 5000 payload bytes, 100 are present.
    let body = vec![b'b'; 100];
    let frame = frames::ipv4_tcp(CLI, SRV, &req(&body), Some(20 + 20 + 5000));
    c.run(programs::TC_INGRESS, &frame).expect("run");
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].0.payload_len, 5000);
    assert_eq!(evs[0].0.copied_len, 100);
}

#[test]
fn pure_ack_is_skipped_but_syn_and_fin_are_kept() {
    require_root();
    let mut c = Classifier::load(4096, &[80]).expect("load");
    for flags in [ACK, SYN, ACK | FIN] {
        let t = Tcp { flags, ..req(b"") };
        c.run(programs::TC_INGRESS, &frames::ipv4_tcp(CLI, SRV, &t, None))
            .expect("run");
    }
    let evs = c.events();
    assert_eq!(
        evs.iter().map(|(e, _)| e.tcp_flags).collect::<Vec<_>>(),
        vec![SYN, ACK | FIN]
    );
    assert!(evs.iter().all(|(e, p)| e.payload_len == 0 && p.is_empty()));
    assert_eq!(c.counter(Counter::EmptySkipped), 1);
    assert_eq!(c.counter(Counter::SegmentsMatched), 2);
}

#[test]
fn full_ring_counts_lost_events_and_still_passes_packets() {
    require_root();
    // One chunk of ring (128 KiB): 1,072-byte records (the first data of 200 connections, all
    // copied) stop fitting after 122.
    let mut c = Classifier::load_with_ring(4096, &[80], 128 << 10).expect("load");
    let body = vec![b'c'; 1000];
    for i in 0..200 {
        let t = Tcp {
            sport: 40000 + i,
            ..req(&body)
        };
        let frame = frames::ipv4_tcp(CLI, SRV, &t, None);
        assert_eq!(
            c.run(programs::TC_INGRESS, &frame).expect("run"),
            TC_ACT_UNSPEC
        );
    }
    let delivered = c.events().len() as u64;
    let fits = (128 << 10) / agent_common::ring::record_footprint(1000);
    assert_eq!(delivered, fits, "{delivered} of 200 delivered");
    assert_eq!(c.counter(Counter::EventsLost), 200 - delivered);
    assert_eq!(c.counter(Counter::SegmentsMatched), 200);
    assert_eq!(c.counter(Counter::CopiedBytes), delivered * 1000);
}

/// Runs `frame` and returns the one record it made: (copy reason, copied bytes, true length).
fn one(c: &mut Classifier, prog: &str, frame: &[u8]) -> (u8, usize, u32) {
    assert_eq!(c.run(prog, frame).expect("run"), TC_ACT_UNSPEC);
    let evs = c.events();
    assert_eq!(evs.len(), 1, "one record per segment");
    let (ev, payload) = &evs[0];
    assert_eq!(ev.copied_len as usize, payload.len());
    (ev.copy_reason, payload.len(), ev.payload_len)
}

#[test]
fn a_burst_is_copied_at_its_start_and_continued_with_length_only_records() {
    require_root();
    let mut c = Classifier::load(4096, &[80]).expect("load");
    let body = vec![b'x'; 1400];
    let small = vec![b's'; 100];
    let resp = |seq: u32, ack: u32, payload: &'static [u8]| {
        frames::ipv4_tcp(
            SRV,
            CLI,
            &Tcp {
                sport: 80,
                dport: 40000,
                seq,
                ack,
                flags: ACK,
                payload,
            },
            None,
        )
    };
    let body: &'static [u8] = body.leak();
    let small: &'static [u8] = small.leak();
    let p = programs::TC_EGRESS;
    // First data of this flow direction.
    assert_eq!(
        one(&mut c, p, &resp(1000, 500, body)),
        (copy_reason::NEW_FLOW, 1400, 1400)
    );
    // Contiguous, same acknowledgement: the body goes on.
    assert_eq!(
        one(&mut c, p, &resp(2400, 500, body)),
        (copy_reason::NONE, 0, 1400)
    );
    assert_eq!(
        one(&mut c, p, &resp(3800, 500, body)),
        (copy_reason::NONE, 0, 1400)
    );
    // A retransmit, or a segment arriving after a later one (loopback and multi-queue NICs
    // reorder across CPUs), belongs to the same burst: its acknowledgement number says so.
    assert_eq!(
        one(&mut c, p, &resp(2400, 500, body)),
        (copy_reason::NONE, 0, 1400)
    );
    assert_eq!(
        one(&mut c, p, &resp(6600, 500, body)),
        (copy_reason::NONE, 0, 1400)
    );
    assert_eq!(
        one(&mut c, p, &resp(5200, 500, body)),
        (copy_reason::NONE, 0, 1400)
    );
    // The client sent data (the acknowledgement moved): a new message burst.
    assert_eq!(
        one(&mut c, p, &resp(8000, 600, body)),
        (copy_reason::BURST, 1400, 1400)
    );
    // Small segments are always copied and leave the burst state alone.
    assert_eq!(
        one(&mut c, p, &resp(9400, 600, small)),
        (copy_reason::SMALL, 100, 100)
    );
    assert_eq!(
        one(&mut c, p, &resp(9500, 600, body)),
        (copy_reason::NONE, 0, 1400)
    );
    // The other direction of the connection has its own state.
    let request = frames::ipv4_tcp(CLI, SRV, &req(body), None);
    assert_eq!(
        one(&mut c, programs::TC_INGRESS, &request),
        (copy_reason::NEW_FLOW, 1400, 1400)
    );
    assert_eq!(c.counter(Counter::LengthOnly), 6);
    assert_eq!(c.counter(Counter::CopiedNewFlow), 2);
    assert_eq!(c.counter(Counter::CopiedBurst), 1);
    assert_eq!(c.counter(Counter::CopiedSmall), 1);
    assert_eq!(c.counter(Counter::SegmentsMatched), 10);
    assert_eq!(c.counter(Counter::PayloadBytes), 9 * 1400 + 100);
    assert_eq!(c.counter(Counter::CopiedBytes), 3 * 1400 + 100);
}

#[test]
fn an_http2_connection_preface_has_both_directions_copied_in_full() {
    require_root();
    let mut c = Classifier::load(4096, &[80]).expect("load");
    let tcp = |sport: u16, dport: u16, seq: u32, ack: u32, payload: &'static [u8]| Tcp {
        sport,
        dport,
        seq,
        ack,
        flags: ACK | PSH,
        payload,
    };
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend_from_slice(&[b'h'; 600]);
    let preface: &'static [u8] = preface.leak();
    let frames: &'static [u8] = vec![b'f'; 1400].leak();
    let (i, e) = (programs::TC_INGRESS, programs::TC_EGRESS);
    // The client's first bytes: copied as the first data of their direction, and they mark
    // the connection.
    assert_eq!(
        one(
            &mut c,
            i,
            &frames::ipv4_tcp(CLI, SRV, &tcp(40000, 80, 1, 1, preface), None)
        ),
        (copy_reason::NEW_FLOW, preface.len(), preface.len() as u32)
    );
    // Every later segment of both directions is copied, also inside a burst (same
    // acknowledgement), where an HTTP/1.x flow would get length-only records.
    for seq in [1, 1401, 2801] {
        let resp = frames::ipv4_tcp(SRV, CLI, &tcp(80, 40000, seq, 625, frames), None);
        assert_eq!(one(&mut c, e, &resp), (copy_reason::H2, 1400, 1400));
    }
    let more = frames::ipv4_tcp(CLI, SRV, &tcp(40000, 80, 625, 1, frames), None);
    assert_eq!(one(&mut c, i, &more), (copy_reason::H2, 1400, 1400));
    assert_eq!(c.counter(Counter::CopiedH2), 4);
    assert_eq!(c.counter(Counter::LengthOnly), 0);
    // An HTTP/1.x connection beside it keeps heads only.
    let get = frames::ipv4_tcp(CLI, SRV, &tcp(40001, 80, 1, 1, frames), None);
    assert_eq!(one(&mut c, i, &get), (copy_reason::NEW_FLOW, 1400, 1400));
    let get = frames::ipv4_tcp(CLI, SRV, &tcp(40001, 80, 1401, 1, frames), None);
    assert_eq!(one(&mut c, i, &get), (copy_reason::NONE, 0, 1400));
}

#[test]
fn ip_fragments_are_counted_and_not_captured() {
    require_root();
    let mut c = Classifier::load(4096, &[80]).expect("load");
    let t = req(b"GET / HTTP/1.1\r\n\r\n");
    let first = frames::ipv4_tcp_fragment(CLI, SRV, &t, 0x2000);
    let later = frames::ipv4_tcp_fragment(CLI, SRV, &t, 185);
    let v6_frag = frames::ipv6_tcp_ext(
        v6("2001:db8::2"),
        v6("2001:db8::1"),
        &t,
        &[Ext::fragment(0x0001)],
    );
    for frame in [&first, &later, &v6_frag] {
        assert_eq!(
            c.run(programs::TC_INGRESS, frame).expect("run"),
            TC_ACT_UNSPEC
        );
    }
    assert!(c.events().is_empty());
    assert_eq!(c.counter(Counter::Fragments), 3);
    assert_eq!(c.counter(Counter::Errors), 0);
    assert_eq!(c.counter(Counter::SegmentsMatched), 0);
}

#[test]
fn ipv6_extension_headers_are_walked_up_to_a_bound() {
    require_root();
    let mut c = Classifier::load(4096, &[80]).expect("load");
    let body = b"GET /v6 HTTP/1.1\r\n\r\n";
    let t = req(body);
    let (src, dst) = (v6("2001:db8::2"), v6("2001:db8::1"));
    let walked = frames::ipv6_tcp_ext(
        src,
        dst,
        &t,
        &[Ext::options(0, 1), Ext::options(43, 2), Ext::options(60, 1)],
    );
    c.run(programs::TC_INGRESS, &walked).expect("run");
    let evs = c.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].0.payload_len as usize, body.len());
    assert_eq!(evs[0].1.as_slice(), body);
    assert_eq!((evs[0].0.sport, evs[0].0.dport), (40000, 80));
    // More extension headers than the walk follows: counted as an error, passed.
    let deep: Vec<Ext> = (0..5).map(|_| Ext::options(60, 1)).collect();
    let too_deep = frames::ipv6_tcp_ext(src, dst, &t, &deep);
    assert_eq!(
        c.run(programs::TC_INGRESS, &too_deep).expect("run"),
        TC_ACT_UNSPEC
    );
    assert!(c.events().is_empty());
    assert_eq!(c.counter(Counter::Errors), 1);
}

#[test]
fn a_ring_past_half_full_wakes_the_reader_and_an_emptier_one_does_not() {
    require_root();
    // 128 KiB ring: fill level checked every 16 KiB written, wake-up past 64 KiB pending.
    let mut c = Classifier::load_with(
        apitap::capture::loader::LoadOptions {
            ring_bytes: 128 << 10,
            ..options(4096)
        },
        &[80],
    )
    .expect("load");
    let body = vec![b'w'; 500];
    let frame = frames::ipv4_tcp(CLI, SRV, &req(&body), None);
    // 500 payload bytes are below the small-copy length: every record is 72 + 500 bytes,
    // 576 with its padding.
    for _ in 0..96 {
        c.run(programs::TC_INGRESS, &frame).expect("run");
    }
    assert_eq!(c.counter(Counter::Wakeups), 0, "54 KiB pending: no wake-up");
    for _ in 0..48 {
        c.run(programs::TC_INGRESS, &frame).expect("run");
    }
    let wakeups = c.counter(Counter::Wakeups);
    assert!(
        (1..=3).contains(&wakeups),
        "81 KiB pending: woken once per 16 KiB check past half, got {wakeups}"
    );
    assert_eq!(c.events().len(), 144);
    assert_eq!(c.counter(Counter::RecordBytes), 144 * 576);
}

#[test]
fn per_cpu_rings_are_read_in_place_and_merged_in_time_order() {
    use apitap::capture::{SegmentSource, UserCounters};
    use apitap_e2e::bpf::pin_to_cpu;
    use std::sync::Arc;
    require_root();
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(online >= 2, "this test needs two CPUs, found {online}");
    let (c, rings) = Classifier::load_rings(
        apitap::capture::loader::LoadOptions {
            ring_bytes: 128 << 10,
            ..options(4096)
        },
        &[80],
    )
    .expect("load");
    let counters = Arc::new(UserCounters::default());
    let mut source = SegmentSource::new(rings, None, counters.clone(), 0).expect("map rings");
    // Alternate CPUs (so rings) segment by segment; 600 records of 576 bytes wrap each 128 KiB
    // ring more than once, drained every 40 records.
    let mut want = Vec::new();
    let mut got = Vec::new();
    for i in 0..600u32 {
        pin_to_cpu((i % 2) as usize).expect("pin");
        let body = vec![b'a' + (i % 26) as u8; 500];
        let t = Tcp {
            seq: 1000 + i * 500,
            ..req(&body)
        };
        c.run(programs::TC_INGRESS, &frames::ipv4_tcp(CLI, SRV, &t, None))
            .expect("run");
        want.push((t.seq, body[0]));
        if i % 40 == 39 {
            std::thread::sleep(std::time::Duration::from_millis(1));
            source.drain(usize::MAX, false, |seg| {
                assert_eq!(seg.payload.len(), 500);
                assert!(seg.payload.iter().all(|b| *b == seg.payload[0]));
                got.push((seg.seq, seg.payload[0]));
            });
        }
    }
    pin_to_cpu(0).expect("pin");
    source.drain(usize::MAX, true, |seg| got.push((seg.seq, seg.payload[0])));
    assert_eq!(
        got, want,
        "every record once, in the order the CPUs wrote them"
    );
    assert_eq!(
        counters
            .events_read
            .load(std::sync::atomic::Ordering::Relaxed),
        600
    );
    assert_eq!(c.counter(Counter::EventsLost), 0);
}
