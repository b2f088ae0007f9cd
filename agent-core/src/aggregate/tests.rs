//! Aggregator behaviour: counts, labels, budgets, clients, windows.

use super::*;
use crate::transaction::{ErrorType, Transaction};
use rstest::rstest;

const T0: u64 = 1_795_585_921_000_000_000;

fn tx(method: &str, route: &str, status: Option<u16>, ms: u64) -> Transaction {
    Transaction {
        start_ns: T0,
        method: Some(method.to_owned().into()),
        path: Some(route.into()),
        route: Some(route.into()),
        status,
        duration_ns: Some(ms * 1_000_000),
        request_body_size: Some(0),
        response_body_size: Some(100),
        client: Some("127.0.0.1:50000".parse().expect("addr")),
        service: "port-8080".into(),
        client_id: Some("key:abc".into()),
        ..Default::default()
    }
}

/// The value of the sample with exactly these labels; on `api_*` families `namespace=""` is
/// implied unless `want` names a namespace.
fn scalar(s: &Snapshot, family: &str, want: &[(&str, &str)]) -> Option<f64> {
    let f = s.series.get(family)?;
    let implied =
        usize::from(family.starts_with("api_") && !want.iter().any(|(k, _)| *k == "namespace"));
    f.samples
        .iter()
        .find(|x| {
            want.iter()
                .all(|(k, v)| x.labels.iter().any(|(lk, lv)| lk == k && lv == v))
                && x.labels.len() == want.len() + implied
                && (implied == 0
                    || x.labels
                        .iter()
                        .any(|(k, v)| k == "namespace" && v.is_empty()))
        })
        .and_then(|x| match x.value {
            SampleValue::Scalar(v) => Some(v),
            SampleValue::Histogram(_) => None,
        })
}

#[rstest]
fn endpoint_stats_count_errors_and_quantiles() {
    let mut a = Aggregator::default();
    for ms in 1..=100 {
        a.record(&tx(
            "GET",
            "/api/users/{id}",
            Some(if ms <= 10 { 500 } else { 200 }),
            ms,
        ));
    }
    let s = a.snapshot(T0);
    let e = &s.endpoints[0];
    assert_eq!((e.count, e.errors, e.client_errors), (100, 10, 0));
    assert!((e.error_rate - 0.1).abs() < 1e-12);
    assert!((e.avg_s - 0.0505).abs() < 1e-9);
    for (got, want) in [(e.p50_s, 0.050), (e.p95_s, 0.095), (e.p99_s, 0.099)] {
        assert!((got - want).abs() / want <= 0.01, "{got} vs {want}");
    }
}

#[rstest]
#[case::ok_response("200", Some(200), None)]
#[case::no_status_is_empty_label("", None, Some(ErrorType::Timeout))]
fn requests_total_uses_status_code_as_label(
    #[case] label: &str,
    #[case] status: Option<u16>,
    #[case] error: Option<ErrorType>,
) {
    let mut a = Aggregator::default();
    a.record(&Transaction {
        error,
        ..tx("POST", "/x", status, 1)
    });
    let s = a.snapshot(T0);
    let want = [
        ("service", "port-8080"),
        ("method", "POST"),
        ("endpoint", "/x"),
        ("status", label),
    ];
    assert_eq!(scalar(&s, "api_requests_total", &want), Some(1.0));
}

#[rstest]
#[case::server_error(Some(503), None, "server_error")]
#[case::timeout(None, Some(ErrorType::Timeout), "timeout")]
#[case::capture_gap(Some(200), Some(ErrorType::CaptureGap), "capture_gap")]
fn errors_total_labels_error_type(
    #[case] status: Option<u16>,
    #[case] error: Option<ErrorType>,
    #[case] label: &str,
) {
    let mut a = Aggregator::default();
    a.record(&Transaction {
        error,
        ..tx("GET", "/x", status, 1)
    });
    let s = a.snapshot(T0);
    let want = [
        ("service", "port-8080"),
        ("endpoint", "/x"),
        ("error_type", label),
    ];
    assert_eq!(scalar(&s, "api_errors_total", &want), Some(1.0));
    assert_eq!(s.services[0].availability_5m, 0.0);
}

#[rstest]
fn rate_limits_and_auth_failures_carry_client_and_status() {
    let mut a = Aggregator::default();
    a.record(&tx("GET", "/x", Some(429), 1));
    a.record(&tx("GET", "/x", Some(401), 1));
    a.record(&tx("GET", "/x", Some(403), 1));
    let s = a.snapshot(T0);
    let base = [
        ("service", "port-8080"),
        ("endpoint", "/x"),
        ("client", "key:abc"),
    ];
    assert_eq!(scalar(&s, "api_rate_limit_hits_total", &base), Some(1.0));
    let auth = |st| [base[0], base[1], base[2], ("status", st)];
    assert_eq!(
        scalar(&s, "api_auth_failures_total", &auth("401")),
        Some(1.0)
    );
    assert_eq!(
        scalar(&s, "api_auth_failures_total", &auth("403")),
        Some(1.0)
    );
    assert_eq!(
        (s.clients[0].rate_limited, s.clients[0].auth_failures),
        (1, 2)
    );
    assert_eq!(s.endpoints[0].client_errors, 3);
}

#[rstest]
fn client_falls_back_to_ip_then_unknown() {
    let mut a = Aggregator::default();
    a.record(&Transaction {
        client_id: None,
        ..tx("GET", "/x", Some(200), 1)
    });
    a.record(&Transaction {
        client_id: None,
        client: None,
        ..tx("GET", "/x", Some(200), 1)
    });
    let names: Vec<String> = a
        .snapshot(T0)
        .clients
        .into_iter()
        .map(|c| c.client)
        .collect();
    assert_eq!(names, ["127.0.0.1", "unknown"]);
}

#[rstest]
fn endpoints_beyond_budget_collapse_to_other_and_are_counted() {
    let mut a = Aggregator::new(AggregateConfig {
        series_budget: 3,
        ..Default::default()
    });
    for i in 0..5 {
        a.record(&tx("GET", &format!("/e{i}"), Some(200), 1));
    }
    let s = a.snapshot(T0);
    let names: Vec<&str> = s.endpoints.iter().map(|e| e.endpoint.as_str()).collect();
    assert_eq!(names, ["other", "/e0", "/e1", "/e2"]);
    assert_eq!(s.endpoints[0].count, 2);
    for (metric, n) in [
        ("api_request_duration_seconds", 2.0),
        ("api_request_size_bytes", 2.0),
        ("api_requests_total", 0.0),
    ] {
        assert_eq!(
            scalar(&s, "apitap_series_collapsed_total", &[("metric", metric)]),
            Some(n)
        );
    }
    assert_eq!(
        s.series
            .get("api_request_duration_seconds")
            .map(|f| f.samples.len()),
        Some(4)
    );
}

#[rstest]
fn statuses_beyond_budget_collapse_into_the_other_endpoint() {
    let mut a = Aggregator::new(AggregateConfig {
        series_budget: 2,
        ..Default::default()
    });
    for status in [200, 201, 202, 202] {
        a.record(&tx("GET", "/x", Some(status), 1));
    }
    let s = a.snapshot(T0);
    let other = [
        ("service", "port-8080"),
        ("method", "GET"),
        ("endpoint", "other"),
        ("status", "202"),
    ];
    assert_eq!(scalar(&s, "api_requests_total", &other), Some(2.0));
    assert_eq!(
        scalar(
            &s,
            "apitap_series_collapsed_total",
            &[("metric", "api_requests_total")]
        ),
        Some(2.0)
    );
    // The histogram series of /x is untouched.
    assert_eq!(
        s.endpoints
            .iter()
            .find(|e| e.endpoint == "/x")
            .map(|e| e.count),
        Some(4)
    );
}

#[rstest]
fn clients_beyond_top_k_are_other() {
    let mut a = Aggregator::new(AggregateConfig {
        top_clients: 2,
        ..Default::default()
    });
    for c in ["a", "b", "c", "d", "a"] {
        a.record(&Transaction {
            client_id: Some(c.into()),
            ..tx("GET", "/x", Some(200), 1)
        });
    }
    let s = a.snapshot(T0);
    let clients: Vec<(&str, u64)> = s
        .clients
        .iter()
        .map(|c| (c.client.as_str(), c.count))
        .collect();
    assert_eq!(clients, [("a", 2), ("other", 2), ("b", 1)]);
    let other = [("service", "port-8080"), ("client", "other")];
    assert_eq!(scalar(&s, "api_client_requests_total", &other), Some(2.0));
}

#[rstest]
fn availability_is_one_without_traffic_and_per_window_with_it() {
    let mut a = Aggregator::default();
    a.set_active_connections("", "port-9090", 3);
    a.record(&tx("GET", "/x", Some(500), 1));
    a.record(&tx("GET", "/x", Some(200), 1));
    let later = T0 + 10 * 60 * 1_000_000_000;
    let s = a.snapshot(later);
    let idle = s.service("", "port-9090").expect("service row");
    assert_eq!((idle.availability_5m, idle.active_connections), (1.0, 3));
    let busy = s.service("", "port-8080").expect("service row");
    assert_eq!(
        (
            busy.availability_5m,
            busy.availability_1h,
            busy.availability_24h
        ),
        (1.0, 0.5, 0.5)
    );
    let ratio = |w| {
        scalar(
            &s,
            "api_availability_ratio",
            &[("service", "port-8080"), ("window", w)],
        )
    };
    assert_eq!((ratio("5m"), ratio("1h")), (Some(1.0), Some(0.5)));
}

#[rstest]
fn missing_route_and_odd_method_are_bounded_labels() {
    let mut a = Aggregator::default();
    a.record(&Transaction {
        route: None,
        method: Some("BREW".into()),
        ..tx("GET", "/x", None, 1)
    });
    let e = &a.snapshot(T0).endpoints[0];
    assert_eq!(
        (e.method.as_str(), e.endpoint.as_str()),
        ("_OTHER", UNKNOWN_ENDPOINT)
    );
}

#[rstest]
fn top_endpoints_and_clients_are_sorted_by_count() {
    let mut a = Aggregator::default();
    for (route, n) in [("/a", 1), ("/b", 3), ("/c", 2)] {
        for _ in 0..n {
            a.record(&tx("GET", route, Some(200), 1));
        }
    }
    let s = a.snapshot(T0);
    let top: Vec<&str> = s
        .top_endpoints(2)
        .iter()
        .map(|e| e.endpoint.as_str())
        .collect();
    assert_eq!(top, ["/b", "/c"]);
    assert_eq!(s.top_clients(5).len(), 1);
}

#[rstest]
fn evicted_client_series_leave_the_exposition() {
    let mut a = Aggregator::new(AggregateConfig {
        top_clients: 1,
        ..Default::default()
    });
    let from = |c: &str, at: u64| Transaction {
        client_id: Some(c.into()),
        start_ns: at,
        ..tx("GET", "/x", Some(429), 1)
    };
    a.record(&from("quiet", T0));
    for _ in 0..5 {
        a.record(&from("busy", T0));
    }
    a.record(&from("busy", T0 + 60_000_000_000));
    let s = a.snapshot(T0 + 60_000_000_000);
    let series = |c| [("service", "port-8080"), ("client", c)];
    assert_eq!(
        scalar(&s, "api_client_requests_total", &series("quiet")),
        None
    );
    assert_eq!(
        scalar(&s, "api_client_requests_total", &series("busy")),
        Some(1.0)
    );
    assert_eq!(
        scalar(&s, "api_client_requests_total", &series("other")),
        Some(5.0)
    );
    assert_eq!(scalar(&s, "apitap_clients_evicted_total", &[]), Some(1.0));
    let limited = [
        ("service", "port-8080"),
        ("endpoint", "/x"),
        ("client", "quiet"),
    ];
    assert_eq!(scalar(&s, "api_rate_limit_hits_total", &limited), None);
}

/// Sum of a family's samples (observation counts for histograms).
fn family_sum(s: &Snapshot, name: &str) -> f64 {
    s.series.get(name).map_or(0.0, |f| {
        f.samples
            .iter()
            .map(|x| match x.value {
                SampleValue::Scalar(v) => v,
                SampleValue::Histogram(ref h) => h.count as f64,
            })
            .sum()
    })
}

#[rstest]
#[case::tight_budgets(AggregateConfig { series_budget: 7, top_clients: 3, max_services: 2 })]
#[case::default_budgets(AggregateConfig::default())]
fn collapsing_relabels_but_never_loses_counts(#[case] cfg: AggregateConfig) {
    let budget = cfg.series_budget;
    let mut a = Aggregator::new(cfg);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let n = 5_000;
    let (mut failures, mut limited) = (0, 0);
    for i in 0..n {
        let status = [200, 201, 401, 403, 404, 429, 500, 503][next(8) as usize];
        let error = (next(20) == 0).then_some(ErrorType::ConnectionReset);
        failures += u64::from(status >= 500 || error.is_some());
        limited += u64::from(status == 429);
        a.record(&Transaction {
            start_ns: T0 + i * 50_000_000,
            service: format!("port-{}", 8000 + next(4)).into(),
            client_id: Some(format!("c{}", next(40)).into()),
            error,
            ..tx(
                ["GET", "POST", "PATCH"][next(3) as usize],
                &format!("/e{}", next(60)),
                Some(status),
                next(900) + 1,
            )
        });
    }
    let s = a.snapshot(T0 + n * 50_000_000);
    for family in [
        "api_requests_total",
        "api_client_requests_total",
        "api_request_duration_seconds",
        "api_request_size_bytes",
        "api_response_size_bytes",
    ] {
        assert_eq!(family_sum(&s, family), n as f64, "{family}");
    }
    assert_eq!(family_sum(&s, "api_rate_limit_hits_total"), limited as f64);
    assert_eq!(s.endpoints.iter().map(|e| e.count).sum::<u64>(), n);
    assert_eq!(s.endpoints.iter().map(|e| e.errors).sum::<u64>(), failures);
    assert_eq!(s.clients.iter().map(|c| c.count).sum::<u64>(), n);
    assert_eq!(s.services.iter().map(|x| x.requests).sum::<u64>(), n);
    // Budgets hold: real (non-"other") series per metric never exceed the budget.
    for family in [
        "api_requests_total",
        "api_request_duration_seconds",
        "api_errors_total",
    ] {
        let real = s.series.get(family).map_or(0, |f| {
            f.samples
                .iter()
                .filter(|x| !x.labels.iter().any(|(_, v)| v == "other"))
                .count()
        });
        assert!(real <= budget, "{family}: {real} > {budget}");
    }
}

fn grpc_call(code: u8) -> Transaction {
    Transaction {
        version: Some("2"),
        rpc: Some(Box::new(crate::Rpc {
            service: Some("shop.Catalog".into()),
            method: Some("GetItem".into()),
            status: Some(code),
        })),
        ..tx("POST", "/shop.Catalog/GetItem", Some(200), 1)
    }
}

fn in_namespace(namespace: &str, service: &str, route: &str, status: u16) -> Transaction {
    Transaction {
        service: service.into(),
        attribution: Some(std::sync::Arc::new(crate::server::Attribution {
            namespace: namespace.into(),
            ..Default::default()
        })),
        ..tx("GET", route, Some(status), 3)
    }
}

#[rstest]
fn grpc_codes_are_error_types_rate_limits_and_auth_failures() {
    use crate::http2::grpc;
    let mut a = Aggregator::default();
    for code in [
        grpc::OK,
        5, // NOT_FOUND
        grpc::UNAVAILABLE,
        grpc::UNAVAILABLE,
        grpc::RESOURCE_EXHAUSTED,
        grpc::UNAUTHENTICATED,
        grpc::PERMISSION_DENIED,
    ] {
        a.record(&grpc_call(code));
    }
    let s = a.snapshot(T0);
    let err = |t| {
        [
            ("service", "port-8080"),
            ("endpoint", "/shop.Catalog/GetItem"),
            ("error_type", t),
        ]
    };
    for (name, n) in [
        ("NOT_FOUND", 1.0),
        ("UNAVAILABLE", 2.0),
        ("RESOURCE_EXHAUSTED", 1.0),
        ("UNAUTHENTICATED", 1.0),
        ("PERMISSION_DENIED", 1.0),
    ] {
        assert_eq!(
            scalar(&s, "api_errors_total", &err(name)),
            Some(n),
            "{name}"
        );
    }
    assert_eq!(scalar(&s, "api_errors_total", &err("OK")), None);
    let base = [
        ("service", "port-8080"),
        ("endpoint", "/shop.Catalog/GetItem"),
        ("client", "key:abc"),
    ];
    assert_eq!(scalar(&s, "api_rate_limit_hits_total", &base), Some(1.0));
    let auth = |st| [base[0], base[1], base[2], ("status", st)];
    assert_eq!(
        scalar(&s, "api_auth_failures_total", &auth("UNAUTHENTICATED")),
        Some(1.0)
    );
    assert_eq!(
        scalar(&s, "api_auth_failures_total", &auth("PERMISSION_DENIED")),
        Some(1.0)
    );
    // Only UNAVAILABLE is a server failure here (availability 5/7); NOT_FOUND,
    // RESOURCE_EXHAUSTED and the auth codes are the caller's.
    let e = &s.endpoints[0];
    assert_eq!((e.count, e.errors, e.client_errors), (7, 2, 4));
    assert!((s.services[0].availability_5m - 5.0 / 7.0).abs() < 1e-9);
}

#[rstest]
fn same_service_name_in_two_namespaces_is_two_label_sets() {
    let mut a = Aggregator::default();
    a.record(&in_namespace("shop", "web", "/a", 200));
    a.record(&in_namespace("shop", "web", "/a", 200));
    a.record(&in_namespace("blog", "web", "/a", 200));
    a.record(&tx("GET", "/a", Some(200), 1));
    let s = a.snapshot(T0);
    let requests = |ns: &str, svc: &str| {
        scalar(
            &s,
            "api_requests_total",
            &[
                ("namespace", ns),
                ("service", svc),
                ("method", "GET"),
                ("endpoint", "/a"),
                ("status", "200"),
            ],
        )
    };
    assert_eq!(requests("shop", "web"), Some(2.0));
    assert_eq!(requests("blog", "web"), Some(1.0));
    assert_eq!(requests("", "port-8080"), Some(1.0));
    let services: Vec<(&str, &str, u64)> = s
        .services
        .iter()
        .map(|x| (x.namespace.as_str(), x.service.as_str(), x.requests))
        .collect();
    assert_eq!(
        services,
        [("", "port-8080", 1), ("blog", "web", 1), ("shop", "web", 2)]
    );
    // Every api_* family carries the namespace label first.
    for f in s
        .series
        .families
        .iter()
        .filter(|f| f.name.starts_with("api_"))
    {
        for x in &f.samples {
            assert_eq!(x.labels[0].0, "namespace", "{}", f.name);
        }
    }
}

#[rstest]
fn a_retired_service_leaves_every_family_and_gives_its_budget_back() {
    let cfg = AggregateConfig {
        series_budget: 4,
        max_services: 2,
        ..AggregateConfig::default()
    };
    let mut a = Aggregator::new(cfg);
    for route in ["/gone/a", "/gone/b", "/gone/c"] {
        a.record(&in_namespace("shop", "old", route, 503));
    }
    a.record(&in_namespace("shop", "kept", "/kept", 429));
    assert!(a.retire_service("shop", "old"));
    assert!(!a.retire_service("shop", "old"), "already gone");
    let s = a.snapshot(T0);
    for f in &s.series.families {
        for x in &f.samples {
            assert!(
                !x.labels
                    .iter()
                    .any(|(_, v)| v == "old" || v.starts_with("/gone")),
                "{}: {:?}",
                f.name,
                x.labels
            );
        }
    }
    assert_eq!(s.services.len(), 1);
    assert_eq!(s.endpoints.len(), 1);
    // The budget it held is free again: a new service and three new endpoints fit without
    // collapsing into `other`.
    for route in ["/n/a", "/n/b", "/n/c"] {
        a.record(&in_namespace("shop", "new", route, 200));
    }
    assert_eq!(a.collapsed(Budgeted::Services), 0);
    assert_eq!(a.collapsed(Budgeted::Duration), 0);
    assert_eq!(a.collapsed(Budgeted::Requests), 0);
    let s = a.snapshot(T0);
    let kept = scalar(
        &s,
        "api_requests_total",
        &[
            ("namespace", "shop"),
            ("service", "kept"),
            ("method", "GET"),
            ("endpoint", "/kept"),
            ("status", "429"),
        ],
    );
    assert_eq!(kept, Some(1.0), "the other service is untouched");
    assert_eq!(s.services.len(), 2);
}

/// Records of one flow share their strings, so consecutive ones take the cached service and
/// row: the counts are those of the long way, a retirement in between starts the service
/// afresh, and a budget's collapses are still counted per transaction.
#[rstest]
fn shared_strings_of_a_flow_count_like_fresh_ones() {
    let cfg = AggregateConfig {
        series_budget: 1,
        ..AggregateConfig::default()
    };
    let mut a = Aggregator::new(cfg);
    let first = in_namespace("shop", "api", "/items/{id}", 200);
    for _ in 0..5 {
        a.record(&first);
    }
    let requests = |a: &mut Aggregator, route: &str| {
        let s = a.snapshot(T0);
        scalar(
            &s,
            "api_requests_total",
            &[
                ("namespace", "shop"),
                ("service", "api"),
                ("endpoint", route),
                ("method", "GET"),
                ("status", "200"),
            ],
        )
    };
    assert_eq!(requests(&mut a, "/items/{id}"), Some(5.0));
    // Retired, then the same shared strings again: a fresh service with only the new count.
    assert!(a.retire_service("shop", "api"));
    a.record(&first);
    a.record(&first);
    assert_eq!(requests(&mut a, "/items/{id}"), Some(2.0));
    // Over the endpoint budget, every record of a shared route collapses and is counted.
    let over = in_namespace("shop", "api", "/over/budget", 200);
    let over = Transaction {
        service: first.service.clone(),
        attribution: first.attribution.clone(),
        ..over
    };
    for _ in 0..3 {
        a.record(&over);
    }
    assert_eq!(a.collapsed(Budgeted::Duration), 3);
    assert_eq!(requests(&mut a, OTHER), Some(3.0));
}
