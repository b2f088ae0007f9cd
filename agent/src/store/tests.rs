//! Embedded store behaviour against a real redb file in a temporary directory.

use super::*;
use agent_core::time::{utc_date, utc_hour};

fn tx(route: &str, method: &str, client: &str, start_ns: u64) -> Transaction {
    Transaction {
        start_ns,
        method: Some(method.to_owned().into()),
        route: Some(route.into()),
        client_id: Some(client.into()),
        ..Transaction::default()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn counts_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = now_ns();
    let today = utc_date(now);
    rt().block_on(async {
        let store = UsageStore::embedded(dir.path(), StoreOptions::default()).expect("open");
        for _ in 0..3 {
            store.record(&tx("/api/users/{id}", "GET", "key:aa", now));
        }
        store.record(&tx("/api/orders", "POST", "key:bb", now));
        assert_eq!(
            store.flush().await.expect("flush"),
            6,
            "2 daily + 2 client + 2 hourly keys"
        );
        store.record(&tx("/api/users/{id}", "GET", "key:aa", now));
        store.flush().await.expect("second flush adds");
        drop(store);

        let store = UsageStore::embedded(dir.path(), StoreOptions::default()).expect("reopen");
        let usage = store.usage(UsageKind::Endpoints, 7).await.expect("usage");
        assert_eq!(usage[&today]["/api/users/{id}:GET"], 4);
        assert_eq!(usage[&today]["/api/orders:POST"], 1);
        let clients = store.usage(UsageKind::Clients, 1).await.expect("clients");
        assert_eq!(clients[&today]["key:aa"], 4);
        let hourly = store
            .as_embedded()
            .expect("embedded")
            .hourly(&today)
            .expect("hourly");
        assert_eq!(hourly[&utc_hour(now)]["/api/orders:POST"], 1);
        assert_eq!(store.stats().write_failures, 0);
    });
}

#[test]
fn usage_includes_increments_not_yet_flushed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = now_ns();
    rt().block_on(async {
        let store = UsageStore::embedded(dir.path(), StoreOptions::default()).expect("open");
        store.record(&tx("/a", "GET", "c", now));
        store.flush().await.expect("flush");
        store.record(&tx("/a", "GET", "c", now));
        let usage = store.usage(UsageKind::Endpoints, 1).await.expect("usage");
        assert_eq!(usage[&utc_date(now)]["/a:GET"], 2);
    });
}

#[test]
fn a_recorder_counts_runs_once_settled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = now_ns();
    let today = utc_date(now);
    rt().block_on(async {
        let store = UsageStore::embedded(dir.path(), StoreOptions::default()).expect("open");
        let mut usage = store.recorder();
        for _ in 0..3 {
            usage.record(&tx("/a", "GET", "c", now));
        }
        // A run still open on the recording thread is not in the store yet.
        assert_eq!(store.flush().await.expect("flush"), 0);
        // A different transaction ends the run: the first three reach the store.
        usage.record(&tx("/b", "GET", "d", now));
        let seen = store.usage(UsageKind::Endpoints, 1).await.expect("usage");
        assert_eq!(seen[&today]["/a:GET"], 3);
        assert!(!seen[&today].contains_key("/b:GET"));
        usage.record(&tx("/b", "GET", "d", now));
        usage.settle();
        // Settled twice in a row: counted once.
        usage.settle();
        let seen = store.usage(UsageKind::Endpoints, 1).await.expect("usage");
        assert_eq!(seen[&today]["/b:GET"], 2);
        usage.record(&tx("/b", "GET", "d", now));
        drop(usage);
        let clients = store.usage(UsageKind::Clients, 1).await.expect("clients");
        assert_eq!((clients[&today]["c"], clients[&today]["d"]), (3, 3));
    });
}

#[test]
fn flush_prunes_beyond_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = now_ns();
    let day = 86_400 * 1_000_000_000;
    rt().block_on(async {
        let options = StoreOptions {
            daily_retention_days: 3,
            hourly_retention_days: 1,
            ..StoreOptions::default()
        };
        let store = UsageStore::embedded(dir.path(), options).expect("open");
        store.record(&tx("/old", "GET", "c", now - 5 * day));
        store.record(&tx("/kept", "GET", "c", now - 2 * day));
        store.record(&tx("/today", "GET", "c", now));
        store.flush().await.expect("flush");
        let usage = store.usage(UsageKind::Endpoints, 30).await.expect("usage");
        let fields: Vec<&String> = usage.values().flat_map(|f| f.keys()).collect();
        assert_eq!(fields, ["/kept:GET", "/today:GET"]);
        let db = store.as_embedded().expect("embedded");
        assert!(
            db.hourly(&utc_date(now - 2 * day))
                .expect("hourly")
                .is_empty(),
            "hourly kept 1 day"
        );
        assert!(!db.hourly(&utc_date(now)).expect("hourly").is_empty());
    });
}

#[test]
fn routes_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    rt().block_on(async {
        let store = UsageStore::embedded(dir.path(), StoreOptions::default()).expect("open");
        assert_eq!(store.load_routes().await.expect("load"), None);
        store
            .save_routes("{\"templates\":[\"/a/{id}\"]}".into())
            .await
            .expect("save");
        drop(store);
        let store = UsageStore::embedded(dir.path(), StoreOptions::default()).expect("reopen");
        assert_eq!(
            store.load_routes().await.expect("load").as_deref(),
            Some("{\"templates\":[\"/a/{id}\"]}")
        );
    });
}

#[test]
fn unwritable_data_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let err = UsageStore::embedded(&file.join("sub"), StoreOptions::default())
        .err()
        .expect("refused");
    assert!(
        err.to_string().starts_with("cannot create data directory "),
        "{err}"
    );
}

#[test]
fn self_metrics_name_the_spec_counters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = UsageStore::embedded(dir.path(), StoreOptions::default()).expect("open");
    store.record(&tx("/a", "GET", "c", now_ns()));
    let names: Vec<(String, f64)> = store
        .self_metrics()
        .into_iter()
        .map(|m| (m.name, m.value))
        .collect();
    assert!(names.contains(&("apitap_store_write_failures_total".into(), 0.0)));
    assert!(names.contains(&("apitap_store_pending_increments".into(), 3.0)));
    assert!(names.contains(&("apitap_store_dropped_increments_total".into(), 0.0)));
}

#[test]
fn bounded_pending_counts_dropped_increments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = StoreOptions {
        max_pending: 3,
        ..StoreOptions::default()
    };
    let store = UsageStore::embedded(dir.path(), options).expect("open");
    let now = now_ns();
    store.record(&tx("/a", "GET", "c", now));
    store.record(&tx("/b", "GET", "c", now));
    let stats = store.stats();
    assert_eq!(
        (stats.pending, stats.dropped),
        (3, 2),
        "/b's daily and hourly keys are new"
    );
}
