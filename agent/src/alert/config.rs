//! `[alerts]`: thresholds, lifecycle timings and notifiers. The threshold keys and
//! `[[alerts.endpoints]]` overrides keep the names of the config file the agent already reads.

use serde::Deserialize;

use super::AlertError;
use super::rules::Thresholds;
use crate::tls::TlsConfig;

/// Alerting settings; every field has a documented default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// Error rate (0-1) for a warning / a critical alert. Defaults 0.05 / 0.10.
    pub error_rate_warning: f64,
    pub error_rate_critical: f64,
    /// p95 latency in milliseconds. Defaults 1000 / 5000.
    pub p95_warning_ms: u64,
    pub p95_critical_ms: u64,
    /// Requests per minute. Defaults 1000 / 2000.
    pub rpm_warning: u64,
    pub rpm_critical: u64,
    /// Window of the error-rate and latency rules. Services use the snapshot's 5-minute figures;
    /// this sets the window of endpoint error rates and of the request count below. Default 300.
    pub window_secs: u64,
    /// Error-rate and latency rules stay quiet until the window holds this many requests: 1
    /// failure in 3 requests is not an outage, and a p95 of 3 requests is noise. Default 10.
    pub min_requests: u64,
    /// A breached rule is pending this long before it fires. Default 30.
    pub for_secs: u64,
    /// A still-firing alert is notified again after this long; 0 never. Default 3600.
    pub repeat_interval_secs: u64,
    /// Resolved alerts stay listed by `GET /api/v1/alerts` this long. Default 3600.
    pub recent_secs: u64,
    /// Write every notification to the agent log (tracing, warn level). Default true.
    pub log: bool,
    /// Webhook receiving notifications as JSON (flag --alert-webhook); http:// or https://.
    pub webhook: Option<String>,
    /// Alertmanager base URL (flag --alertmanager-url); alerts go to {url}/api/v2/alerts.
    pub alertmanager_url: Option<String>,
    /// Firing alerts are re-sent to Alertmanager this often, as Prometheus does, or Alertmanager
    /// resolves them on its own after its resolve_timeout. Default 60.
    pub alertmanager_resend_secs: u64,
    /// Link sent as Alertmanager's generatorURL. Default http://127.0.0.1:9464/api/v1/alerts.
    pub generator_url: String,
    /// `[alerts.tls_config]`: CA file, client certificate and key of the https webhook and
    /// Alertmanager (mutual TLS when they ask for a client certificate).
    pub tls_config: TlsConfig,
    pub smtp: Option<SmtpConfig>,
    /// Notifications waiting per notifier; beyond this they are dropped and counted. Default 256.
    pub queue_capacity: usize,
    /// Delivery attempts per notification and notifier (exponential backoff). Default 5.
    pub retry_attempts: u32,
    /// First retry delay, doubled each attempt up to 30 s. Default 500.
    pub retry_initial_ms: u64,
    /// Time limit of one delivery attempt. Default 10000.
    pub timeout_ms: u64,
    /// Per-endpoint overrides; each matching endpoint gets its own alerts.
    pub endpoints: Vec<EndpointRule>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        let t = Thresholds::default();
        AlertConfig {
            error_rate_warning: t.error_rate_warning,
            error_rate_critical: t.error_rate_critical,
            p95_warning_ms: t.p95_warning_ms,
            p95_critical_ms: t.p95_critical_ms,
            rpm_warning: t.rpm_warning,
            rpm_critical: t.rpm_critical,
            window_secs: 300,
            min_requests: 10,
            for_secs: 30,
            repeat_interval_secs: 3_600,
            recent_secs: 3_600,
            log: true,
            webhook: None,
            alertmanager_url: None,
            alertmanager_resend_secs: 60,
            generator_url: "http://127.0.0.1:9464/api/v1/alerts".into(),
            tls_config: TlsConfig::default(),
            smtp: None,
            queue_capacity: 256,
            retry_attempts: 5,
            retry_initial_ms: 500,
            timeout_ms: 10_000,
            endpoints: Vec::new(),
        }
    }
}

/// `[alerts.smtp]`. The password comes from this file or the environment variable
/// APITAP_SMTP_PASSWORD, never from the command line; it is only sent inside TLS.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub server: String,
    /// Default 587 with STARTTLS, 465 with implicit TLS, 25 without TLS.
    #[serde(default)]
    pub port: Option<u16>,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// "starttls" (default: plain connection upgraded, refused if the server does not offer
    /// it), "implicit" (TLS from the first byte, SMTPS) or "none".
    #[serde(default)]
    pub tls: SmtpTls,
    /// `[alerts.smtp.tls_config]`: CA file, client certificate, insecure_skip_verify.
    #[serde(default)]
    pub tls_config: TlsConfig,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    #[default]
    Starttls,
    Implicit,
    None,
}

impl SmtpConfig {
    /// The configured port, else the usual one for the TLS mode.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        })
    }
}

/// `[[alerts.endpoints]]`: thresholds for one endpoint; unset values inherit `[alerts]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointRule {
    /// Route template, e.g. `/api/users/{id}`.
    pub endpoint: String,
    /// Only this method (any when unset).
    pub method: Option<String>,
    /// Only this service (any when unset).
    pub service: Option<String>,
    pub error_rate_warning: Option<f64>,
    pub error_rate_critical: Option<f64>,
    pub p95_warning_ms: Option<u64>,
    pub p95_critical_ms: Option<u64>,
    pub rpm_warning: Option<u64>,
    pub rpm_critical: Option<u64>,
}

impl EndpointRule {
    /// These overrides over the service-wide thresholds.
    pub fn apply(&self, base: &Thresholds) -> Thresholds {
        Thresholds {
            error_rate_warning: self.error_rate_warning.unwrap_or(base.error_rate_warning),
            error_rate_critical: self.error_rate_critical.unwrap_or(base.error_rate_critical),
            p95_warning_ms: self.p95_warning_ms.unwrap_or(base.p95_warning_ms),
            p95_critical_ms: self.p95_critical_ms.unwrap_or(base.p95_critical_ms),
            rpm_warning: self.rpm_warning.unwrap_or(base.rpm_warning),
            rpm_critical: self.rpm_critical.unwrap_or(base.rpm_critical),
        }
    }

    /// Whether this rule covers a snapshot row.
    pub fn matches(&self, service: &str, method: &str, endpoint: &str) -> bool {
        self.endpoint == endpoint
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.service.as_deref().is_none_or(|s| s == service)
    }
}

impl AlertConfig {
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            error_rate_warning: self.error_rate_warning,
            error_rate_critical: self.error_rate_critical,
            p95_warning_ms: self.p95_warning_ms,
            p95_critical_ms: self.p95_critical_ms,
            rpm_warning: self.rpm_warning,
            rpm_critical: self.rpm_critical,
        }
    }

    /// Checks every value once; the message names the key.
    pub fn validate(&self) -> Result<(), AlertError> {
        let bad = |key: String, why: &str| {
            Err(AlertError::Invalid {
                key,
                why: why.to_owned(),
            })
        };
        check_thresholds("alerts", &self.thresholds())?;
        for (i, rule) in self.endpoints.iter().enumerate() {
            if !rule.endpoint.starts_with('/') {
                return bad(
                    format!("alerts.endpoints.{i}.endpoint"),
                    "must be a route starting with /",
                );
            }
            check_thresholds(
                &format!("alerts.endpoints.{i}"),
                &rule.apply(&self.thresholds()),
            )?;
        }
        if self.window_secs < 60 || self.window_secs > 86_400 {
            return bad("alerts.window_secs".into(), "must be 60-86400");
        }
        if self.queue_capacity == 0 {
            return bad("alerts.queue_capacity".into(), "must be at least 1");
        }
        if self.retry_attempts == 0 {
            return bad("alerts.retry_attempts".into(), "must be at least 1");
        }
        if self.timeout_ms == 0 {
            return bad("alerts.timeout_ms".into(), "must be at least 1");
        }
        for (key, url) in [
            ("alerts.webhook", &self.webhook),
            ("alerts.alertmanager_url", &self.alertmanager_url),
        ] {
            if let Some(url) = url
                && !url.starts_with("http://")
                && !url.starts_with("https://")
            {
                return bad(key.into(), "must be an http:// or https:// URL");
            }
        }
        let https = [&self.webhook, &self.alertmanager_url]
            .iter()
            .any(|u| u.as_deref().is_some_and(|u| u.starts_with("https://")));
        if self.tls_config.is_set() {
            if !https {
                return bad(
                    "alerts.tls_config".into(),
                    "applies to an https:// webhook or alertmanager_url only",
                );
            }
            if let Err(e) = self.tls_config.validate() {
                return bad("alerts.tls_config".into(), &e.to_string());
            }
        }
        if let Some(smtp) = &self.smtp {
            if smtp.server.is_empty() || smtp.from.is_empty() {
                return bad("alerts.smtp".into(), "needs server and from");
            }
            if smtp.to.is_empty() {
                return bad("alerts.smtp.to".into(), "needs at least one recipient");
            }
            if smtp.tls == SmtpTls::None && smtp.username.is_some() {
                return bad(
                    "alerts.smtp.tls".into(),
                    "a username and password are only sent inside TLS: use starttls or implicit",
                );
            }
            if smtp.tls == SmtpTls::None && smtp.tls_config.is_set() {
                return bad("alerts.smtp.tls_config".into(), "set, but tls = \"none\"");
            }
            if let Err(e) = smtp.tls_config.validate() {
                return bad("alerts.smtp.tls_config".into(), &e.to_string());
            }
        }
        Ok(())
    }
}

fn check_thresholds(scope: &str, t: &Thresholds) -> Result<(), AlertError> {
    let bad = |key: &str, why: &str| {
        Err(AlertError::Invalid {
            key: format!("{scope}.{key}"),
            why: why.to_owned(),
        })
    };
    for (key, v) in [
        ("error_rate_warning", t.error_rate_warning),
        ("error_rate_critical", t.error_rate_critical),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return bad(key, "must be between 0 and 1");
        }
    }
    if t.error_rate_critical < t.error_rate_warning {
        return bad(
            "error_rate_critical",
            "the critical threshold is below the warning one",
        );
    }
    if t.p95_critical_ms < t.p95_warning_ms {
        return bad(
            "p95_critical_ms",
            "the critical threshold is below the warning one",
        );
    }
    if t.rpm_critical < t.rpm_warning {
        return bad(
            "rpm_critical",
            "the critical threshold is below the warning one",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn defaults_are_the_spec_thresholds() {
        let c = AlertConfig::default();
        assert_eq!((c.error_rate_warning, c.error_rate_critical), (0.05, 0.10));
        assert_eq!(
            (
                c.p95_warning_ms,
                c.p95_critical_ms,
                c.rpm_warning,
                c.rpm_critical
            ),
            (1_000, 5_000, 1_000, 2_000)
        );
        assert_eq!(
            (c.for_secs, c.min_requests, c.repeat_interval_secs),
            (30, 10, 3_600)
        );
        assert!(c.validate().is_ok());
    }

    #[rstest]
    #[case::inverted_error_rate(
        "error_rate_warning = 0.5\nerror_rate_critical = 0.2\n",
        "alerts.error_rate_critical"
    )]
    #[case::inverted_endpoint_rpm(
        "[[endpoints]]\nendpoint = \"/b\"\nrpm_warning = 5000\n",
        "alerts.endpoints.0.rpm_critical"
    )]
    #[case::ftp_webhook("webhook = \"ftp://example.com/hook\"\n", "alerts.webhook")]
    #[case::tls_config_without_https(
        "webhook = \"http://127.0.0.1/hook\"\n[tls_config]\ninsecure_skip_verify = true\n",
        "alerts.tls_config"
    )]
    #[case::smtp_password_in_clear(
        "[smtp]\nserver = \"h\"\nfrom = \"a@b\"\nto = [\"c@d\"]\ntls = \"none\"\nusername = \"u\"\n",
        "alerts.smtp.tls"
    )]
    #[case::smtp_without_recipient(
        "[smtp]\nserver = \"127.0.0.1\"\nfrom = \"a@b\"\nto = []\n",
        "alerts.smtp.to"
    )]
    fn invalid_settings_name_their_key(#[case] toml_text: &str, #[case] key: &str) {
        let c: AlertConfig = toml::from_str(toml_text).expect("parses");
        let err = c.validate().expect_err("invalid").to_string();
        assert!(err.starts_with(key), "{err}");
    }

    #[test]
    fn endpoint_rules_inherit_and_match_case_insensitively() {
        let c: AlertConfig = toml::from_str(
            "p95_warning_ms = 200\n[[endpoints]]\nendpoint = \"/x\"\nmethod = \"get\"\nrpm_warning = 10\n",
        )
        .expect("parses");
        let t = c.endpoints[0].apply(&c.thresholds());
        assert_eq!(
            (t.p95_warning_ms, t.rpm_warning, t.rpm_critical),
            (200, 10, 2_000)
        );
        assert!(c.endpoints[0].matches("port-80", "GET", "/x"));
        assert!(!c.endpoints[0].matches("port-80", "POST", "/x"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<AlertConfig>("bogus = 1\n").is_err());
        assert!(
            toml::from_str::<AlertConfig>(
                "[smtp]\nserver = \"h\"\nfrom = \"a\"\nto = [\"b\"]\npass = \"x\"\n"
            )
            .is_err()
        );
    }
}
