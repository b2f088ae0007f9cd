//! Exposition tests: a golden file, a tiny parser checking structure and cumulativity, and
//! `promtool check metrics` (the Prometheus project's own linter) when it is installed.

use super::prometheus::render;
use super::{Format, MetricKind, SelfMetric};
use crate::aggregate::{AggregateConfig, Aggregator, Snapshot};
use crate::transaction::{ErrorType, Transaction};
use rstest::rstest;
use std::collections::HashMap;

const T0: u64 = 1_795_585_921_000_000_000;

fn fixture() -> (Snapshot, Vec<SelfMetric>) {
    let mut a = Aggregator::new(AggregateConfig {
        series_budget: 4,
        ..Default::default()
    });
    let base = Transaction {
        start_ns: T0,
        method: Some("GET".into()),
        route: Some("/api/users/{id}".into()),
        status: Some(200),
        duration_ns: Some(12_000_000),
        request_body_size: Some(0),
        response_body_size: Some(300),
        service: "port-8080".into(),
        client_id: Some("key:1a2b".into()),
        ..Default::default()
    };
    a.record(&base);
    a.record(&Transaction {
        duration_ns: Some(600_000_000),
        ..base.clone()
    });
    a.record(&Transaction {
        status: Some(503),
        duration_ns: Some(2_000_000),
        ..base.clone()
    });
    a.record(&Transaction {
        method: Some("POST".into()),
        route: Some("/api/say \"hi\"\\now".into()),
        status: Some(429),
        request_body_size: Some(70),
        client_id: Some("sub:alice".into()),
        ..base.clone()
    });
    a.record(&Transaction {
        status: None,
        error: Some(ErrorType::Timeout),
        duration_ns: None,
        response_body_size: None,
        route: Some("/login".into()),
        ..base.clone()
    });
    a.record(&Transaction {
        status: Some(401),
        route: Some("/login".into()),
        ..base.clone()
    });
    a.set_active_connections("", "port-8080", 2);
    let selfm = vec![
        SelfMetric {
            name: "apitap_events_lost_total".into(),
            help: "Ring buffer events lost.".into(),
            kind: MetricKind::Counter,
            labels: vec![],
            value: 3.0,
        },
        SelfMetric {
            name: "apitap_build_info".into(),
            help: "Build information.".into(),
            kind: MetricKind::Gauge,
            labels: vec![("version".into(), "0.1.0".into())],
            value: 1.0,
        },
    ];
    (a.snapshot(T0 + 1_000_000_000), selfm)
}

fn check_golden(name: &str, actual: &str) {
    let path = format!("{}/src/export/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("golden file writable");
    }
    let want =
        std::fs::read_to_string(&path).expect("golden file present (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(
        actual, want,
        "exposition differs from {path}; UPDATE_GOLDEN=1 rewrites it"
    );
}

#[rstest]
#[case::prometheus_text(Format::Prometheus, "golden.prom")]
#[case::openmetrics_text(Format::OpenMetrics, "golden.om")]
fn fixed_transactions_render_exactly(#[case] format: Format, #[case] file: &str) {
    let (snap, selfm) = fixture();
    check_golden(file, &render(&snap, &selfm, format));
}

type Labels = Vec<(String, String)>;

/// One parsed sample line: name, labels, value.
type Line = (String, Labels, f64);

/// A deliberately small parser for the text formats: enough to check structure, escaping and
/// histogram invariants, strict enough to fail on malformed lines.
fn parse(text: &str) -> (HashMap<String, String>, Vec<Line>) {
    let mut types = HashMap::new();
    let mut lines = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has name and kind");
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice: {name}"
            );
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().expect("numeric value"),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels closed");
                (name.to_string(), parse_labels(body))
            }
        };
        lines.push((name, labels, value));
    }
    (types, lines)
}

fn parse_labels(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label value quoted");
        let mut value = String::new();
        loop {
            match chars.next().expect("label value terminated") {
                '"' => break,
                '\\' => match chars.next().expect("escape completed") {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                c => value.push(c),
            }
        }
        out.push((key, value));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    out
}

#[rstest]
#[case::prometheus_text(Format::Prometheus)]
#[case::openmetrics_text(Format::OpenMetrics)]
fn histograms_are_cumulative_and_end_with_count(#[case] format: Format) {
    let (snap, selfm) = fixture();
    let (types, lines) = parse(&render(&snap, &selfm, format));
    let mut checked = 0;
    for (family, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        let mut series: HashMap<Labels, Vec<(f64, f64)>> = HashMap::new();
        let mut counts: HashMap<Labels, f64> = HashMap::new();
        for (name, labels, v) in &lines {
            if *name == format!("{family}_bucket") {
                let mut labels = labels.clone();
                let (_, le) = labels.pop().expect("le label last");
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("le number")
                };
                series.entry(labels).or_default().push((le, *v));
            } else if *name == format!("{family}_count") {
                counts.insert(labels.clone(), *v);
            }
        }
        assert!(!series.is_empty(), "{family} has samples");
        for (labels, buckets) in series {
            assert!(
                buckets
                    .windows(2)
                    .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                "{family} {labels:?} cumulative"
            );
            let last = buckets.last().expect("buckets present");
            assert_eq!(last.0, f64::INFINITY);
            assert_eq!(Some(&last.1), counts.get(&labels), "+Inf equals _count");
            checked += 1;
        }
    }
    assert_eq!(
        checked, 9,
        "three endpoints with duration, request and response sizes"
    );
}

#[rstest]
fn escaped_label_values_round_trip() {
    let (snap, selfm) = fixture();
    let (_, lines) = parse(&render(&snap, &selfm, Format::Prometheus));
    assert!(
        lines
            .iter()
            .any(|(_, labels, _)| labels.iter().any(|(_, v)| v == "/api/say \"hi\"\\now"))
    );
}

#[rstest]
fn openmetrics_counters_drop_total_in_type_and_end_with_eof() {
    let (snap, selfm) = fixture();
    let text = render(&snap, &selfm, Format::OpenMetrics);
    assert!(text.contains("# TYPE api_requests counter\n"));
    assert!(text.contains("# TYPE apitap_events_lost counter\napitap_events_lost_total 3\n"));
    assert!(text.ends_with("# EOF\n"));
    let prom = render(&snap, &selfm, Format::Prometheus);
    assert!(prom.contains("# TYPE api_requests_total counter\n") && !prom.contains("# EOF"));
}

/// Runs `promtool check metrics` on the Prometheus text when promtool is on PATH (CI installs
/// it with the prometheus package). Without it the test says so, and fails under CI=true so a
/// missing install cannot pass silently there.
#[rstest]
fn promtool_accepts_the_exposition() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let (snap, selfm) = fixture();
    let text = render(&snap, &selfm, Format::Prometheus);
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is required under CI: apt-get install prometheus"
        );
        eprintln!("promtool not found (apt-get install prometheus): NOT CHECKED");
        return;
    };
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool ran");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {report}");
}

#[rstest]
fn self_metrics_join_a_family_of_their_kind_and_never_duplicate_type_lines() {
    let (snap, _) = fixture();
    let m = |name: &str, kind, svc: &str| SelfMetric {
        name: name.into(),
        help: "h".into(),
        kind,
        labels: vec![("service".into(), svc.into())],
        value: 7.0,
    };
    let extra = [
        m("api_active_connections", MetricKind::Gauge, "port-9"),
        m("api_requests_total", MetricKind::Gauge, "wrong-kind"),
        m("apitap bad-name", MetricKind::Counter, "x"),
    ];
    let text = render(&snap, &extra, Format::Prometheus);
    let (types, lines) = parse(&text);
    assert_eq!(text.matches("# TYPE api_active_connections ").count(), 1);
    assert!(text.contains("api_active_connections{service=\"port-9\"} 7\n"));
    assert!(!text.contains("wrong-kind"));
    assert_eq!(
        types.get("apitap_bad_name").map(String::as_str),
        Some("counter")
    );
    assert!(
        lines
            .iter()
            .any(|(n, _, v)| n == "apitap_bad_name" && *v == 7.0)
    );
}
