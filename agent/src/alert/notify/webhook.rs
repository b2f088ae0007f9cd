//! `--alert-webhook URL`: POSTs each notification as JSON (http:// or https://).

use std::time::Duration;

use super::{Notification, NotifyError};
use crate::tls::TlsConfig;

pub struct WebhookNotifier {
    url: String,
    client: reqwest::Client,
}

impl WebhookNotifier {
    pub fn new(
        url: &str,
        tls: &TlsConfig,
        timeout: Duration,
    ) -> Result<WebhookNotifier, NotifyError> {
        let client = http_client(tls, timeout)?;
        Ok(WebhookNotifier {
            url: url.to_owned(),
            client,
        })
    }

    pub async fn deliver(&self, n: &Notification) -> Result<(), NotifyError> {
        let resp = self.client.post(&self.url).json(n).send().await?;
        check_status(resp).await
    }
}

/// A reqwest client on the agent's rustls (ring) configuration for `tls`.
pub fn http_client(tls: &TlsConfig, timeout: Duration) -> Result<reqwest::Client, NotifyError> {
    crate::tls::install_provider();
    let config = tls
        .client_config()
        .map_err(|e| NotifyError::Tls(e.to_string()))?;
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .tls_backend_preconfigured(config)
        .build()?)
}

/// 2xx is delivered; anything else is an error carrying the start of the body.
pub async fn check_status(resp: reqwest::Response) -> Result<(), NotifyError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let mut body = resp.text().await.unwrap_or_default();
    body.truncate(body.floor_char_boundary(200));
    Err(NotifyError::Status {
        status: status.as_u16(),
        body,
    })
}
