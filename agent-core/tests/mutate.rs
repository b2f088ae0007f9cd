//! The capture mutator (agent_core::pcap::synth::mutate) over the real captures: it is
//! deterministic, keeps time order, does what it reports, and makes the reordering that
//! mirror ports make (the peer's ACK ahead of the data). A few results are kept as files in
//! tests/fixtures/wire/ (`UPDATE_GOLDEN=1` rewrites them).

mod support;

use agent_core::pcap::synth::mutate::{Mutation, mutate};
use support::{acks_ahead_of_data, captures, fixture_capture, fixtures_dir, stem, wire_dir};

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
