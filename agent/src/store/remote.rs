//! The Redis usage store: the SPEC keys, written as one pipelined MULTI/EXEC per flush
//! (HINCRBY per field, EXPIRE per key), read with one pipeline per query.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::key::{Family, UsageKind, daily_redis_key};
use super::pending::Batch;
use super::{StoreError, Usage};
use crate::tls::TlsConfig;

/// Key of the learned route templates (not a usage key; shared by the agents of a fleet).
pub const ROUTES_KEY: &str = "apitap:routes";

#[derive(Clone)]
pub struct Remote {
    conn: ConnectionManager,
    daily_ttl_secs: i64,
    hourly_ttl_secs: i64,
}

fn redis_err(e: redis::RedisError) -> StoreError {
    StoreError::Redis(e.to_string())
}

/// A client for `url`; a `rediss://` URL uses rustls (ring) with `tls`: its CA file instead of
/// the system's store, its client certificate (mutual TLS), or no verification at all.
fn client(url: &str, tls: &TlsConfig) -> Result<redis::Client, StoreError> {
    let invalid = |e: &dyn std::fmt::Display| StoreError::InvalidUrl(e.to_string());
    if !url.starts_with("rediss://") {
        return redis::Client::open(url).map_err(|e| invalid(&e));
    }
    crate::tls::install_provider();
    tls.warn_if_insecure("redis");
    // redis reads "#insecure" on a rediss:// URL as "do not verify the certificate".
    let url = match (tls.insecure_skip_verify, url.contains("#insecure")) {
        (true, false) => format!("{url}#insecure"),
        _ => url.to_string(),
    };
    if tls.ca_file.is_none() && tls.cert_file.is_none() {
        // The system's CA store (or no verification): redis's own TLS setup does that.
        return redis::Client::open(url).map_err(|e| invalid(&e));
    }
    let pem = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| invalid(&format_args!("{}: {e}", path.display())))
    };
    let client_tls = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: pem(cert)?,
            client_key: pem(key)?,
        }),
        _ => None,
    };
    let root_cert = tls.ca_file.as_deref().map(pem).transpose()?;
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(|e| invalid(&e))
}

impl Remote {
    /// Prepares a connection to `url` without waiting for Redis: the agent starts (and keeps
    /// increments) while Redis is down; the manager reconnects on its own.
    pub fn open(
        url: &str,
        tls: &TlsConfig,
        daily_retention_days: u32,
        hourly_retention_days: u32,
    ) -> Result<Remote, StoreError> {
        let client = client(url, tls)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(redis_err)?;
        Ok(Remote {
            conn,
            daily_ttl_secs: i64::from(daily_retention_days) * 86_400,
            hourly_ttl_secs: i64::from(hourly_retention_days) * 86_400,
        })
    }

    /// One round trip for the whole batch: MULTI, HINCRBY each field, EXPIRE each key, EXEC.
    /// Redis applies all of it or none of it.
    pub async fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (group, fields) in batch {
            let key = group.redis_key();
            for (field, n) in fields {
                pipe.hincr(&key, &**field, i64::try_from(*n).unwrap_or(i64::MAX))
                    .ignore();
            }
            let ttl = match group.family {
                Family::Hourly => self.hourly_ttl_secs,
                Family::Daily | Family::DailyClient => self.daily_ttl_secs,
            };
            pipe.expire(key, ttl).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(redis_err)
    }

    /// Daily counts of `kind` for `dates`, one pipelined HGETALL per date.
    pub async fn usage(&self, kind: UsageKind, dates: &[String]) -> Result<Usage, StoreError> {
        let mut pipe = redis::pipe();
        for date in dates {
            pipe.hgetall(daily_redis_key(kind, date));
        }
        let mut conn = self.conn.clone();
        let days: Vec<HashMap<String, u64>> =
            pipe.query_async(&mut conn).await.map_err(redis_err)?;
        let mut out: Usage = BTreeMap::new();
        for (date, fields) in dates.iter().zip(days) {
            if !fields.is_empty() {
                out.insert(date.clone(), fields.into_iter().collect());
            }
        }
        Ok(out)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(redis_err)
    }

    pub async fn save_routes(&self, json: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(ROUTES_KEY)
            .arg(json)
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_err)
    }

    pub async fn load_routes(&self) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(ROUTES_KEY)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)
    }
}
