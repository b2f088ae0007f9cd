//! What one usage increment is counted under: the three SPEC key families, shared by the
//! embedded tables and the Redis hashes.

use agent_core::Transaction;
use agent_core::time::{utc_date, utc_hour};

/// One counter of the usage store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UsageKey {
    /// Redis `usage:daily:{date}`, field `{endpoint}:{METHOD}`.
    Daily { date: String, field: String },
    /// Redis `usage:daily:{date}:client`, field the client.
    DailyClient { date: String, client: String },
    /// Redis `usage:hourly:{date}:{HH}`, field `{endpoint}:{METHOD}`.
    Hourly {
        date: String,
        hour: u8,
        field: String,
    },
}

/// Which daily family a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageKind {
    Endpoints,
    Clients,
}

impl UsageKey {
    /// The three keys one transaction increments. The endpoint is the route template (the raw
    /// path only when no template was assigned), the client the SPEC client id, else the IP.
    pub fn of(t: &Transaction) -> [UsageKey; 3] {
        let date = utc_date(t.start_ns);
        let endpoint = t
            .route
            .as_deref()
            .or(t.path.as_deref())
            .unwrap_or("unknown");
        let method = t.method.as_deref().unwrap_or("UNKNOWN");
        let field = format!("{endpoint}:{method}");
        let client = match (&t.client_id, t.client) {
            (Some(id), _) => id.clone(),
            (None, Some(addr)) => addr.ip().to_string(),
            (None, None) => "unknown".to_string(),
        };
        [
            UsageKey::Hourly {
                date: date.clone(),
                hour: utc_hour(t.start_ns),
                field: field.clone(),
            },
            UsageKey::DailyClient {
                date: date.clone(),
                client,
            },
            UsageKey::Daily { date, field },
        ]
    }

    /// The Redis key (SPEC "Usage store").
    pub fn redis_key(&self) -> String {
        match self {
            UsageKey::Daily { date, .. } => format!("usage:daily:{date}"),
            UsageKey::DailyClient { date, .. } => format!("usage:daily:{date}:client"),
            UsageKey::Hourly { date, hour, .. } => format!("usage:hourly:{date}:{hour:02}"),
        }
    }

    /// The hash field.
    pub fn field(&self) -> &str {
        match self {
            UsageKey::Daily { field, .. } | UsageKey::Hourly { field, .. } => field,
            UsageKey::DailyClient { client, .. } => client,
        }
    }

    pub fn is_hourly(&self) -> bool {
        matches!(self, UsageKey::Hourly { .. })
    }
}

/// The Redis key of one day of a daily family.
pub fn daily_redis_key(kind: UsageKind, date: &str) -> String {
    match kind {
        UsageKind::Endpoints => format!("usage:daily:{date}"),
        UsageKind::Clients => format!("usage:daily:{date}:client"),
    }
}

/// The `days` UTC dates ending with the day of `now_ns`, oldest first.
pub fn last_dates(now_ns: u64, days: u32) -> Vec<String> {
    const DAY_NS: u64 = 86_400 * 1_000_000_000;
    (0..u64::from(days))
        .rev()
        .map(|back| utc_date(now_ns.saturating_sub(back * DAY_NS)))
        .collect()
}

/// Nanoseconds since the UNIX epoch now (0 if the clock is before 1970).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    // 2026-11-25T05:52:01Z
    const TS: u64 = 1_795_585_921_000_000_000;

    fn tx(route: Option<&str>, client_id: Option<&str>) -> Transaction {
        Transaction {
            start_ns: TS,
            method: Some("GET".into()),
            path: Some("/api/users/42".into()),
            route: route.map(Into::into),
            client: Some("127.0.0.1:5555".parse().expect("addr")),
            client_id: client_id.map(Into::into),
            ..Transaction::default()
        }
    }

    #[rstest]
    #[case::route_and_client_id(
        Some("/api/users/{id}"),
        Some("key:ab12"),
        "/api/users/{id}:GET",
        "key:ab12"
    )]
    #[case::raw_path_without_route(None, Some("sub:alice"), "/api/users/42:GET", "sub:alice")]
    #[case::ip_without_client_id(Some("/api/users/{id}"), None, "/api/users/{id}:GET", "127.0.0.1")]
    fn keys_follow_the_spec(
        #[case] route: Option<&str>,
        #[case] client_id: Option<&str>,
        #[case] field: &str,
        #[case] client: &str,
    ) {
        let date = utc_date(TS);
        let [hourly, daily_client, daily] = UsageKey::of(&tx(route, client_id));
        assert_eq!(daily.redis_key(), format!("usage:daily:{date}"));
        assert_eq!(daily.field(), field);
        assert_eq!(
            daily_client.redis_key(),
            format!("usage:daily:{date}:client")
        );
        assert_eq!(daily_client.field(), client);
        assert_eq!(
            hourly.redis_key(),
            format!("usage:hourly:{date}:{:02}", utc_hour(TS))
        );
        assert_eq!(hourly.field(), field);
    }

    #[test]
    fn last_dates_end_today_oldest_first() {
        let dates = last_dates(TS, 3);
        assert_eq!(dates.len(), 3);
        assert_eq!(dates[2], utc_date(TS));
        assert!(dates[0] < dates[1] && dates[1] < dates[2]);
    }
}
