//! `--alertmanager-url URL`: POSTs `{url}/api/v2/alerts` with Alertmanager's postable alerts.
//!
//! A firing alert is sent without `endsAt` (Alertmanager then keeps it for its resolve_timeout)
//! and re-sent every `alertmanager_resend_secs` while it fires; a resolved one carries `endsAt`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::webhook::{check_status, http_client};
use super::{Notification, NotifyError, Status};
use crate::tls::TlsConfig;

pub struct AlertmanagerNotifier {
    url: String,
    generator_url: String,
    client: reqwest::Client,
}

/// One element of the POST body (Alertmanager API v2 `postableAlert`).
#[derive(Debug, Serialize)]
pub struct PostableAlert {
    pub labels: BTreeMap<&'static str, String>,
    pub annotations: BTreeMap<&'static str, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt", skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

impl AlertmanagerNotifier {
    pub fn new(
        base: &str,
        generator_url: &str,
        tls: &TlsConfig,
        timeout: Duration,
    ) -> Result<AlertmanagerNotifier, NotifyError> {
        let client = http_client(tls, timeout)?;
        Ok(AlertmanagerNotifier {
            url: format!("{}/api/v2/alerts", base.trim_end_matches('/')),
            generator_url: generator_url.to_owned(),
            client,
        })
    }

    pub async fn deliver(&self, n: &Notification) -> Result<(), NotifyError> {
        let body = [self.postable(n)];
        let resp = self.client.post(&self.url).json(&body).send().await?;
        check_status(resp).await
    }

    pub fn postable(&self, n: &Notification) -> PostableAlert {
        let mut labels = BTreeMap::from([
            ("alertname", n.name.to_owned()),
            ("severity", n.severity.as_str().to_owned()),
            ("service", n.service.clone()),
            ("instance", n.instance.clone()),
        ]);
        if !n.namespace.is_empty() {
            labels.insert("namespace", n.namespace.clone());
        }
        if let Some(e) = &n.endpoint {
            labels.insert("endpoint", e.clone());
        }
        if let Some(m) = &n.method {
            labels.insert("method", m.clone());
        }
        let annotations = BTreeMap::from([
            ("summary", n.summary.clone()),
            ("description", n.description()),
        ]);
        PostableAlert {
            labels,
            annotations,
            starts_at: n.started_at.clone(),
            ends_at: match n.status {
                Status::Firing => None,
                Status::Resolved => n.ended_at.clone(),
            },
            generator_url: self.generator_url.clone(),
        }
    }
}
