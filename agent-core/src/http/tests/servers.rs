//! Server resolution and the copies of a flow seen on several interfaces: each flow is resolved
//! once, read from the first interface it was seen on, and skipped (and counted) when its
//! server is excluded or not on this host.

use super::*;
use crate::server::{Attribution, ResolveServer, Server, Skip};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Resolves the test server to a pod, counting the calls; `skip` makes it refuse instead.
struct Pods {
    calls: Arc<AtomicUsize>,
    skip: Option<Skip>,
}

impl ResolveServer for Pods {
    fn resolve(&mut self, server: SocketAddr) -> Result<Server, Skip> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(skip) = self.skip {
            return Err(skip);
        }
        assert_eq!(server, SocketAddr::from(([192, 0, 2, 2], 8080)));
        Ok(Server {
            service: "checkout".into(),
            attribution: Some(Arc::new(Attribution {
                namespace: "shop".into(),
                pod: Some("checkout-0".into()),
                ..Default::default()
            })),
        })
    }
}

fn resolving(skip: Option<Skip>) -> (Engine, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut e = engine();
    e.set_resolver(Box::new(Pods {
        calls: calls.clone(),
        skip,
    }));
    (e, calls)
}

/// Two keep-alive requests on one connection.
fn conversation() -> Conv {
    let mut c = Conv::new(40100, 77).open();
    c.req(GET)
        .resp(OK)
        .req(GET)
        .resp(OK)
        .fin(Direction::ToServer)
        .fin(Direction::ToClient);
    c
}

#[rstest]
fn a_flow_is_resolved_once_and_its_records_share_the_attribution() {
    let (mut e, calls) = resolving(None);
    let out = conversation().run(&mut e);
    assert_eq!(out.len(), 2);
    assert_eq!(calls.load(Ordering::Relaxed), 1, "resolved once per flow");
    for t in &out {
        assert_eq!(&*t.service, "checkout");
        assert_eq!(t.namespace(), "shop");
    }
    let (a, b) = (
        out[0].attribution.as_ref().expect("attributed"),
        out[1].attribution.as_ref().expect("attributed"),
    );
    assert!(Arc::ptr_eq(a, b), "shared, not copied per request");
    assert_eq!(
        e.active_connections(),
        Vec::<(String, String, u64)>::new(),
        "closed"
    );
}

#[rstest]
fn every_segment_seen_on_two_interfaces_is_read_once_from_the_first() {
    let c = conversation();
    let (mut e, _) = resolving(None);
    let mut out = Vec::new();
    // Each segment crosses the client's veth (ifindex 7) and then the server's (ifindex 9).
    for s in &c.segs {
        for ifindex in [7, 9] {
            let seg = Segment {
                ifindex,
                ..c.segment(s)
            };
            e.ingest(&seg, &mut out);
        }
    }
    assert_eq!(out.len(), 2, "{out:#?}");
    let st = &e.stats().flows;
    // The last FIN closes the flow at its first copy; its second copy is a bare FIN of a
    // connection no longer tracked, which carries nothing.
    assert_eq!(st.duplicate_segments, c.segs.len() as u64 - 1);
    assert_eq!(st.segments, 2 * c.segs.len() as u64);
    let payload: u64 = c.segs.iter().map(|s| u64::from(s.len)).sum();
    assert_eq!(st.payload_bytes, payload, "bytes counted once");
}

#[rstest]
fn a_late_copy_after_close_is_a_duplicate_on_another_interface_and_a_retransmit_on_its_own() {
    let c = conversation();
    let (mut e, _) = resolving(None);
    let mut out = Vec::new();
    for s in &c.segs {
        let seg = Segment {
            ifindex: 7,
            ..c.segment(s)
        };
        e.ingest(&seg, &mut out);
    }
    assert_eq!(out.len(), 2);
    let last_response = c
        .segs
        .iter()
        .rfind(|s| s.dir == Direction::ToClient && s.len > 0)
        .expect("a response");
    // The copy from the server's veth arrives after both FINs closed the flow.
    let copy = Segment {
        ifindex: 9,
        ..c.segment(last_response)
    };
    e.ingest(&copy, &mut out);
    let retransmit_before = e.stats().reassembly.retransmit_bytes;
    assert_eq!(e.stats().flows.duplicate_segments, 1);
    // The same bytes again on the interface the flow was read from: a retransmission.
    let again = Segment {
        ifindex: 7,
        ..c.segment(last_response)
    };
    e.ingest(&again, &mut out);
    assert_eq!(e.stats().flows.duplicate_segments, 1);
    assert_eq!(
        e.stats().reassembly.retransmit_bytes,
        retransmit_before + u64::from(last_response.len)
    );
    assert_eq!(out.len(), 2, "no flow reopened, no spurious record");
    assert_eq!(e.stats().flows.opened, 1);
}

#[rstest]
#[case::excluded(Skip::Excluded)]
#[case::not_local(Skip::NotLocal)]
fn skipped_servers_open_no_flow_and_are_counted(#[case] skip: Skip) {
    let c = conversation();
    let (mut e, _) = resolving(Some(skip));
    let out = c.run(&mut e);
    assert!(out.is_empty(), "{out:#?}");
    let st = &e.stats().flows;
    assert_eq!(st.opened, 0);
    assert_eq!(st.payload_bytes, 0);
    let skipped = match skip {
        Skip::Excluded => st.segments_excluded,
        Skip::NotLocal => st.segments_not_local,
    };
    // Every segment but the bare ACKs of the untracked connection asks again.
    assert!(skipped > 0 && skipped <= c.segs.len() as u64, "{skipped}");
    assert_eq!(st.segments_excluded + st.segments_not_local, skipped);
}
