//! What `apitap top` shows: the agent's API bodies as received, and the viewer's choices
//! (sort keys, filter, selected service). Pure data, so sorting and filtering are tested
//! without a terminal.

use serde::Deserialize;

/// `GET /api/v1/services`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Services {
    pub timestamp: String,
    pub services: Vec<ServiceRow>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServiceRow {
    pub namespace: String,
    pub service: String,
    pub requests: u64,
    pub requests_last_minute: u64,
    pub active_connections: u64,
    pub error_rate_5m: f64,
    pub p95_5m_ms: f64,
}

/// `GET /api/v1/series`: per-second points, oldest first, ending at `end_s`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Series {
    pub end_s: u64,
    pub services: Vec<ServiceSeries>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServiceSeries {
    pub namespace: String,
    pub service: String,
    pub requests: Vec<u64>,
    pub errors: Vec<u64>,
    pub p95_ms: Vec<Option<f64>>,
}

/// `GET /api/v1/endpoints`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Endpoints {
    pub timestamp: String,
    pub endpoints: Vec<EndpointRow>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct EndpointRow {
    pub namespace: String,
    pub service: String,
    pub method: String,
    pub endpoint: String,
    pub count: u64,
    pub error_rate: f64,
    pub p50_latency_ms: f64,
    pub p95_latency_ms: f64,
    pub p99_latency_ms: f64,
}

/// `GET /api/v1/clients`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Clients {
    pub clients: Vec<ClientRow>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClientRow {
    pub client: String,
    pub count: u64,
    pub error_rate: f64,
    pub rate_limited: u64,
    pub auth_failures: u64,
}

/// `GET /api/v1/alerts`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Alerts {
    pub alerts: Vec<AlertRow>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct AlertRow {
    pub name: String,
    pub severity: String,
    pub state: String,
    pub summary: String,
}

/// `GET /api/v1/capture`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Capture {
    pub interfaces: Vec<String>,
    pub programs_attached: u64,
    pub events_lost: u64,
    pub events_dropped: u64,
    pub reassembly_gaps: u64,
    pub parse_errors_total: u64,
    pub capture_errors: u64,
    pub flows_tracked: u64,
}

/// One round of requests.
#[derive(Clone, Debug, Default)]
pub struct Panes {
    pub services: Services,
    pub series: Series,
    pub endpoints: Endpoints,
    pub clients: Clients,
    pub alerts: Alerts,
    pub capture: Capture,
}

/// Order of the endpoints pane (descending; the agent sorts, the viewer re-sorts the rows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EndpointSort {
    #[default]
    Count,
    ErrorRate,
    P95,
}

impl EndpointSort {
    pub fn next(self) -> Self {
        match self {
            EndpointSort::Count => EndpointSort::ErrorRate,
            EndpointSort::ErrorRate => EndpointSort::P95,
            EndpointSort::P95 => EndpointSort::Count,
        }
    }

    /// The `sort` parameter of `/api/v1/endpoints`.
    pub fn param(self) -> &'static str {
        match self {
            EndpointSort::Count => "count",
            EndpointSort::ErrorRate => "error_rate",
            EndpointSort::P95 => "p95",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            EndpointSort::Count => "requests",
            EndpointSort::ErrorRate => "error rate",
            EndpointSort::P95 => "p95",
        }
    }
}

/// Order of the clients pane (descending).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientSort {
    #[default]
    Count,
    RateLimited,
    AuthFailures,
}

impl ClientSort {
    pub fn next(self) -> Self {
        match self {
            ClientSort::Count => ClientSort::RateLimited,
            ClientSort::RateLimited => ClientSort::AuthFailures,
            ClientSort::AuthFailures => ClientSort::Count,
        }
    }

    /// The `sort` parameter of `/api/v1/clients`.
    pub fn param(self) -> &'static str {
        match self {
            ClientSort::Count => "count",
            ClientSort::RateLimited => "rate_limited",
            ClientSort::AuthFailures => "auth_failures",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ClientSort::Count => "requests",
            ClientSort::RateLimited => "429s",
            ClientSort::AuthFailures => "401/403s",
        }
    }
}

/// `namespace/service`, or the service alone off Kubernetes.
pub fn service_key(namespace: &str, service: &str) -> String {
    if namespace.is_empty() {
        service.to_string()
    } else {
        format!("{namespace}/{service}")
    }
}

/// The viewer's choices.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub endpoint_sort: EndpointSort,
    pub client_sort: ClientSort,
    /// Case-insensitive substring of service, method, endpoint or client.
    pub filter: String,
    /// `None` shows every service.
    pub service: Option<String>,
}

impl View {
    fn matches(&self, text: &str) -> bool {
        self.filter.is_empty() || text.to_lowercase().contains(&self.filter.to_lowercase())
    }

    /// The endpoint rows to show, in the chosen order.
    pub fn endpoints<'a>(&self, panes: &'a Panes) -> Vec<&'a EndpointRow> {
        let mut rows: Vec<&EndpointRow> = panes
            .endpoints
            .endpoints
            .iter()
            .filter(|e| {
                let svc = service_key(&e.namespace, &e.service);
                self.service.as_ref().is_none_or(|s| *s == svc)
                    && self.matches(&format!("{svc} {} {}", e.method, e.endpoint))
            })
            .collect();
        let key = |e: &EndpointRow| match self.endpoint_sort {
            EndpointSort::Count => e.count as f64,
            EndpointSort::ErrorRate => e.error_rate,
            EndpointSort::P95 => e.p95_latency_ms,
        };
        rows.sort_by(|a, b| {
            key(b)
                .total_cmp(&key(a))
                .then_with(|| b.count.cmp(&a.count))
        });
        rows
    }

    /// The client rows to show, in the chosen order.
    pub fn clients<'a>(&self, panes: &'a Panes) -> Vec<&'a ClientRow> {
        let mut rows: Vec<&ClientRow> = panes
            .clients
            .clients
            .iter()
            .filter(|c| self.matches(&c.client))
            .collect();
        let key = |c: &ClientRow| match self.client_sort {
            ClientSort::Count => c.count,
            ClientSort::RateLimited => c.rate_limited,
            ClientSort::AuthFailures => c.auth_failures,
        };
        rows.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| b.count.cmp(&a.count)));
        rows
    }

    /// Moves the service selection: all, then each service in turn (`forward`), wrapping.
    pub fn switch_service(&mut self, panes: &Panes, forward: bool) {
        let keys: Vec<String> = panes
            .services
            .services
            .iter()
            .map(|s| service_key(&s.namespace, &s.service))
            .collect();
        if keys.is_empty() {
            self.service = None;
            return;
        }
        let at = self
            .service
            .as_ref()
            .and_then(|s| keys.iter().position(|k| k == s));
        let n = keys.len();
        self.service = match (at, forward) {
            (None, true) => Some(keys[0].clone()),
            (None, false) => Some(keys[n - 1].clone()),
            (Some(i), true) if i + 1 < n => Some(keys[i + 1].clone()),
            (Some(i), false) if i > 0 => Some(keys[i - 1].clone()),
            _ => None,
        };
    }

    /// The services whose summary to show: the selected one, or all.
    pub fn services<'a>(&self, panes: &'a Panes) -> Vec<&'a ServiceRow> {
        panes
            .services
            .services
            .iter()
            .filter(|s| {
                self.service
                    .as_ref()
                    .is_none_or(|k| *k == service_key(&s.namespace, &s.service))
            })
            .collect()
    }
}

impl Panes {
    /// The per-second series of one service.
    pub fn series_of(&self, namespace: &str, service: &str) -> Option<&ServiceSeries> {
        self.series
            .services
            .iter()
            .find(|s| s.namespace == namespace && s.service == service)
    }
}

impl ServiceSeries {
    /// Requests per second over the last `n` complete seconds (the last point is partial).
    pub fn recent_rate(&self, n: usize) -> f64 {
        let complete = self.requests.len().saturating_sub(1);
        let from = complete.saturating_sub(n);
        let sum: u64 = self.requests[from..complete].iter().sum();
        sum as f64 / n.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn panes() -> Panes {
        let ep = |svc: &str, m: &str, e: &str, count: u64, err: f64, p95: f64| EndpointRow {
            service: svc.into(),
            method: m.into(),
            endpoint: e.into(),
            count,
            error_rate: err,
            p95_latency_ms: p95,
            ..Default::default()
        };
        let svc = |ns: &str, s: &str| ServiceRow {
            namespace: ns.into(),
            service: s.into(),
            ..Default::default()
        };
        Panes {
            services: Services {
                services: vec![svc("", "nginx"), svc("shop", "checkout")],
                ..Default::default()
            },
            endpoints: Endpoints {
                endpoints: vec![
                    ep("nginx", "GET", "/api/users/{id}", 100, 0.0, 1.0),
                    ep("nginx", "GET", "/api/fail", 10, 1.0, 0.5),
                    ep("checkout", "POST", "/api/orders", 50, 0.1, 9.0),
                ],
                ..Default::default()
            },
            clients: Clients {
                clients: vec![
                    ClientRow {
                        client: "10.0.0.1".into(),
                        count: 90,
                        rate_limited: 1,
                        ..Default::default()
                    },
                    ClientRow {
                        client: "key:abc".into(),
                        count: 20,
                        rate_limited: 7,
                        auth_failures: 3,
                        ..Default::default()
                    },
                ],
            },
            ..Default::default()
        }
    }

    fn endpoint_names(v: &View, p: &Panes) -> Vec<String> {
        v.endpoints(p).iter().map(|e| e.endpoint.clone()).collect()
    }

    #[rstest]
    #[case::count(EndpointSort::Count, &["/api/users/{id}", "/api/orders", "/api/fail"])]
    #[case::error_rate(EndpointSort::ErrorRate, &["/api/fail", "/api/orders", "/api/users/{id}"])]
    #[case::p95(EndpointSort::P95, &["/api/orders", "/api/users/{id}", "/api/fail"])]
    fn endpoints_sort_descending(#[case] sort: EndpointSort, #[case] want: &[&str]) {
        let v = View {
            endpoint_sort: sort,
            ..Default::default()
        };
        assert_eq!(endpoint_names(&v, &panes()), want);
    }

    #[rstest]
    fn the_filter_and_the_service_narrow_the_rows() {
        let p = panes();
        let mut v = View {
            filter: "USERS".into(),
            ..Default::default()
        };
        assert_eq!(endpoint_names(&v, &p), ["/api/users/{id}"]);
        v.filter.clear();
        v.service = Some("nginx".into());
        assert_eq!(endpoint_names(&v, &p), ["/api/users/{id}", "/api/fail"]);
        v.filter = "key:".into();
        let clients: Vec<&str> = v.clients(&p).iter().map(|c| c.client.as_str()).collect();
        assert_eq!(clients, ["key:abc"]);
    }

    #[rstest]
    fn clients_sort_by_429s() {
        let v = View {
            client_sort: ClientSort::RateLimited,
            ..Default::default()
        };
        let p = panes();
        assert_eq!(v.clients(&p)[0].client, "key:abc");
    }

    #[rstest]
    fn switching_service_cycles_through_all() {
        let p = panes();
        let mut v = View::default();
        let mut seen = Vec::new();
        for _ in 0..3 {
            v.switch_service(&p, true);
            seen.push(v.service.clone());
        }
        assert_eq!(
            seen,
            [Some("nginx".into()), Some("shop/checkout".into()), None]
        );
        v.switch_service(&p, false);
        assert_eq!(v.service.as_deref(), Some("shop/checkout"));
        assert_eq!(v.services(&p).len(), 1);
    }

    #[rstest]
    fn recent_rate_skips_the_partial_second() {
        let s = ServiceSeries {
            requests: vec![0, 10, 10, 10, 99],
            ..Default::default()
        };
        assert_eq!(s.recent_rate(3), 10.0);
        assert_eq!(s.recent_rate(10), 3.0);
    }
}
