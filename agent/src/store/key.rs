//! What a usage increment is counted under: the three SPEC key families, shared by the embedded
//! tables and the Redis hashes. A [`Group`] is one hash (family, day, hour); its fields are
//! `{endpoint}:{METHOD}` or the client.

use agent_core::Transaction;
use agent_core::time::{utc_date, utc_hour};
use std::fmt::Write;
use std::net::IpAddr;

const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// The key families of SPEC "Usage store".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `usage:daily:{date}`, field `{endpoint}:{METHOD}`.
    Daily,
    /// `usage:daily:{date}:client`, field the client.
    DailyClient,
    /// `usage:hourly:{date}:{HH}`, field `{endpoint}:{METHOD}`.
    Hourly,
}

/// Which daily family a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageKind {
    Endpoints,
    Clients,
}

impl UsageKind {
    pub fn family(self) -> Family {
        match self {
            UsageKind::Endpoints => Family::Daily,
            UsageKind::Clients => Family::DailyClient,
        }
    }
}

/// One hash of the store: a family on a UTC day (and hour, for the hourly family).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Group {
    pub family: Family,
    /// Days since 1970-01-01 (UTC).
    pub day: u32,
    /// Hour of day for [`Family::Hourly`], 0 otherwise.
    pub hour: u8,
}

impl Group {
    pub fn daily(family: Family, ts_ns: u64) -> Group {
        Group {
            family,
            day: day_of(ts_ns),
            hour: 0,
        }
    }

    pub fn hourly(ts_ns: u64) -> Group {
        Group {
            family: Family::Hourly,
            day: day_of(ts_ns),
            hour: utc_hour(ts_ns),
        }
    }

    /// `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        utc_date(u64::from(self.day) * DAY_NS)
    }

    /// The Redis key (SPEC "Usage store").
    pub fn redis_key(&self) -> String {
        let date = self.date();
        match self.family {
            Family::Daily => format!("usage:daily:{date}"),
            Family::DailyClient => format!("usage:daily:{date}:client"),
            Family::Hourly => format!("usage:hourly:{date}:{:02}", self.hour),
        }
    }
}

fn day_of(ts_ns: u64) -> u32 {
    u32::try_from(ts_ns / DAY_NS).unwrap_or(u32::MAX)
}

/// The endpoint and method of `t`'s `{endpoint}:{METHOD}` field. The endpoint is the route
/// template, the raw path only when no template was assigned.
pub fn endpoint_parts(t: &Transaction) -> (&str, &str) {
    (
        t.route
            .as_deref()
            .or(t.path.as_deref())
            .unwrap_or("unknown"),
        t.method.as_deref().unwrap_or("UNKNOWN"),
    )
}

/// Writes the `{endpoint}:{METHOD}` field of `t` into `out` (cleared first).
pub fn endpoint_field(t: &Transaction, out: &mut String) {
    let (endpoint, method) = endpoint_parts(t);
    out.clear();
    out.push_str(endpoint);
    out.push(':');
    out.push_str(method);
}

/// What `t`'s client field is written from: the SPEC client id, else the client IP.
pub enum ClientPart<'t> {
    Text(&'t str),
    Ip(IpAddr),
}

pub fn client_part(t: &Transaction) -> ClientPart<'_> {
    match (&t.client_id, t.client) {
        (Some(id), _) => ClientPart::Text(id),
        (None, Some(addr)) => ClientPart::Ip(addr.ip()),
        (None, None) => ClientPart::Text("unknown"),
    }
}

/// Writes the client field of `t` into `out` (cleared first).
pub fn client_field(t: &Transaction, out: &mut String) {
    out.clear();
    match client_part(t) {
        ClientPart::Text(text) => out.push_str(text),
        // Writing into a String cannot fail.
        ClientPart::Ip(ip) => {
            let _ = write!(out, "{ip}");
        }
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
    fn fields_follow_the_spec(
        #[case] route: Option<&str>,
        #[case] client_id: Option<&str>,
        #[case] field: &str,
        #[case] client: &str,
    ) {
        let t = tx(route, client_id);
        let mut out = String::from("left over");
        endpoint_field(&t, &mut out);
        assert_eq!(out, field);
        client_field(&t, &mut out);
        assert_eq!(out, client);
    }

    #[test]
    fn redis_keys_follow_the_spec() {
        assert_eq!(
            Group::daily(Family::Daily, TS).redis_key(),
            "usage:daily:2026-11-25"
        );
        assert_eq!(
            Group::daily(Family::DailyClient, TS).redis_key(),
            "usage:daily:2026-11-25:client"
        );
        assert_eq!(Group::hourly(TS).redis_key(), "usage:hourly:2026-11-25:05");
    }

    #[test]
    fn last_dates_end_today_oldest_first() {
        assert_eq!(
            last_dates(TS, 3),
            ["2026-11-23", "2026-11-24", "2026-11-25"]
        );
    }
}
