//! nginx's access log of the fixtures, and transactions in its terms.

use std::fs;

use agent_core::Transaction;

/// Default redacted query keys (SPEC), applied to nginx's logged URI before comparing.
const REDACTED_KEYS: [&str; 7] = agent_core::identity::DEFAULT_REDACT_KEYS;

/// One nginx access-log line: `$remote_port $request_method $request_uri $status
/// $request_length $bytes_sent`.
#[derive(Debug, PartialEq, Eq)]
pub struct LogLine {
    pub port: u16,
    pub method: String,
    pub uri: String,
    pub status: u16,
    pub request_length: u64,
    pub bytes_sent: u64,
}

/// The access-log lines of fixture `name` (URIs with the default keys redacted).
pub fn nginx_log(name: &str) -> Vec<LogLine> {
    let log = super::fixtures_dir().join(format!("{name}.nginx.log"));
    let text = fs::read_to_string(&log).expect("every fixture has its nginx log");
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 6, "{}: {l}", log.display());
            LogLine {
                port: f[0].parse().expect("port"),
                method: f[1].to_string(),
                uri: redact(f[2]),
                status: f[3].parse().expect("status"),
                request_length: f[4].parse().expect("request length"),
                bytes_sent: f[5].parse().expect("bytes sent"),
            }
        })
        .collect()
}

fn redact(uri: &str) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return uri.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if REDACTED_KEYS.contains(&k.to_ascii_lowercase().as_str()) => {
                format!("{k}=REDACTED")
            }
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// A transaction as nginx would log it.
pub fn as_log_line(t: &Transaction) -> LogLine {
    let uri = match (&t.path, &t.query) {
        (Some(p), Some(q)) => format!("{p}?{q}"),
        (Some(p), None) => p.to_string(),
        (None, _) => String::new(),
    };
    LogLine {
        port: t.client.map_or(0, |c| c.port()),
        method: t.method.as_deref().unwrap_or_default().to_string(),
        uri,
        status: t.status.unwrap_or(0),
        request_length: t.request_wire_bytes,
        bytes_sent: t.response_wire_bytes,
    }
}

/// Where nginx's byte counts legitimately differ from the bytes on the wire.
pub fn as_nginx_counts(fixture: &str, t: &Transaction, line: &mut LogLine) {
    match fixture {
        // `$bytes_sent` includes the interim "HTTP/1.1 100 Continue" the record does not.
        "expect-100" => line.bytes_sent += "HTTP/1.1 100 Continue\r\n\r\n".len() as u64,
        // `return 201` discards the request body without counting it in `$request_length`.
        "post-json" => line.request_length -= t.request_body_size.unwrap_or(0),
        _ => {}
    }
}
