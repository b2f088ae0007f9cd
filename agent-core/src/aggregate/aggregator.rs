//! The aggregator: one owner, no locks. `record()` is the hot path (a few hash look-ups on
//! interned ids, no allocation once a series exists); `snapshot()` copies everything out into
//! an immutable [`Snapshot`](super::Snapshot). Maps use foldhash (randomly seeded per process,
//! several times cheaper than SipHash on short keys); every map is bounded by a series budget
//! or the top-K, which caps what a crafted-collision input could cost.

use super::budget::{Budget, Budgeted};
use super::clients::ClientTable;
use super::config::AggregateConfig;
use super::histogram::{DURATION_BUCKETS, Histogram, SIZE_BUCKETS};
use super::sketch::{DdSketch, RELATIVE_ACCURACY};
use super::window::Windows;
use crate::http2::grpc;
use crate::route::method_index;
use crate::server::Attribution;
use crate::shared::same;
use crate::transaction::{ErrorType, Transaction};
use foldhash::{HashMap, HashMapExt};
use std::fmt::Write as _;
use std::sync::Arc;

/// Endpoint label of collapsed series.
pub const OTHER: &str = "other";
/// Endpoint label of a transaction without a route (no path could be read, e.g. a capture
/// gap or a malformed request line).
pub const UNKNOWN_ENDPOINT: &str = "unknown";
/// Client label when neither a client id nor an address is known.
pub const UNKNOWN_CLIENT: &str = "unknown";
/// Bins per endpoint sketch: at 1 % accuracy 1,024 bins span a ratio of 8·10^8 (10 µs to
/// over 2 hours) at full accuracy; faster values fold into the lowest bin. Worst case 8 KiB per
/// (service, method, endpoint), so 16 MiB at the default budget of 2,000.
const ROW_SKETCH_BINS: usize = 1024;
/// Id of `OTHER` in the endpoint-name table.
pub(super) const OTHER_NAME: u32 = 0;

/// Everything kept per (service, method, endpoint).
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub service: u32,
    pub method: u8,
    pub name: u32,
    pub count: u64,
    pub errors: u64,
    pub client_errors: u64,
    pub rate_limited: u64,
    pub auth_failures: u64,
    /// `api_requests_total` per status (0 = no status).
    pub statuses: Vec<(u16, u64)>,
    pub duration: Histogram,
    pub request_size: Histogram,
    pub response_size: Histogram,
    pub latency: DdSketch,
}

impl Row {
    fn new(service: u32, method: u8, name: u32) -> Row {
        Row {
            service,
            method,
            name,
            count: 0,
            errors: 0,
            client_errors: 0,
            rate_limited: 0,
            auth_failures: 0,
            statuses: Vec::new(),
            duration: Histogram::new(DURATION_BUCKETS),
            request_size: Histogram::new(SIZE_BUCKETS),
            response_size: Histogram::new(SIZE_BUCKETS),
            latency: DdSketch::new(RELATIVE_ACCURACY, ROW_SKETCH_BINS),
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct ServiceState {
    pub namespace: Box<str>,
    pub name: Box<str>,
    /// False once retired: the slot waits in `free_services` for the next new service.
    pub live: bool,
    pub requests: u64,
    pub active_connections: u64,
    pub windows: Windows,
}

/// First `error_type` label index of the gRPC codes (`GRPC_ERROR_BASE + code`).
const GRPC_ERROR_BASE: u8 = ErrorType::ALL.len() as u8 + 1;

/// `status` label value of a gRPC auth failure: `GRPC_AUTH_STATUS + code`, shown as the code
/// name (`UNAUTHENTICATED`, `PERMISSION_DENIED`).
pub(super) const GRPC_AUTH_STATUS: u16 = 1000;

/// Index of an `error_type` label: 0 is `server_error`, then `ErrorType::ALL` in order, then
/// the gRPC status codes by name (`UNAVAILABLE` …).
pub(super) fn error_label(i: u8) -> &'static str {
    match i {
        0 => "server_error",
        i if i >= GRPC_ERROR_BASE => grpc::code_name(i - GRPC_ERROR_BASE),
        i => ErrorType::ALL
            .get(usize::from(i) - 1)
            .map_or("unknown", |e| e.as_str()),
    }
}

/// What a transaction's outcome means for the rate-limit and auth-failure figures: 429 and
/// gRPC RESOURCE_EXHAUSTED are rate-limit hits; 401, 403 and gRPC UNAUTHENTICATED and
/// PERMISSION_DENIED are auth failures (with the `status` label they are counted under).
#[derive(Clone, Copy, Debug)]
struct Outcome {
    status: u16,
    grpc: Option<u8>,
    rate_limited: bool,
    auth_status: Option<u16>,
}

impl Outcome {
    fn of(tx: &Transaction) -> Outcome {
        let status = tx.status.unwrap_or(0);
        let grpc = tx.rpc.as_ref().and_then(|r| r.status);
        let auth_status = match (status, grpc) {
            (401 | 403, _) => Some(status),
            (_, Some(c @ (grpc::UNAUTHENTICATED | grpc::PERMISSION_DENIED))) => {
                Some(GRPC_AUTH_STATUS + u16::from(c))
            }
            _ => None,
        };
        Outcome {
            status,
            grpc,
            rate_limited: status == 429 || grpc == Some(grpc::RESOURCE_EXHAUSTED),
            auth_status,
        }
    }

    /// 4xx, or a gRPC failure that is the caller's (NOT_FOUND, INVALID_ARGUMENT …).
    fn client_error(&self) -> bool {
        (400..500).contains(&self.status)
            || self
                .grpc
                .is_some_and(|c| c != grpc::OK && !grpc::is_server_failure(c))
    }
}

fn error_index(e: ErrorType) -> u8 {
    ErrorType::ALL
        .iter()
        .position(|&x| x == e)
        .map_or(0, |i| i as u8 + 1)
}

/// Records transactions and builds snapshots. Owned by one task.
#[derive(Debug)]
pub struct Aggregator {
    cfg: AggregateConfig,
    pub(super) services: Vec<ServiceState>,
    /// namespace -> service -> id.
    service_index: HashMap<Box<str>, HashMap<Box<str>, u32>>,
    /// Slots of retired services, reused first.
    free_services: Vec<u32>,
    pub(super) names: Vec<Box<str>>,
    name_index: HashMap<Box<str>, u32>,
    pub(super) rows: Vec<Row>,
    row_index: HashMap<(u32, u8, u32), u32>,
    /// (service, endpoint name, error label) -> count.
    pub(super) errors: HashMap<(u32, u32, u8), u64>,
    /// (service, endpoint name, client uid) -> 429 count.
    pub(super) rate_limits: HashMap<(u32, u32, u32), u64>,
    /// (service, endpoint name, client uid, status) -> 401/403 count.
    pub(super) auth: HashMap<(u32, u32, u32, u16), u64>,
    /// (service, client uid) -> requests.
    pub(super) client_requests: HashMap<(u32, u32), u64>,
    pub(super) clients: ClientTable,
    budgets: [Budget; 9],
    pub(super) collapsed: [u64; 9],
    pub(super) latest_ns: u64,
    client_buf: String,
    last: Last,
}

/// The previous transaction's service id and row, keyed by the shared strings the records of
/// one flow (service, attribution) and of one route template carry: a transaction like the
/// one before skips four string-keyed look-ups. The cache holds clones of those `Arc`s, so
/// their addresses cannot be reused by other strings while cached; it is emptied whenever
/// ids change meaning (a service retired).
#[derive(Debug, Default)]
struct Last {
    service: Option<(Arc<str>, Option<Arc<Attribution>>, u32)>,
    /// (service id, method, route, row id, endpoint name id); only rows found by look-up
    /// (never one a budget folded into `other`, whose collapses are counted per transaction).
    row: Option<(u32, u8, Arc<str>, u32, u32)>,
}

impl Default for Aggregator {
    fn default() -> Self {
        Aggregator::new(AggregateConfig::default())
    }
}

impl Aggregator {
    pub fn new(cfg: AggregateConfig) -> Aggregator {
        let budget = |b: Budgeted| match b {
            Budgeted::Services => Budget::new(cfg.max_services),
            _ => Budget::new(cfg.series_budget),
        };
        Aggregator {
            budgets: Budgeted::ALL.map(budget),
            clients: ClientTable::new(cfg.top_clients),
            cfg,
            services: Vec::new(),
            service_index: HashMap::new(),
            free_services: Vec::new(),
            names: vec![OTHER.into()],
            name_index: HashMap::from_iter([(Box::<str>::from(OTHER), OTHER_NAME)]),
            rows: Vec::new(),
            row_index: HashMap::new(),
            errors: HashMap::new(),
            rate_limits: HashMap::new(),
            auth: HashMap::new(),
            client_requests: HashMap::new(),
            collapsed: [0; 9],
            latest_ns: 0,
            client_buf: String::new(),
            last: Last::default(),
        }
    }

    pub fn config(&self) -> &AggregateConfig {
        &self.cfg
    }

    /// Latest transaction start seen (the clock replay snapshots use).
    pub fn latest_ns(&self) -> u64 {
        self.latest_ns
    }

    /// Observations collapsed into `other` so far, per budgeted metric.
    pub fn collapsed(&self, metric: Budgeted) -> u64 {
        self.collapsed[metric as usize]
    }

    /// Sets `api_active_connections{namespace,service}` (the engine's live connection count).
    pub fn set_active_connections(&mut self, namespace: &str, service: &str, connections: u64) {
        let svc = self.service_id(namespace, service);
        self.services[svc as usize].active_connections = connections;
    }

    /// Sets every service's `api_active_connections` to 0 (before the engine's counts are set).
    pub fn clear_active_connections(&mut self) {
        for s in &mut self.services {
            s.active_connections = 0;
        }
    }

    /// Accounts one transaction (its `route` already set by the route stage).
    pub fn record(&mut self, tx: &Transaction) {
        self.latest_ns = self.latest_ns.max(tx.start_ns);
        let svc = self.cached_service_id(tx);
        let method = method_index(tx.method.as_deref());
        let failure = tx.is_failure();
        let duration = tx.duration_s();
        let outcome = Outcome::of(tx);
        let status = outcome.status;

        let (row_id, name) = self.cached_row_id(svc, method, tx);
        let row = &mut self.rows[row_id as usize];
        row.count += 1;
        row.errors += u64::from(failure);
        row.client_errors += u64::from(outcome.client_error());
        row.rate_limited += u64::from(outcome.rate_limited);
        row.auth_failures += u64::from(outcome.auth_status.is_some());
        let binned = duration.map(|d| {
            row.duration.observe(d);
            let b = row.latency.bin(d);
            row.latency.add_binned(b);
            b
        });
        if let Some(b) = tx.request_body_size {
            row.request_size.observe(b as f64);
        }
        if let Some(b) = tx.response_body_size {
            row.response_size.observe(b as f64);
        }
        self.count_status(row_id, status);

        if status >= 500 {
            self.count_error(svc, name, 0);
        }
        if let Some(e) = tx.error {
            self.count_error(svc, name, error_index(e));
        }
        if let Some(code) = outcome.grpc.filter(|c| *c != grpc::OK) {
            self.count_error(svc, name, GRPC_ERROR_BASE + code);
        }

        self.count_client(tx, svc, name, outcome, failure);

        let service = &mut self.services[svc as usize];
        service.requests += 1;
        service.windows.record(tx.start_ns, failure, binned);
    }

    /// [`Self::service_id`] through the one-entry cache of [`Last`].
    fn cached_service_id(&mut self, tx: &Transaction) -> u32 {
        if let Some((service, attribution, id)) = &self.last.service
            && Arc::ptr_eq(service, &tx.service)
            && same(attribution, &tx.attribution)
        {
            return *id;
        }
        // Only a service found under its own name is cached: a new one, or one a budget
        // folds into `other` (counted per transaction), goes the long way each time.
        let Some(id) = self.find_service(tx.namespace(), &tx.service) else {
            return self.service_id(tx.namespace(), &tx.service);
        };
        self.last.service = Some((tx.service.clone(), tx.attribution.clone(), id));
        id
    }

    /// [`Self::row_id`] through the one-entry cache of [`Last`].
    fn cached_row_id(&mut self, svc: u32, method: u8, tx: &Transaction) -> (u32, u32) {
        let Some(route) = &tx.route else {
            return self.row_id(svc, method, UNKNOWN_ENDPOINT, tx);
        };
        if let Some((s, m, r, row, name)) = &self.last.row
            && *s == svc
            && *m == method
            && Arc::ptr_eq(r, route)
        {
            return (*row, *name);
        }
        let (row, name) = self.row_id(svc, method, route, tx);
        self.last.row = (name != OTHER_NAME).then(|| (svc, method, route.clone(), row, name));
        (row, name)
    }

    fn find_service(&self, namespace: &str, name: &str) -> Option<u32> {
        self.service_index.get(namespace)?.get(name).copied()
    }

    fn service_id(&mut self, namespace: &str, name: &str) -> u32 {
        if let Some(id) = self.find_service(namespace, name) {
            return id;
        }
        let (namespace, name) = if self.budgets[Budgeted::Services as usize].admit() {
            (namespace, name)
        } else {
            self.collapsed[Budgeted::Services as usize] += 1;
            if let Some(id) = self.find_service("", OTHER) {
                return id;
            }
            ("", OTHER)
        };
        let state = ServiceState {
            namespace: namespace.into(),
            name: name.into(),
            live: true,
            requests: 0,
            active_connections: 0,
            windows: Windows::default(),
        };
        let id = match self.free_services.pop() {
            Some(id) => {
                self.services[id as usize] = state;
                id
            }
            None => {
                self.services.push(state);
                self.services.len() as u32 - 1
            }
        };
        self.service_index
            .entry(namespace.into())
            .or_default()
            .insert(name.into(), id);
        id
    }

    /// Drops every series of (namespace, service) and gives their budget back: for a service
    /// that is gone (a deleted pod's workload), so label sets do not pile up with churn.
    /// Endpoint names no longer used by any series are forgotten too. Returns false when the
    /// service had no series. A transaction of the service after this starts it afresh.
    pub fn retire_service(&mut self, namespace: &str, service: &str) -> bool {
        let Some(id) = self.find_service(namespace, service) else {
            return false;
        };
        self.last = Last::default();
        if let Some(names) = self.service_index.get_mut(namespace) {
            names.remove(service);
            if names.is_empty() {
                self.service_index.remove(namespace);
            }
        }
        let state = &mut self.services[id as usize];
        state.live = false;
        state.windows = Windows::default();
        self.free_services.push(id);
        if !(namespace.is_empty() && service == OTHER) {
            self.budgets[Budgeted::Services as usize].release(1);
        }

        let rows_before = self.rows.len();
        let statuses = |r: &Row| r.statuses.len();
        let status_series: usize = self
            .rows
            .iter()
            .filter(|r| r.service == id && r.name != OTHER_NAME)
            .map(statuses)
            .sum();
        let histogram_rows = self
            .rows
            .iter()
            .filter(|r| r.service == id && r.name != OTHER_NAME)
            .count();
        self.rows.retain(|r| r.service != id);
        self.budgets[Budgeted::Requests as usize].release(status_series);
        self.budgets[Budgeted::Duration as usize].release(histogram_rows);
        release(
            &mut self.errors,
            |k| k.0 == id,
            &mut self.budgets[Budgeted::Errors as usize],
            |k| k.1 == OTHER_NAME,
        );
        release(
            &mut self.rate_limits,
            |k| k.0 == id,
            &mut self.budgets[Budgeted::RateLimits as usize],
            |k| k.1 == OTHER_NAME,
        );
        release(
            &mut self.auth,
            |k| k.0 == id,
            &mut self.budgets[Budgeted::AuthFailures as usize],
            |k| k.1 == OTHER_NAME,
        );
        release(
            &mut self.client_requests,
            |k| k.0 == id,
            &mut self.budgets[Budgeted::ClientRequests as usize],
            |k| k.1 == 0,
        );
        if self.rows.len() != rows_before {
            self.reindex();
        }
        true
    }

    /// Rebuilds the row index and drops endpoint names no series uses (after a retirement).
    fn reindex(&mut self) {
        let mut used = vec![false; self.names.len()];
        used[OTHER_NAME as usize] = true;
        for r in &self.rows {
            used[r.name as usize] = true;
        }
        for k in self.errors.keys() {
            used[k.1 as usize] = true;
        }
        for k in self.rate_limits.keys() {
            used[k.1 as usize] = true;
        }
        for k in self.auth.keys() {
            used[k.1 as usize] = true;
        }
        let mut remap = vec![OTHER_NAME; self.names.len()];
        let mut names = Vec::with_capacity(self.names.len());
        for (old, name) in std::mem::take(&mut self.names).into_iter().enumerate() {
            if used[old] {
                remap[old] = names.len() as u32;
                names.push(name);
            }
        }
        self.names = names;
        self.name_index = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        for r in &mut self.rows {
            r.name = remap[r.name as usize];
        }
        self.row_index = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| ((r.service, r.method, r.name), i as u32))
            .collect();
        self.errors = std::mem::take(&mut self.errors)
            .into_iter()
            .map(|((s, n, l), v)| ((s, remap[n as usize], l), v))
            .collect();
        self.rate_limits = std::mem::take(&mut self.rate_limits)
            .into_iter()
            .map(|((s, n, c), v)| ((s, remap[n as usize], c), v))
            .collect();
        self.auth = std::mem::take(&mut self.auth)
            .into_iter()
            .map(|((s, n, c, st), v)| ((s, remap[n as usize], c, st), v))
            .collect();
    }

    /// The row for (service, method, endpoint), or the service/method's `other` row when the
    /// budget is spent; returns the row and the endpoint name id it records under. Rows are the
    /// label sets of the three histograms, so they share one budget (the duration one) and a
    /// collapsed row counts one collapse per histogram that had an observation.
    fn row_id(&mut self, svc: u32, method: u8, endpoint: &str, tx: &Transaction) -> (u32, u32) {
        let name = self.name_index.get(endpoint).copied();
        if let Some(n) = name
            && let Some(&r) = self.row_index.get(&(svc, method, n))
        {
            return (r, n);
        }
        let name = if self.budgets[Budgeted::Duration as usize].admit() {
            name.unwrap_or_else(|| {
                let id = self.names.len() as u32;
                self.names.push(endpoint.into());
                self.name_index.insert(endpoint.into(), id);
                id
            })
        } else {
            self.collapsed[Budgeted::Duration as usize] += u64::from(tx.duration_ns.is_some());
            self.collapsed[Budgeted::RequestSize as usize] +=
                u64::from(tx.request_body_size.is_some());
            self.collapsed[Budgeted::ResponseSize as usize] +=
                u64::from(tx.response_body_size.is_some());
            OTHER_NAME
        };
        if let Some(&r) = self.row_index.get(&(svc, method, name)) {
            return (r, name);
        }
        let id = self.rows.len() as u32;
        self.rows.push(Row::new(svc, method, name));
        self.row_index.insert((svc, method, name), id);
        (id, name)
    }

    fn count_status(&mut self, row_id: u32, status: u16) {
        let row = &mut self.rows[row_id as usize];
        if let Some(s) = row.statuses.iter_mut().find(|s| s.0 == status) {
            s.1 += 1;
            return;
        }
        if row.name == OTHER_NAME || self.budgets[Budgeted::Requests as usize].admit() {
            row.statuses.push((status, 1));
            return;
        }
        self.collapsed[Budgeted::Requests as usize] += 1;
        let (svc, method) = (row.service, row.method);
        let other = match self.row_index.get(&(svc, method, OTHER_NAME)) {
            Some(&r) => r,
            None => {
                // The histograms' budget is not involved: this row only carries the status.
                let id = self.rows.len() as u32;
                self.rows.push(Row::new(svc, method, OTHER_NAME));
                self.row_index.insert((svc, method, OTHER_NAME), id);
                id
            }
        };
        let row = &mut self.rows[other as usize];
        match row.statuses.iter_mut().find(|s| s.0 == status) {
            Some(s) => s.1 += 1,
            None => row.statuses.push((status, 1)),
        }
    }

    fn count_error(&mut self, svc: u32, name: u32, label: u8) {
        bump(
            &mut self.errors,
            (svc, name, label),
            (svc, OTHER_NAME, label),
            &mut self.budgets[Budgeted::Errors as usize],
            &mut self.collapsed[Budgeted::Errors as usize],
        );
    }

    fn count_client(
        &mut self,
        tx: &Transaction,
        svc: u32,
        name: u32,
        outcome: Outcome,
        failure: bool,
    ) {
        let mut buf = std::mem::take(&mut self.client_buf);
        let client: &str = match (&tx.client_id, &tx.client) {
            (Some(id), _) => id,
            (None, Some(addr)) => {
                buf.clear();
                let _ = write!(buf, "{}", addr.ip());
                &buf
            }
            (None, None) => UNKNOWN_CLIENT,
        };
        let slot = self.clients.observe(client, tx.start_ns);
        self.client_buf = buf;
        for uid in self.clients.take_evicted() {
            self.forget_client(uid);
        }
        let counts = self.clients.counts_mut(slot);
        counts.count += 1;
        counts.errors += u64::from(failure);
        counts.rate_limited += u64::from(outcome.rate_limited);
        counts.auth_failures += u64::from(outcome.auth_status.is_some());
        let uid = self.clients.uid(slot);
        bump(
            &mut self.client_requests,
            (svc, uid),
            (svc, 0),
            &mut self.budgets[Budgeted::ClientRequests as usize],
            &mut self.collapsed[Budgeted::ClientRequests as usize],
        );
        if outcome.rate_limited {
            bump(
                &mut self.rate_limits,
                (svc, name, uid),
                (svc, OTHER_NAME, 0),
                &mut self.budgets[Budgeted::RateLimits as usize],
                &mut self.collapsed[Budgeted::RateLimits as usize],
            );
        }
        if let Some(status) = outcome.auth_status {
            bump(
                &mut self.auth,
                (svc, name, uid, status),
                (svc, OTHER_NAME, 0, status),
                &mut self.budgets[Budgeted::AuthFailures as usize],
                &mut self.collapsed[Budgeted::AuthFailures as usize],
            );
        }
    }

    /// Drops the series of an evicted client and gives their budget back.
    fn forget_client(&mut self, uid: u32) {
        let before = self.client_requests.len();
        self.client_requests.retain(|k, _| k.1 != uid);
        self.budgets[Budgeted::ClientRequests as usize]
            .release(before - self.client_requests.len());
        let before = self.rate_limits.len();
        self.rate_limits.retain(|k, _| k.2 != uid);
        self.budgets[Budgeted::RateLimits as usize].release(before - self.rate_limits.len());
        let before = self.auth.len();
        self.auth.retain(|k, _| k.2 != uid);
        self.budgets[Budgeted::AuthFailures as usize].release(before - self.auth.len());
    }
}

/// Removes the keys `gone` selects, giving `budget` back for those it had charged (every key
/// but the `other` ones).
fn release<K: std::hash::Hash + Eq + Copy>(
    map: &mut HashMap<K, u64>,
    gone: impl Fn(&K) -> bool,
    budget: &mut Budget,
    is_other: impl Fn(&K) -> bool,
) {
    let mut charged = 0;
    map.retain(|k, _| {
        let remove = gone(k);
        charged += usize::from(remove && !is_other(k));
        !remove
    });
    budget.release(charged);
}

/// Increments `key`, admitting it under `budget`, or else `other` (always admitted) while
/// counting the collapse. A key equal to `other` is never charged to the budget.
fn bump<K: std::hash::Hash + Eq + Copy>(
    map: &mut HashMap<K, u64>,
    key: K,
    other: K,
    budget: &mut Budget,
    collapsed: &mut u64,
) {
    if let Some(v) = map.get_mut(&key) {
        *v += 1;
    } else if key == other || budget.admit() {
        map.insert(key, 1);
    } else {
        *collapsed += 1;
        *map.entry(other).or_insert(0) += 1;
    }
}
