//! Raw-IP, VLAN, QinQ, VXLAN, Geneve, GRE, ERSPAN, IP-in-IP and fragmented versions of every
//! real capture in tests/fixtures give exactly the transactions of the original, and the
//! decoder counts the outer layers it opened. A few of them are kept as files in
//! tests/fixtures/wire/ (`UPDATE_GOLDEN=1` rewrites them); the rest are built in memory.

mod support;

use agent_core::pcap::synth::Capture;
use agent_core::pcap::synth::encap::{Encap, encapsulate};
use agent_core::pcap::tunnel::Tunnel;
use support::{captures, fixture_capture, replay_bytes, stem, wire_dir};

/// Kept as files: small, and together they cover every link type and tunnel.
const KEPT: &[(&str, Encap)] = &[
    ("keepalive", Encap::Raw),
    ("ipv6", Encap::RawTyped),
    ("keepalive", Encap::QinQ),
    ("keepalive", Encap::Vxlan),
    ("ipv6", Encap::Vxlan6),
    ("keepalive", Encap::Geneve),
    ("keepalive", Encap::Gre),
    ("keepalive", Encap::ErspanII),
    ("keepalive", Encap::ErspanIII),
    ("expect-100", Encap::Fragments { mtu: 576 }),
    ("expect-100", Encap::VxlanFragments { mtu: 1500 }),
];

fn which_tunnel(how: Encap) -> Option<Tunnel> {
    match how {
        Encap::Vxlan | Encap::Vxlan6 | Encap::VxlanFragments { .. } => Some(Tunnel::Vxlan),
        Encap::Geneve => Some(Tunnel::Geneve),
        Encap::Gre => Some(Tunnel::Gre),
        Encap::ErspanI | Encap::ErspanII | Encap::ErspanIII => Some(Tunnel::Erspan),
        Encap::IpInIp => Some(Tunnel::IpInIp),
        _ => None,
    }
}

#[test]
fn every_encapsulation_of_every_fixture_gives_the_original_transactions() {
    let mut failures = Vec::new();
    for path in captures() {
        let name = stem(&path);
        let original = fixture_capture(&path);
        let (want, _) = replay_bytes(&original.to_pcap());
        for how in Encap::ALL {
            let wrapped = encapsulate(&original, how);
            let (got, stats) = replay_bytes(&wrapped.to_pcap());
            if got != want {
                failures.push(format!(
                    "{name} in {}: {} transactions, want {}\n  first got  {:?}\n  first want {:?}",
                    how.name(),
                    got.len(),
                    want.len(),
                    got.first(),
                    want.first()
                ));
                continue;
            }
            let fragmented = matches!(how, Encap::Fragments { .. } | Encap::VxlanFragments { .. });
            let frags = &stats.fragment_table;
            if fragmented
                && (
                    frags.timed_out,
                    frags.overflow,
                    frags.invalid,
                    frags.pending,
                ) != (0, 0, 0, 0)
            {
                failures.push(format!(
                    "{name} in {}: fragment table {frags:?}",
                    how.name()
                ));
            }
            if let Some(kind) = which_tunnel(how)
                && stats.decapsulated(kind) == 0
            {
                failures.push(format!(
                    "{name} in {}: no {kind:?} layer counted",
                    how.name()
                ));
            }
            if stats.malformed + stats.non_tcp + stats.non_ip + stats.too_deep > 0 {
                failures.push(format!(
                    "{name} in {}: skipped packets {stats:?}",
                    how.name()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_kept_encapsulated_fixtures_are_what_the_encapsulator_makes() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let dir = wire_dir();
    let mut failures = Vec::new();
    for &(name, how) in KEPT {
        let original = fixture_capture(&support::fixtures_dir().join(format!("{name}.pcap")));
        let bytes = encapsulate(&original, how).to_pcap();
        let file = dir.join(format!("{name}.{}.pcap", how.name()));
        if update {
            std::fs::create_dir_all(&dir).expect("tests/fixtures/wire");
            std::fs::write(&file, &bytes).expect("write fixture");
            continue;
        }
        let kept = std::fs::read(&file).unwrap_or_default();
        if kept != bytes {
            failures.push(format!(
                "{} differs (UPDATE_GOLDEN=1 rewrites)",
                file.display()
            ));
        }
        let (from_file, _) = replay_bytes(&kept);
        let (want, _) = replay_bytes(&original.to_pcap());
        if from_file != want {
            failures.push(format!(
                "{}: transactions differ from {name}",
                file.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_capture_read_and_written_again_replays_the_same() {
    for path in captures() {
        let original = std::fs::read(&path).expect("fixture");
        let copy = Capture::read(&original[..])
            .expect("fixture reads")
            .to_pcap();
        assert_eq!(
            replay_bytes(&copy).0,
            replay_bytes(&original).0,
            "{}",
            stem(&path)
        );
    }
}
