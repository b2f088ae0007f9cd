//! Router precedence, learning policy, persistence.

use super::*;
use rstest::rstest;

fn tx(path: &str, status: Option<u16>) -> Transaction {
    Transaction {
        path: Some(path.into()),
        status,
        ..Default::default()
    }
}

fn routed(r: &mut Router, path: &str, status: Option<u16>) -> Option<String> {
    let mut t = tx(path, status);
    r.route(&mut t);
    t.route.map(|r| r.to_string())
}

const OPENAPI: &str =
    "openapi: 3.0.0\npaths:\n  /v2/items/{itemId}: {}\n  /api/users/{userId}: {}\n";

#[rstest]
#[case::config_pattern_first("/api/users/42", "/api/users/{id}")]
#[case::openapi_next("/v2/items/abc", "/v2/items/{itemId}")]
#[case::learned_last("/shop/cart/991", "/shop/cart/{id}")]
#[case::query_never_reaches_endpoint("/shop/cart/991?token=x", "/shop/cart/{id}")]
fn routes_by_precedence(#[case] path: &str, #[case] want: &str) {
    let cfg = RouteConfig {
        patterns: vec!["/api/users/{id}".into()],
        ..Default::default()
    };
    let mut r = Router::new(&cfg).expect("valid config");
    assert_eq!(r.add_openapi_str(OPENAPI), Ok(2));
    assert_eq!(routed(&mut r, path, Some(200)).as_deref(), Some(want));
}

#[rstest]
fn from_openapi_str_uses_document_paths() {
    let mut r = Router::from_openapi_str(OPENAPI).expect("valid document");
    assert_eq!(
        routed(&mut r, "/api/users/7", Some(200)).as_deref(),
        Some("/api/users/{userId}")
    );
}

#[rstest]
fn not_found_requests_do_not_learn() {
    let mut r = Router::new(&RouteConfig::default()).expect("valid");
    assert_eq!(
        routed(&mut r, "/wp-login.php", Some(404)).as_deref(),
        Some(UNMATCHED)
    );
    assert_eq!(
        routed(&mut r, "/users/1", Some(200)).as_deref(),
        Some("/users/{id}")
    );
    assert_eq!(
        routed(&mut r, "/users/ghost", Some(404)).as_deref(),
        Some("/users/{id}")
    );
    assert_eq!(
        r.learned_state()["templates"],
        serde_json::json!(["/users/{id}"])
    );
}

#[rstest]
fn scanner_cannot_collapse_real_routes() {
    let cfg = RouteConfig {
        max_distinct_segment_values: 5,
        ..Default::default()
    };
    let mut r = Router::new(&cfg).expect("valid");
    routed(&mut r, "/health", Some(200));
    for i in 0..100 {
        routed(&mut r, &format!("/probe-{i}.php"), Some(404));
    }
    assert_eq!(
        routed(&mut r, "/health", Some(200)).as_deref(),
        Some("/health")
    );
}

#[rstest]
fn missing_path_leaves_route_unset() {
    let mut r = Router::new(&RouteConfig::default()).expect("valid");
    let mut t = Transaction::default();
    r.route(&mut t);
    assert_eq!(t.route, None);
}

#[rstest]
fn learned_templates_survive_a_restart() {
    let mut r = Router::new(&RouteConfig::default()).expect("valid");
    routed(&mut r, "/orders/5/lines", Some(200));
    let saved = r.learned_state();
    let mut again = Router::new(&RouteConfig::default()).expect("valid");
    assert_eq!(again.load_state(&saved), Ok(1));
    assert_eq!(
        routed(&mut again, "/orders/6/lines", Some(404)).as_deref(),
        Some("/orders/{id}/lines")
    );
}

#[rstest]
fn invalid_config_pattern_is_an_error() {
    let cfg = RouteConfig {
        patterns: vec!["users/{id}".into()],
        ..Default::default()
    };
    assert!(matches!(
        Router::new(&cfg),
        Err(RouteError::InvalidPattern { .. })
    ));
}

#[rstest]
fn config_rejects_unknown_keys() {
    assert!(serde_json::from_str::<RouteConfig>(r#"{"pattern": []}"#).is_err());
    let c: RouteConfig = serde_json::from_str(r#"{"max_nodes": 10}"#).expect("parses");
    assert_eq!((c.max_nodes, c.max_distinct_segment_values), (10, 50));
}

#[rstest]
fn self_metrics_report_unmatched() {
    let mut r = Router::new(&RouteConfig::default()).expect("valid");
    routed(&mut r, "/nope", Some(404));
    let m = r.self_metrics();
    let unmatched = m
        .iter()
        .find(|m| m.name == "apitap_route_unmatched_total")
        .map(|m| m.value);
    assert_eq!(unmatched, Some(1.0));
}

#[rstest]
fn grpc_methods_are_their_own_route_and_never_learned() {
    let mut r = Router::new(&RouteConfig::default()).expect("router");
    // Many ids in the second segment would collapse a learned position; gRPC paths do not
    // enter the learned tree.
    for i in 0..200 {
        let mut t = Transaction {
            path: Some(format!("/pkg.Svc{i}/Get").into()),
            rpc: Some(Box::new(crate::Rpc::default())),
            ..Default::default()
        };
        r.route(&mut t);
        assert_eq!(
            t.route.as_deref(),
            Some(format!("/pkg.Svc{i}/Get").as_str())
        );
    }
    assert_eq!(
        routed(&mut r, "/pkg.Svc7/Get", Some(200)).as_deref(),
        Some("/pkg.Svc7/Get")
    );
}

#[rstest]
#[case::garbage_line(None)]
#[case::readable_target(Some("/api/users/1"))]
fn malformed_requests_are_one_endpoint_and_never_learned(#[case] path: Option<&str>) {
    let mut r = Router::new(&RouteConfig::default()).expect("valid");
    let mut t = Transaction {
        path: path.map(Arc::from),
        status: Some(400),
        error: Some(ErrorType::MalformedRequest),
        ..Default::default()
    };
    r.route(&mut t);
    assert_eq!(t.route.as_deref(), Some(MALFORMED_ROUTE));
    assert_eq!(r.learned_state()["templates"], serde_json::json!([]));
}

/// What `route` gives without the recent-paths cache: the full walk every time.
fn walked(r: &mut Router, path: &str, status: Option<u16>) -> String {
    let learn = !matches!(status, Some(400 | 404 | 405 | 414));
    r.template(path, learn).to_string()
}

proptest::proptest! {
    /// Through collapses, the node bound, matches without learning and a loaded state, the
    /// cached route equals the full walk's, and every counter moves the same.
    #[test]
    fn recent_paths_route_as_the_full_walk_does(
        steps in proptest::collection::vec((0u8..6, 0u8..12, 0u8..4, proptest::bool::ANY), 1..300),
        max_distinct in 1usize..6,
        max_nodes in 2usize..24,
    ) {
        let cfg = RouteConfig {
            patterns: vec!["/cfg/{x}".into()],
            max_distinct_segment_values: max_distinct,
            max_nodes,
            ..Default::default()
        };
        let mut cached = Router::new(&cfg).expect("valid");
        let mut full = Router::new(&cfg).expect("valid");
        let statuses = [Some(200), Some(404), None, Some(500)];
        for (i, (a, b, s, reload)) in steps.into_iter().enumerate() {
            let path = match a {
                0 => format!("/a/v{b}"),
                1 => format!("/a/v{b}/x"),
                2 => format!("/b/{b}"),
                3 => format!("/cfg/v{b}"),
                4 => format!("/v{}/v{b}", b % 3),
                _ => "/".to_string(),
            };
            let status = statuses[s as usize];
            // The same Arc twice, as a keep-alive connection shares a repeated path.
            let mut t = tx(&path, status);
            cached.route(&mut t);
            let again = t.clone();
            let mut t2 = again.clone();
            t2.route = None;
            cached.route(&mut t2);
            let want = walked(&mut full, &path, status);
            let want2 = walked(&mut full, &path, status);
            proptest::prop_assert_eq!(t.route.as_deref(), Some(want.as_str()), "step {} {}", i, path);
            proptest::prop_assert_eq!(t2.route.as_deref(), Some(want2.as_str()), "step {} {}", i, path);
            proptest::prop_assert_eq!(cached.learned.stats(), full.learned.stats());
            proptest::prop_assert_eq!(cached.unmatched, full.unmatched);
            if reload && i % 50 == 49 {
                let state = full.learned_state();
                cached.load_state(&state).expect("state");
                full.load_state(&state).expect("state");
            }
        }
    }
}

#[rstest]
fn a_repeated_path_is_routed_from_the_recent_paths() {
    let mut r = Router::new(&RouteConfig::default()).expect("valid");
    let path: Arc<str> = Arc::from("/api/orders/17");
    let mut t = Transaction {
        path: Some(Arc::clone(&path)),
        status: Some(200),
        ..Default::default()
    };
    r.route(&mut t);
    let first = t.route.clone().expect("route");
    assert_eq!(r.recent.len(), 0, "a path seen once is not kept");
    t.route = None;
    r.route(&mut t);
    assert_eq!(r.recent.len(), 1, "kept at its second miss");
    t.route = None;
    r.route(&mut t);
    // The kept template itself: no walk, no new Arc.
    assert!(Arc::ptr_eq(&first, t.route.as_ref().expect("route")));
    // Matching without learning neither reads nor fills the cache.
    assert_eq!(
        routed(&mut r, "/api/ghosts", Some(404)).as_deref(),
        Some(UNMATCHED)
    );
    assert_eq!(r.recent.len(), 1);
    // Paths past the bound are routed without it.
    let long = format!("/api/{}", "x".repeat(recent::MAX_PATH));
    routed(&mut r, &long, Some(200));
    assert_eq!(r.recent.len(), 1);
}
