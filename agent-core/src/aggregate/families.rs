//! Building an immutable [`Snapshot`] (rows, clients, services and the metric families the
//! exposition renders) from the aggregator's state.

use super::aggregator::{Aggregator, GRPC_AUTH_STATUS, error_label};
use super::budget::Budgeted;
use super::clients::OTHER as OTHER_CLIENT;
use super::snapshot::{
    ClientStats, EndpointStats, FamilyKind, MetricFamilies, MetricFamily, Sample, SampleValue,
    ServiceStats, Snapshot,
};
use crate::route::METHODS;

const WINDOWS: [(&str, u64); 3] = [("5m", 5), ("1h", 60), ("24h", 1440)];

fn labels<const N: usize>(pairs: [(&str, &str); N]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A family with its samples sorted by label values (stable output from hash maps).
fn family(name: &str, help: &str, kind: FamilyKind, mut samples: Vec<Sample>) -> MetricFamily {
    samples.sort_by(|a, b| a.labels.cmp(&b.labels));
    unsorted(name, help, kind, samples)
}

/// A family in the given sample order.
fn unsorted(name: &str, help: &str, kind: FamilyKind, samples: Vec<Sample>) -> MetricFamily {
    MetricFamily {
        name: name.into(),
        help: help.into(),
        kind,
        samples,
    }
}

fn scalar(labels: Vec<(String, String)>, v: u64) -> Sample {
    Sample {
        labels,
        value: SampleValue::Scalar(v as f64),
    }
}

fn status_label(status: u16) -> String {
    if status == 0 {
        String::new()
    } else if status >= GRPC_AUTH_STATUS {
        crate::http2::grpc::code_name((status - GRPC_AUTH_STATUS) as u8).to_string()
    } else {
        status.to_string()
    }
}

impl Aggregator {
    /// (namespace, service) of a service id.
    fn service_name(&self, svc: u32) -> (&str, &str) {
        self.services
            .get(svc as usize)
            .map_or(("", ""), |s| (&s.namespace, &s.name))
    }

    fn endpoint_name(&self, name: u32) -> &str {
        self.names.get(name as usize).map_or("", |n| n)
    }

    /// An immutable copy of everything, with windows evaluated at `now_ns` (wall clock live,
    /// [`Aggregator::latest_ns`] in replay).
    pub fn snapshot(&self, now_ns: u64) -> Snapshot {
        let mut endpoints: Vec<EndpointStats> = self
            .rows
            .iter()
            .filter(|r| r.count > 0)
            .map(|r| EndpointStats {
                namespace: self.service_name(r.service).0.into(),
                service: self.service_name(r.service).1.into(),
                method: METHODS[usize::from(r.method)].into(),
                endpoint: self.endpoint_name(r.name).into(),
                count: r.count,
                errors: r.errors,
                error_rate: r.errors as f64 / r.count as f64,
                avg_s: r.latency.mean(),
                p50_s: r.latency.quantile(0.50),
                p95_s: r.latency.quantile(0.95),
                p99_s: r.latency.quantile(0.99),
                client_errors: r.client_errors,
                rate_limited: r.rate_limited,
                auth_failures: r.auth_failures,
            })
            .collect();
        endpoints.sort_by(|a, b| {
            b.count.cmp(&a.count).then_with(|| {
                (&a.namespace, &a.service, &a.method, &a.endpoint).cmp(&(
                    &b.namespace,
                    &b.service,
                    &b.method,
                    &b.endpoint,
                ))
            })
        });

        let mut clients: Vec<ClientStats> = self
            .clients
            .tracked()
            .iter()
            .map(|t| (&*t.name, t.counts))
            .chain((self.clients.other.count > 0).then_some((OTHER_CLIENT, self.clients.other)))
            .map(|(name, c)| ClientStats {
                client: name.into(),
                count: c.count,
                errors: c.errors,
                rate_limited: c.rate_limited,
                auth_failures: c.auth_failures,
            })
            .collect();
        clients.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.client.cmp(&b.client)));

        let mut services: Vec<ServiceStats> = self
            .services
            .iter()
            .filter(|s| s.live)
            .map(|s| ServiceStats {
                namespace: s.namespace.to_string(),
                service: s.name.to_string(),
                requests: s.requests,
                active_connections: s.active_connections,
                availability_5m: s.windows.availability(now_ns, 5),
                availability_1h: s.windows.availability(now_ns, 60),
                availability_24h: s.windows.availability(now_ns, 1440),
                error_rate_5m: s.windows.error_rate(now_ns, 5),
                p95_5m_s: s.windows.p95_5m(now_ns),
                requests_last_minute: s.windows.last_minute(now_ns),
            })
            .collect();
        services.sort_by(|a, b| (&a.namespace, &a.service).cmp(&(&b.namespace, &b.service)));

        let series = self.families(&services);
        Snapshot {
            taken_ns: now_ns,
            endpoints,
            clients,
            services,
            series,
        }
    }

    fn families(&self, services: &[ServiceStats]) -> MetricFamilies {
        let row_labels = |r: &super::aggregator::Row| {
            let (ns, svc) = self.service_name(r.service);
            labels([
                ("namespace", ns),
                ("service", svc),
                ("method", METHODS[usize::from(r.method)]),
                ("endpoint", self.endpoint_name(r.name)),
            ])
        };
        let requests = self
            .rows
            .iter()
            .flat_map(|r| {
                r.statuses.iter().map(move |&(status, n)| {
                    let mut l = row_labels(r);
                    l.push(("status".into(), status_label(status)));
                    scalar(l, n)
                })
            })
            .collect();
        let histogram = |pick: fn(&super::aggregator::Row) -> &super::histogram::Histogram| {
            self.rows
                .iter()
                .filter(|r| pick(r).count() > 0)
                .map(|r| Sample {
                    labels: row_labels(r),
                    value: SampleValue::Histogram(pick(r).value()),
                })
                .collect()
        };
        let client = |uid: u32| self.clients.name_of(uid);
        let errors = self
            .errors
            .iter()
            .map(|(&(svc, name, label), &n)| {
                let (ns, svc) = self.service_name(svc);
                let l = [
                    ("namespace", ns),
                    ("service", svc),
                    ("endpoint", self.endpoint_name(name)),
                    ("error_type", error_label(label)),
                ];
                scalar(labels(l), n)
            })
            .collect();
        let rate_limits = self
            .rate_limits
            .iter()
            .map(|(&(svc, name, uid), &n)| {
                let (ns, svc) = self.service_name(svc);
                let l = [
                    ("namespace", ns),
                    ("service", svc),
                    ("endpoint", self.endpoint_name(name)),
                    ("client", client(uid)),
                ];
                scalar(labels(l), n)
            })
            .collect();
        let auth = self
            .auth
            .iter()
            .map(|(&(svc, name, uid, status), &n)| {
                let status = status_label(status);
                let (ns, svc) = self.service_name(svc);
                let l = [
                    ("namespace", ns),
                    ("service", svc),
                    ("endpoint", self.endpoint_name(name)),
                    ("client", client(uid)),
                    ("status", &status),
                ];
                scalar(labels(l), n)
            })
            .collect();
        let client_requests = self
            .client_requests
            .iter()
            .map(|(&(svc, uid), &n)| {
                let (ns, svc) = self.service_name(svc);
                scalar(
                    labels([("namespace", ns), ("service", svc), ("client", client(uid))]),
                    n,
                )
            })
            .collect();
        let connections = services
            .iter()
            .map(|s| {
                scalar(
                    labels([("namespace", &s.namespace), ("service", &s.service)]),
                    s.active_connections,
                )
            })
            .collect();
        let availability = services
            .iter()
            .flat_map(|s| {
                let values = [s.availability_5m, s.availability_1h, s.availability_24h];
                WINDOWS.iter().zip(values).map(|((w, _), v)| Sample {
                    labels: labels([
                        ("namespace", &s.namespace),
                        ("service", &s.service),
                        ("window", w),
                    ]),
                    value: SampleValue::Scalar(v),
                })
            })
            .collect();
        let collapsed = Budgeted::ALL
            .iter()
            .map(|&b| scalar(labels([("metric", b.metric())]), self.collapsed(b)))
            .collect();

        let evictions = vec![scalar(Vec::new(), self.clients.evictions)];

        use FamilyKind::{Counter, Gauge, Histogram};
        MetricFamilies {
            families: vec![
                family(
                    "api_requests_total",
                    "HTTP requests by route template and status code (status is empty when no response was seen).",
                    Counter,
                    requests,
                ),
                family(
                    "api_request_duration_seconds",
                    "Time from the first request byte to the last response byte.",
                    Histogram,
                    histogram(|r| &r.duration),
                ),
                family(
                    "api_request_size_bytes",
                    "Request body size in bytes.",
                    Histogram,
                    histogram(|r| &r.request_size),
                ),
                family(
                    "api_response_size_bytes",
                    "Response body size in bytes.",
                    Histogram,
                    histogram(|r| &r.response_size),
                ),
                family(
                    "api_active_connections",
                    "Open client connections to the service.",
                    Gauge,
                    connections,
                ),
                family(
                    "api_errors_total",
                    "Failed requests: 5xx responses (server_error) and exchanges that failed below HTTP.",
                    Counter,
                    errors,
                ),
                family(
                    "api_rate_limit_hits_total",
                    "Responses with status 429 by client.",
                    Counter,
                    rate_limits,
                ),
                family(
                    "api_auth_failures_total",
                    "Responses with status 401 or 403 by client.",
                    Counter,
                    auth,
                ),
                family(
                    "api_client_requests_total",
                    "Requests by API consumer (top clients by traffic, the rest as other).",
                    Counter,
                    client_requests,
                ),
                unsorted(
                    "api_availability_ratio",
                    "Share of requests without a 5xx or an error over the window (1 when there was no traffic).",
                    Gauge,
                    availability,
                ),
                unsorted(
                    "apitap_series_collapsed_total",
                    "Observations recorded under endpoint or client \"other\" because a metric's series budget was spent.",
                    Counter,
                    collapsed,
                ),
                unsorted(
                    "apitap_clients_evicted_total",
                    "Tracked clients displaced from the top-K by busier ones (their series end).",
                    Counter,
                    evictions,
                ),
            ],
        }
    }
}
