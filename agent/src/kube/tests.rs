//! The follower against recorded API answers served over HTTP on loopback (no API server can
//! run on these machines): a list, a watch event and owner lookups name this node's pods; a
//! denied API is counted and reported, never a panic.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const POD_DEPLOYMENT: &str = include_str!("testdata/pod-deployment.json");
const POD_STATEFULSET: &str = include_str!("testdata/pod-statefulset.json");
const POD_JOB: &str = include_str!("testdata/pod-job.json");
const REPLICASET: &str = include_str!("testdata/replicaset.json");
const JOB: &str = include_str!("testdata/job.json");
const DENIED: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods is forbidden: User \"system:serviceaccount:apitap:apitap\" cannot list resource \"pods\" in API group \"\" at the cluster scope","reason":"Forbidden","details":{"kind":"pods"},"code":403}"#;

/// The recorded answer to one request path, or 404.
fn answer(path: &str, denied: bool) -> (u16, String) {
    if denied {
        return (403, DENIED.to_string());
    }
    if path.starts_with("/api/v1/pods?") && path.contains("fieldSelector=spec.nodeName%3Dnode-a") {
        if path.contains("watch=true") {
            // The job's pod finished and was deleted while watched.
            return (
                200,
                format!("{{\"type\":\"DELETED\",\"object\":{}}}\n", compact(POD_JOB)),
            );
        }
        let list = format!(
            "{{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{{\"resourceVersion\":\"48300\"}},\"items\":[{},{},{}]}}",
            compact(POD_DEPLOYMENT),
            compact(POD_STATEFULSET),
            compact(POD_JOB)
        );
        return (200, list);
    }
    match path {
        "/apis/apps/v1/namespaces/shop/replicasets/checkout-7d9f8b6c5" => (200, compact(REPLICASET)),
        "/apis/batch/v1/namespaces/ops/jobs/report-28861920" => (200, compact(JOB)),
        _ => (404, r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#.into()),
    }
}

fn compact(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).expect("recorded JSON");
    v.to_string()
}

/// Serves recorded answers on loopback, one request per connection; returns its URL and the
/// paths it was asked for.
async fn recorded_api(denied: bool) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                log.lock().expect("log").push(path.clone());
                let (code, body) = answer(&path, denied);
                let reply = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    (url, asked)
}

fn follower() -> Follower {
    Follower {
        node: "node-a".into(),
        status: Arc::new(KubeStatus {
            node: "node-a".into(),
            ..KubeStatus::default()
        }),
        pods: Arc::new(KubePods::default()),
        owners: HashMap::new(),
    }
}

async fn client(url: &str) -> kube::Client {
    let config = kube::Config::new(url.parse().expect("url"));
    kube::Client::try_from(config).expect("client")
}

#[tokio::test]
async fn this_nodes_pods_are_named_by_their_workloads_and_followed() {
    let (url, asked) = recorded_api(false).await;
    let mut f = follower();
    f.follow(client(&url).await).await.expect("list and watch");
    let name = |uid: &str| {
        f.pods.pod(uid).map(|p| {
            (
                p.namespace,
                p.name,
                p.workload.kind,
                p.workload.name.to_string(),
            )
        })
    };
    assert_eq!(
        name("8f6c1ab2-1d3e-4f5a-9b7c-0d1e2f3a4b5c"),
        Some((
            "shop".into(),
            "checkout-7d9f8b6c5-x2k4p".into(),
            Some(WorkloadKind::Deployment),
            "checkout".into()
        ))
    );
    assert_eq!(
        name("66666666-7777-4888-9999-aaaaaaaaaaaa"),
        Some((
            "blog".into(),
            "web-0".into(),
            Some(WorkloadKind::StatefulSet),
            "web".into()
        ))
    );
    assert_eq!(
        name("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
        None,
        "deleted by the watch"
    );
    let s = f.status.snapshot();
    assert!(s.connected);
    assert_eq!((s.pods, s.errors, s.denied), (2, 0, 0));
    let asked = asked.lock().expect("log").clone();
    assert!(
        asked.iter().all(|p| !p.starts_with("/api/v1/pods")
            || p.contains("fieldSelector=spec.nodeName%3Dnode-a")),
        "only this node's pods are asked for: {asked:?}"
    );
    assert_eq!(
        asked.iter().filter(|p| p.contains("/replicasets/")).count(),
        1,
        "one lookup per owner: {asked:?}"
    );
}

#[tokio::test]
async fn a_denied_api_is_counted_and_reported_and_nothing_is_named() {
    let (url, _) = recorded_api(true).await;
    let mut f = follower();
    let err = f.follow(client(&url).await).await.expect_err("403");
    let (why, denied) = describe(&err);
    assert!(denied);
    assert!(why.starts_with("403 Forbidden: pods is forbidden"), "{why}");
    f.status.failed(why, denied);
    let s = f.status.snapshot();
    assert_eq!((s.connected, s.errors, s.denied, s.pods), (false, 1, 1, 0));
    assert!(s.last_error.is_some_and(|e| e.contains("forbidden")));
    assert!(f.pods.by_uid.read().expect("map").is_empty());
}

#[tokio::test]
async fn an_unreachable_api_is_an_error_not_a_hang() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut f = follower();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        f.follow(client(&format!("http://127.0.0.1:{port}")).await),
    )
    .await
    .expect("fails fast");
    let (why, denied) = describe(&result.expect_err("refused"));
    assert!(!denied, "{why}");
}
