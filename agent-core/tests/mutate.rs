//! What mirror ports and busy capture hosts do to a capture, applied to the real captures by
//! the mutator (agent_core::pcap::synth::mutate), and what the engine must make of it:
//! - the mutator is deterministic, keeps time order, does what it reports, and makes the
//!   reordering mirror ports make (the peer's ACK ahead of the data); a few results are kept as
//!   files in tests/fixtures/wire/ (`UPDATE_GOLDEN=1` rewrites them);
//! - property: any reordering within the window and any duplication leave every transaction
//!   as it was (timing aside), with no gap (`PROPTEST_CASES` sets the number of cases);
//! - with loss, exactly the requests that lost bytes are marked `capture_gap` and the others
//!   are unchanged (`LOSS_SEEDS` sets the number of seeds; 5-40 % of segments dropped).

mod support;

use std::sync::LazyLock;

use agent_core::engine::EngineConfig;
use agent_core::pcap::synth::Capture;
use agent_core::pcap::synth::mutate::{Mutation, mutate};
use agent_core::{ErrorType, Transaction};
use proptest::prelude::*;
use support::{
    Way, acks_ahead_of_data, captures, extents, fixture_capture, fixtures_dir, replay_bytes,
    replay_engine, stem, streams, wire_dir,
};

/// Kept as files: (fixture, name, mutation).
pub const KEPT: &[(&str, &str, Mutation)] = &[
    ("keepalive", "reorder", Mutation::reorder(3)),
    ("ab-k", "reorder", Mutation::reorder(1)),
    ("pipelined", "reorder", Mutation::reorder(6)),
    ("expect-100", "reorder", Mutation::reorder(7)),
    ("ab", "loss", Mutation::loss(4, 10)),
    ("keepalive", "loss", Mutation::loss(7, 20)),
];

#[test]
fn the_kept_mutated_fixtures_are_what_the_mutator_makes() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for (name, what, m) in KEPT {
        let original = fixture_capture(&fixtures_dir().join(format!("{name}.pcap")));
        let mutated = mutate(&original, m);
        let bytes = mutated.capture.to_pcap();
        let file = wire_dir().join(format!("{name}.{what}.pcap"));
        if update {
            std::fs::create_dir_all(wire_dir()).expect("tests/fixtures/wire");
            std::fs::write(&file, &bytes).expect("write fixture");
            continue;
        }
        if std::fs::read(&file).unwrap_or_default() != bytes {
            failures.push(format!(
                "{} differs (UPDATE_GOLDEN=1 rewrites)",
                file.display()
            ));
        }
        let c = &mutated.capture;
        match *what {
            "reorder" => {
                if mutated.moved == 0 || mutated.duplicated == 0 || mutated.retransmitted == 0 {
                    failures.push(format!(
                        "{}: moved {}, duplicated {}, retransmitted {}: too little",
                        file.display(),
                        mutated.moved,
                        mutated.duplicated,
                        mutated.retransmitted
                    ));
                }
                if acks_ahead_of_data(c) == 0 {
                    failures.push(format!("{}: no ACK runs ahead of its data", file.display()));
                }
            }
            _ if mutated.dropped.is_empty() => {
                failures.push(format!("{}: nothing dropped", file.display()));
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn mutations_keep_time_order_and_count_what_they_did() {
    for path in captures() {
        let original = fixture_capture(&path);
        for seed in 0..20 {
            for m in [Mutation::reorder(seed), Mutation::loss(seed, 15)] {
                let out = mutate(&original, &m);
                let c = &out.capture;
                assert!(
                    c.packets.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
                    "{} {m:?}: time goes back",
                    stem(&path)
                );
                assert_eq!(
                    c.packets.len() + out.dropped.len(),
                    original.packets.len() + out.duplicated + out.retransmitted,
                    "{} {m:?}",
                    stem(&path)
                );
                assert_eq!(mutate(&original, &m).capture, *c, "deterministic");
            }
        }
    }
}

/// A transaction without its timing (which reordering changes: a moved segment takes the time
/// of the packet it now follows), as a sortable key.
fn untimed(t: &Transaction) -> String {
    let mut t = t.clone();
    (t.start_ns, t.duration_ns, t.ttfb_ns) = (0, None, None);
    format!("{t:?}")
}

fn untimed_all(txs: &[Transaction]) -> Vec<String> {
    let mut v: Vec<String> = txs.iter().map(untimed).collect();
    v.sort();
    v
}

/// Every real capture, read once, with its replayed transactions.
static ORIGINALS: LazyLock<Vec<(String, Capture, Vec<Transaction>)>> = LazyLock::new(|| {
    captures()
        .iter()
        .map(|path| {
            let c = fixture_capture(path);
            let (txs, _) = replay_bytes(&c.to_pcap());
            (stem(path), c, txs)
        })
        .collect()
});

/// The engine's defaults, with a flow budget above what 8 packets can displace in these
/// captures (lo's offloaded segments reach 47 KiB; a parked copy costs its full size here,
/// where live capture copies at most the snap length).
fn within_the_window() -> EngineConfig {
    EngineConfig {
        flow_budget_bytes: 1 << 20,
        ..EngineConfig::default()
    }
}

/// Past the flow budget the wait ends early, counted: the request parked bytes waited for is
/// declared lost and its transaction marked, nothing else changes.
#[test]
fn reordering_past_the_flow_budget_is_a_counted_gap() {
    let (_, original, want) = ORIGINALS
        .iter()
        .find(|(name, ..)| name == "large-body")
        .expect("large-body fixture");
    let m = Mutation {
        seed: 17_435_024_284_463_579_179,
        max_shift: 8,
        shift_percent: 39,
        duplicate_percent: 38,
        retransmit_percent: 3,
        drop_percent: 0,
    };
    let bytes = mutate(original, &m).capture.to_pcap();
    let (got, stats) = replay_engine(&bytes, EngineConfig::default());
    assert_eq!(stats.reassembly.reorder_limit, 1, "{:?}", stats.reassembly);
    assert_eq!(got.len(), want.len());
    assert_eq!(got[0].error, Some(ErrorType::CaptureGap));
    assert_eq!(got[0].status, want[0].status);
    let (got, stats) = replay_engine(&bytes, within_the_window());
    assert_eq!(untimed_all(&got), untimed_all(want));
    assert_eq!(stats.gaps(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any reordering within the window (one direction's segments moved up to 8 packets later,
    /// so the peer's ACK comes first) and any duplication leave the transactions as they were,
    /// with no gap and no reorder window expiring.
    #[test]
    fn reordering_and_duplication_within_the_window_change_no_transaction(
        which in 0usize..64,
        seed in any::<u64>(),
        max_shift in 1usize..=8,
        shift_percent in 0u32..=100,
        duplicate_percent in 0u32..=50,
        retransmit_percent in 0u32..=50,
    ) {
        let (name, original, want) = &ORIGINALS[which % ORIGINALS.len()];
        let m = Mutation { seed, max_shift, shift_percent, duplicate_percent, retransmit_percent, drop_percent: 0 };
        let mutated = mutate(original, &m);
        let (got, stats) = replay_engine(&mutated.capture.to_pcap(), within_the_window());
        prop_assert_eq!(untimed_all(&got), untimed_all(want), "{} {:?}", name, m);
        let r = &stats.reassembly;
        prop_assert_eq!(
            (stats.gaps(), r.reorder_window_expired, r.reorder_limit),
            (0, 0, 0),
            "{} {:?}: {:?}", name, m, r
        );
        prop_assert_eq!(r.reorder_recovered, r.reorder_evidence, "{} {:?}", name, m);
    }
}

/// With real loss, the requests whose bytes (request or response) were dropped are exactly the
/// ones marked `capture_gap`, and every other transaction is unchanged, timing included.
///
/// What no capture can tell is not demanded: an exchange that lost both its request head and
/// its response head left nothing to name it (it may or may not be reported); after a response of a pipelined
/// batch (requests sent together, one ACK) was lost whole, which response answers which of the
/// rest is unknowable, so those may be marked `capture_gap` too; and so may a response whose
/// end was only known from the next response's start (chunk framing not copied) when that
/// start was dropped. A transaction reported clean must always be exactly the original.
#[test]
fn with_loss_exactly_the_affected_requests_are_capture_gaps() {
    let mut failures = Vec::new();
    let mut affected_total = 0;
    for (name, original, want) in ORIGINALS.iter() {
        let extents = extents(original, want);
        let streams = streams(original);
        let seeds: u64 = std::env::var("LOSS_SEEDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(400);
        for seed in 0..seeds {
            let m = Mutation::loss(seed, 5 + (seed % 8) as u32 * 5);
            let mutated = mutate(original, &m);
            // Dropped bytes per direction, as stream offsets.
            let lost: Vec<(Way, std::ops::Range<usize>)> = mutated
                .dropped
                .iter()
                .map(|d| {
                    let start = streams[&(d.src, d.dst)].0;
                    let at = d.seq.wrapping_sub(start) as usize;
                    ((d.src, d.dst), at..at + d.len as usize)
                })
                .collect();
            let hit = |way: Way, r: &std::ops::Range<usize>| {
                lost.iter()
                    .any(|(w, l)| *w == way && l.start < r.end && r.start < l.end)
            };
            let whole = |way: Way, r: &std::ops::Range<usize>| {
                r.is_empty()
                    || (r.start..r.end)
                        .all(|b| lost.iter().any(|(w, l)| *w == way && l.contains(&b)))
            };
            let (mut must, mut may) = (0, 0);
            let (mut intact, mut unsure) = (Vec::new(), Vec::new());
            for (i, (t, x)) in want.iter().zip(&extents).enumerate() {
                let (c, s) = (t.client.expect("client"), t.server.expect("server"));
                let same_batch_lost = want.iter().zip(&extents).take(i).any(|(u, y)| {
                    u.client == t.client
                        && y.ack.is_some()
                        && y.ack == x.ack
                        && whole((s, c), &y.response)
                });
                let skimmed_into_loss = t.response_body_size.is_none()
                    && hit((s, c), &(x.response.end..x.response.end + 1));
                if !hit((c, s), &x.request) && !hit((s, c), &x.response) {
                    if same_batch_lost || skimmed_into_loss {
                        unsure.push(format!("{t:?}"));
                    } else {
                        intact.push(format!("{t:?}"));
                    }
                } else if hit((c, s), &x.request_head) && hit((s, c), &x.response_head) {
                    // Neither start line survived: nothing says what the exchange was.
                    may += 1;
                } else if same_batch_lost {
                    may += 1;
                } else {
                    must += 1;
                }
            }
            affected_total += must + may;
            let (got, _) = replay_engine(&mutated.capture.to_pcap(), EngineConfig::default());
            let (gaps, clean): (Vec<Transaction>, Vec<Transaction>) = got
                .into_iter()
                .partition(|t| t.error == Some(ErrorType::CaptureGap));
            // Clean records: every intact original, plus some of the unsure ones, nothing else.
            let mut spare = unsure.clone();
            let mut missing = intact.clone();
            let mut wrong = Vec::new();
            for t in &clean {
                let key = format!("{t:?}");
                if let Some(at) = missing.iter().position(|k| *k == key) {
                    missing.remove(at);
                } else if let Some(at) = spare.iter().position(|k| *k == key) {
                    spare.remove(at);
                } else {
                    wrong.push(key);
                }
            }
            let max_gaps = must + may + unsure.len();
            if !missing.is_empty()
                || !wrong.is_empty()
                || gaps.len() < must
                || gaps.len() > max_gaps
            {
                failures.push(format!(
                    "{name} seed {seed}: {} gaps (want {must}..={max_gaps}); intact not reported clean: \
                     {missing:?}; reported clean but wrong: {wrong:?}",
                    gaps.len()
                ));
            }
        }
    }
    assert!(
        affected_total > 100,
        "the loss mutation hit only {affected_total} requests"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
