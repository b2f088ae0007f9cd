//! Turns a snapshot into checks: every rule kind and severity for every service, and for every
//! endpoint row an `[[alerts.endpoints]]` rule covers.
//!
//! Services use the snapshot's sliding figures (5-minute error rate and p95, requests in the
//! last minute); the request count that gates error-rate and latency rules is the growth of the
//! service's total over `window_secs`. Endpoint rows only carry totals since start, so their
//! error rate is the growth of errors over the growth of requests in `window_secs`, their
//! traffic the growth of requests in the last minute, and their p95 the since-start p95 of the
//! endpoint (the snapshot has no windowed quantile per endpoint).

use std::collections::HashMap;

use agent_core::aggregate::snapshot::{EndpointStats, ServiceStats, Snapshot};

use super::config::{AlertConfig, EndpointRule};
use super::history::{Counts, History};
use super::rules::{AlertKey, Check, RuleKind, Severity, Thresholds};

const SECOND_NS: u64 = 1_000_000_000;
const MINUTE_NS: u64 = 60 * SECOND_NS;

/// The figures a scope is judged on.
struct Figures {
    /// Requests in the window.
    requests: u64,
    error_rate: f64,
    p95_s: f64,
    rpm: f64,
}

pub struct Evaluator {
    base: Thresholds,
    endpoint_rules: Vec<EndpointRule>,
    window_ns: u64,
    min_requests: u64,
    /// Per service name, and per (service, method, endpoint) covered by a rule.
    /// (namespace, service) -> history.
    services: HashMap<(String, String), History>,
    /// (namespace, service, method, endpoint) -> history.
    endpoints: HashMap<(String, String, String, String), History>,
}

impl Evaluator {
    pub fn new(cfg: &AlertConfig) -> Evaluator {
        Evaluator {
            base: cfg.thresholds(),
            endpoint_rules: cfg.endpoints.clone(),
            window_ns: cfg.window_secs.saturating_mul(SECOND_NS),
            min_requests: cfg.min_requests,
            services: HashMap::new(),
            endpoints: HashMap::new(),
        }
    }

    /// Every check for this snapshot, in a stable order.
    pub fn evaluate(&mut self, snap: &Snapshot) -> Vec<Check> {
        let now = snap.taken_ns;
        let mut checks = Vec::new();
        for s in &snap.services {
            let figures = self.service_figures(now, s);
            let key = |kind, severity| AlertKey {
                kind,
                severity,
                namespace: s.namespace.clone(),
                service: s.service.clone(),
                method: None,
                endpoint: None,
            };
            self.push_checks(&mut checks, &figures, &self.base, key);
        }
        for e in &snap.endpoints {
            let Some(rule) = self
                .endpoint_rules
                .iter()
                .find(|r| r.matches(&e.service, &e.method, &e.endpoint))
            else {
                continue;
            };
            let thresholds = rule.apply(&self.base);
            let figures = self.endpoint_figures(now, e);
            let key = |kind, severity| AlertKey {
                kind,
                severity,
                namespace: e.namespace.clone(),
                service: e.service.clone(),
                method: Some(e.method.clone()),
                endpoint: Some(e.endpoint.clone()),
            };
            self.push_checks(&mut checks, &figures, &thresholds, key);
        }
        let live: std::collections::HashSet<(&str, &str)> = snap
            .services
            .iter()
            .map(|s| (s.namespace.as_str(), s.service.as_str()))
            .collect();
        self.services
            .retain(|(ns, name), _| live.contains(&(ns.as_str(), name.as_str())));
        checks
    }

    fn service_figures(&mut self, now: u64, s: &ServiceStats) -> Figures {
        let current = Counts {
            requests: s.requests,
            errors: 0,
        };
        let (window, spacing) = (self.window_ns, self.spacing());
        let history = self
            .services
            .entry((s.namespace.clone(), s.service.clone()))
            .or_default();
        let requests = history.delta(now, window, current).requests;
        history.push(now, current, spacing, window);
        Figures {
            requests,
            error_rate: s.error_rate_5m,
            p95_s: s.p95_5m_s,
            rpm: s.requests_last_minute as f64,
        }
    }

    fn endpoint_figures(&mut self, now: u64, e: &EndpointStats) -> Figures {
        let current = Counts {
            requests: e.count,
            errors: e.errors,
        };
        let (window, spacing) = (self.window_ns, self.spacing());
        let key = (
            e.namespace.clone(),
            e.service.clone(),
            e.method.clone(),
            e.endpoint.clone(),
        );
        let history = self.endpoints.entry(key).or_default();
        let in_window = history.delta(now, window, current);
        let last_minute = history.delta(now, MINUTE_NS, current);
        history.push(now, current, spacing, window.max(MINUTE_NS));
        let error_rate = if in_window.requests == 0 {
            0.0
        } else {
            in_window.errors as f64 / in_window.requests as f64
        };
        Figures {
            requests: in_window.requests,
            error_rate,
            p95_s: e.p95_s,
            rpm: last_minute.requests as f64,
        }
    }

    /// History resolution: a 60th of the window, between 1 and 5 seconds.
    fn spacing(&self) -> u64 {
        (self.window_ns / 60).clamp(SECOND_NS, 5 * SECOND_NS)
    }

    fn push_checks(
        &self,
        checks: &mut Vec<Check>,
        f: &Figures,
        t: &Thresholds,
        key: impl Fn(RuleKind, Severity) -> AlertKey,
    ) {
        let judged = f.requests >= self.min_requests;
        for kind in RuleKind::ALL {
            let (value, gated) = match kind {
                RuleKind::ErrorRate => (f.error_rate, true),
                RuleKind::LatencyP95 => (f.p95_s, true),
                RuleKind::Traffic => (f.rpm, false),
            };
            for severity in Severity::ALL {
                let threshold = kind.threshold(severity, t);
                let breached = value > threshold && (judged || !gated);
                checks.push(Check {
                    key: key(kind, severity),
                    value,
                    threshold,
                    breached,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(taken_s: u64, requests: u64, error_rate: f64, p95_s: f64, rpm: u64) -> Snapshot {
        Snapshot {
            taken_ns: taken_s * SECOND_NS,
            services: vec![ServiceStats {
                service: "port-8080".into(),
                requests,
                error_rate_5m: error_rate,
                p95_5m_s: p95_s,
                requests_last_minute: rpm,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn breached(checks: &[Check]) -> Vec<(RuleKind, Severity)> {
        checks
            .iter()
            .filter(|c| c.breached)
            .map(|c| (c.key.kind, c.key.severity))
            .collect()
    }

    #[test]
    fn a_service_gets_three_rules_at_two_severities() {
        let mut e = Evaluator::new(&AlertConfig::default());
        let checks = e.evaluate(&snap(100, 100, 0.0, 0.01, 10));
        assert_eq!(checks.len(), 6);
        assert!(breached(&checks).is_empty());
    }

    #[test]
    fn critical_error_rate_breaches_warning_and_critical() {
        let mut e = Evaluator::new(&AlertConfig::default());
        let checks = e.evaluate(&snap(100, 100, 0.2, 0.01, 10));
        assert_eq!(
            breached(&checks),
            vec![
                (RuleKind::ErrorRate, Severity::Warning),
                (RuleKind::ErrorRate, Severity::Critical)
            ]
        );
    }

    #[test]
    fn error_rate_and_latency_wait_for_the_minimum_request_count() {
        let mut e = Evaluator::new(&AlertConfig::default());
        // 9 requests, all failed and slow: below min_requests (10), only traffic is judged.
        assert!(breached(&e.evaluate(&snap(100, 9, 1.0, 9.0, 9))).is_empty());
        assert_eq!(breached(&e.evaluate(&snap(101, 10, 1.0, 9.0, 10))).len(), 4);
    }

    #[test]
    fn traffic_is_judged_on_the_last_minute() {
        let mut e = Evaluator::new(&AlertConfig::default());
        let got = breached(&e.evaluate(&snap(100, 5_000, 0.0, 0.0, 1_500)));
        assert_eq!(got, vec![(RuleKind::Traffic, Severity::Warning)]);
    }

    #[test]
    fn endpoint_rules_use_window_deltas_of_the_totals() {
        let cfg: AlertConfig = toml::from_str(
            "window_secs = 60\nmin_requests = 5\n[[endpoints]]\nendpoint = \"/pay\"\nerror_rate_warning = 0.2\nerror_rate_critical = 0.5\n",
        )
        .expect("config");
        let mut e = Evaluator::new(&cfg);
        let row = |count, errors| EndpointStats {
            service: "port-8080".into(),
            method: "POST".into(),
            endpoint: "/pay".into(),
            count,
            errors,
            ..Default::default()
        };
        let at = |s: u64, count, errors| Snapshot {
            taken_ns: s * SECOND_NS,
            endpoints: vec![
                row(count, errors),
                EndpointStats {
                    endpoint: "/other".into(),
                    ..row(count, errors)
                },
            ],
            ..Default::default()
        };
        // A bad start: 60 errors in 100 requests.
        let first = e.evaluate(&at(0, 100, 60));
        assert_eq!(first.len(), 6, "only the covered endpoint is checked");
        assert_eq!(breached(&first).len(), 2);
        // Two minutes later, 100 clean requests in the last minute: the old errors left the window.
        e.evaluate(&at(60, 150, 60));
        let later = e.evaluate(&at(120, 250, 60));
        let rate = later
            .iter()
            .find(|c| c.key.kind == RuleKind::ErrorRate)
            .expect("check")
            .value;
        assert_eq!(rate, 0.0);
        let rpm = later
            .iter()
            .find(|c| c.key.kind == RuleKind::Traffic)
            .expect("check")
            .value;
        assert_eq!(rpm, 100.0);
        assert_eq!(later[0].key.endpoint.as_deref(), Some("/pay"));
    }
}
