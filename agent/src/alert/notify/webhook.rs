//! `--alert-webhook URL`: POSTs each notification as JSON.

use std::time::Duration;

use super::{Notification, NotifyError};

pub struct WebhookNotifier {
    url: String,
    client: reqwest::Client,
}

impl WebhookNotifier {
    pub fn new(url: &str, timeout: Duration) -> Result<WebhookNotifier, NotifyError> {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
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
