//! The agent's JSON API as `apitap top` reads it: six GETs in parallel, a bearer token, a
//! timeout per round. Runs on its own task and hands whole rounds to the terminal loop.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

use super::model::{ClientSort, EndpointSort, Panes};

/// Rows asked for per table (the API's `top`).
const ROWS: u32 = 200;

/// Why a round failed, as the header shows it.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the agent refused the token (HTTP {0}): pass --token or set APITAP_API_TOKEN")]
    Auth(u16),
    #[error("agent unreachable: {0}")]
    Unreachable(String),
    #[error("{path}: HTTP {status}")]
    Status { path: String, status: u16 },
    #[error("{path}: unexpected answer: {reason}")]
    Body { path: String, reason: String },
}

/// What the next round asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub endpoint_sort: EndpointSort,
    pub client_sort: ClientSort,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    pub fn new(base: &str, token: &str, timeout: Duration) -> anyhow::Result<Client> {
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| anyhow::anyhow!("the API token contains characters a header cannot"))?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        // https agents are checked against the system's CAs, on the agent's one TLS stack.
        crate::tls::install_provider();
        let tls = crate::tls::TlsConfig::default().client_config()?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .default_headers(headers)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, FetchError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| FetchError::Unreachable(without_url(e)))?;
        match resp.status() {
            s if s.is_success() => {}
            s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                return Err(FetchError::Auth(s.as_u16()));
            }
            s => {
                return Err(FetchError::Status {
                    path: path.split('?').next().unwrap_or(path).to_string(),
                    status: s.as_u16(),
                });
            }
        }
        resp.json().await.map_err(|e| FetchError::Body {
            path: path.to_string(),
            reason: without_url(e),
        })
    }

    /// One round: every pane at (nearly) the same moment.
    pub async fn fetch(&self, q: Query) -> Result<Panes, FetchError> {
        let endpoints = format!(
            "/api/v1/endpoints?top={ROWS}&sort={}",
            q.endpoint_sort.param()
        );
        let clients = format!("/api/v1/clients?top={ROWS}&sort={}", q.client_sort.param());
        let (services, series, endpoints, clients, alerts, capture) = tokio::try_join!(
            self.get("/api/v1/services"),
            self.get("/api/v1/series"),
            self.get(&endpoints),
            self.get(&clients),
            self.get("/api/v1/alerts"),
            self.get("/api/v1/capture"),
        )?;
        Ok(Panes {
            services,
            series,
            endpoints,
            clients,
            alerts,
            capture,
        })
    }
}

/// reqwest's message without the URL it appends (the base URL is in the header already).
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Fetches a round every `every` (and at once when the query changes) until `results` closes.
pub async fn run(
    client: Client,
    every: Duration,
    mut query: watch::Receiver<Query>,
    results: mpsc::Sender<Result<Panes, FetchError>>,
) {
    loop {
        let q = *query.borrow_and_update();
        if results.send(client.fetch(q).await).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            changed = query.changed() => if changed.is_err() { return },
        }
    }
}
