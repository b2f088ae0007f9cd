//! Service names: the workload on Kubernetes, the process name for a host service, a name from
//! config, `port-N` when nothing is known; and the `[[services]]` rules that rename or exclude.

use agent_core::server::{Workload, WorkloadKind};
use serde::Deserialize;

/// One `[[services]]` rule. Every matcher given must match; the first matching rule wins.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceRule {
    pub namespace: Option<String>,
    pub workload: Option<String>,
    /// Executable name of the serving process (`nginx`).
    pub process: Option<String>,
    pub port: Option<u16>,
    /// The service name to use.
    pub name: Option<String>,
    /// Do not watch these servers at all.
    pub exclude: bool,
}

impl ServiceRule {
    /// Checks one rule; the error is (key below the rule, why).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let matchers = [
            self.namespace.is_some(),
            self.workload.is_some(),
            self.process.is_some(),
            self.port.is_some(),
        ];
        if !matchers.contains(&true) {
            return Err((
                "namespace",
                "a rule needs at least one of namespace, workload, process, port".into(),
            ));
        }
        if self.port == Some(0) {
            return Err(("port", "invalid port 0".into()));
        }
        match (&self.name, self.exclude) {
            (Some(_), true) => Err(("exclude", "set either name or exclude, not both".into())),
            (None, false) => Err(("name", "set name (rename) or exclude = true".into())),
            (Some(n), false) if n.is_empty() || n.len() > 253 => {
                Err(("name", "must be 1-253 characters".into()))
            }
            _ => Ok(()),
        }
    }

    fn matches(&self, s: &Subject<'_>) -> bool {
        self.namespace.as_deref().is_none_or(|n| n == s.namespace)
            && self
                .workload
                .as_deref()
                .is_none_or(|w| Some(w) == s.workload)
            && self.process.as_deref().is_none_or(|p| Some(p) == s.process)
            && self.port.is_none_or(|p| p == s.port)
    }
}

/// What naming looks at.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub namespace: &'a str,
    pub workload: Option<&'a str>,
    pub process: Option<&'a str>,
    pub port: u16,
}

/// The name of a server, or `None` when a rule excludes it.
pub fn service_name(rules: &[ServiceRule], s: &Subject<'_>) -> Option<String> {
    if let Some(rule) = rules.iter().find(|r| r.matches(s)) {
        return rule.name.clone();
    }
    Some(
        s.workload
            .or(s.process)
            .map_or_else(|| format!("port-{}", s.port), str::to_owned),
    )
}

/// The alphabet of Kubernetes' generated name suffixes (no vowels, no 0, 1, 3).
fn generated(s: &str) -> bool {
    s.bytes()
        .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
}

/// The workload a pod name suggests when the API cannot say: `web-7d9f8b6c5-x2k4p` is
/// Deployment `web` (pod-template hash and suffix), `report-28861920-abcde` is CronJob
/// `report` (scheduled minute and suffix); `db-0` (StatefulSet ordinal) and `agent-x2k4p`
/// (DaemonSet or Job suffix) give a name whose kind is not known; anything else is the pod.
pub fn workload_from_pod_name(pod: &str) -> Workload {
    let parts: Vec<&str> = pod.split('-').collect();
    let n = parts.len();
    let head = |k: usize| parts[..n - k].join("-");
    let named = |kind, name: String| Workload {
        kind,
        name: name.into(),
    };
    if n >= 3 && parts[n - 1].len() == 5 && generated(parts[n - 1]) {
        let hash = parts[n - 2];
        if (6..=10).contains(&hash.len()) && generated(hash) {
            return named(Some(WorkloadKind::Deployment), head(2));
        }
        if hash.len() >= 8 && hash.bytes().all(|b| b.is_ascii_digit()) {
            return named(Some(WorkloadKind::CronJob), head(2));
        }
    }
    if n >= 2 {
        let last = parts[n - 1];
        let ordinal = !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit());
        if ordinal || (last.len() == 5 && generated(last)) {
            return named(None, head(1));
        }
    }
    named(Some(WorkloadKind::Pod), pod.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::deployment("checkout-7d9f8b6c5-x2k4p", Some(WorkloadKind::Deployment), "checkout")]
    #[case::deployment_dashed_name(
        "api-gateway-5c4d7f9b8-zq2lm",
        Some(WorkloadKind::Deployment),
        "api-gateway"
    )]
    #[case::cronjob("report-28861920-b7x4q", Some(WorkloadKind::CronJob), "report")]
    #[case::statefulset_ordinal("db-0", None, "db")]
    #[case::daemonset_or_job("agent-x2k4p", None, "agent")]
    #[case::bare_pod("debug", Some(WorkloadKind::Pod), "debug")]
    #[case::vowels_are_not_generated("my-app-review", Some(WorkloadKind::Pod), "my-app-review")]
    fn pod_names_suggest_workloads(
        #[case] pod: &str,
        #[case] kind: Option<WorkloadKind>,
        #[case] name: &str,
    ) {
        let w = workload_from_pod_name(pod);
        assert_eq!((w.kind, &*w.name), (kind, name));
    }

    fn subject<'a>(
        ns: &'a str,
        workload: Option<&'a str>,
        process: Option<&'a str>,
    ) -> Subject<'a> {
        Subject {
            namespace: ns,
            workload,
            process,
            port: 8080,
        }
    }

    #[test]
    fn names_are_workload_then_process_then_port() {
        assert_eq!(
            service_name(&[], &subject("shop", Some("web"), Some("nginx"))),
            Some("web".into())
        );
        assert_eq!(
            service_name(&[], &subject("", None, Some("nginx"))),
            Some("nginx".into())
        );
        assert_eq!(
            service_name(&[], &subject("", None, None)),
            Some("port-8080".into())
        );
    }

    #[test]
    fn the_first_matching_rule_renames_or_excludes() {
        let rules = vec![
            ServiceRule {
                namespace: Some("kube-system".into()),
                exclude: true,
                ..Default::default()
            },
            ServiceRule {
                process: Some("nginx".into()),
                port: Some(8080),
                name: Some("edge".into()),
                ..Default::default()
            },
            ServiceRule {
                process: Some("nginx".into()),
                name: Some("never-reached-for-8080".into()),
                ..Default::default()
            },
        ];
        assert_eq!(
            service_name(&rules, &subject("kube-system", Some("dns"), None)),
            None
        );
        assert_eq!(
            service_name(&rules, &subject("", None, Some("nginx"))),
            Some("edge".into())
        );
        let other_port = Subject {
            port: 9090,
            ..subject("", None, Some("nginx"))
        };
        assert_eq!(
            service_name(&rules, &other_port),
            Some("never-reached-for-8080".into())
        );
    }

    #[rstest]
    #[case::no_matcher(ServiceRule { name: Some("x".into()), ..Default::default() }, "namespace")]
    #[case::no_action(ServiceRule { port: Some(1), ..Default::default() }, "name")]
    #[case::both(ServiceRule { port: Some(1), name: Some("x".into()), exclude: true, ..Default::default() }, "exclude")]
    #[case::port_zero(ServiceRule { port: Some(0), exclude: true, ..Default::default() }, "port")]
    fn invalid_rules_name_their_key(#[case] rule: ServiceRule, #[case] key: &str) {
        assert_eq!(rule.validate().map_err(|e| e.0), Err(key));
    }
}
