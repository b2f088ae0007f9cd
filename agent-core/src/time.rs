//! Timestamps as RFC 3339 UTC strings, without a date-time dependency.

/// Formats nanoseconds since the UNIX epoch as `2026-11-25T05:52:01.123456Z` (microseconds).
pub fn rfc3339_micros(ts_ns: u64) -> String {
    let secs = ts_ns / 1_000_000_000;
    let micros = (ts_ns % 1_000_000_000) / 1_000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// `YYYY-MM-DD` of a timestamp in UTC.
pub fn utc_date(ts_ns: u64) -> String {
    let (y, m, d) = civil_from_days((ts_ns / 1_000_000_000 / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Hour of day (0-23) of a timestamp in UTC.
pub fn utc_hour(ts_ns: u64) -> u8 {
    ((ts_ns / 1_000_000_000 % 86_400) / 3600) as u8
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// `civil_from_days` algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_a_known_instant() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        // 2026-11-25T05:52:01.123456Z
        let ts = 1_795_585_921_123_456_789;
        assert_eq!(rfc3339_micros(ts), "2026-11-25T05:52:01.123456Z");
        assert_eq!(utc_date(ts), "2026-11-25");
        assert_eq!(utc_hour(ts), 5);
    }

    #[test]
    fn handles_leap_days() {
        // 2024-02-29T00:00:00Z
        assert_eq!(utc_date(1_709_164_800_000_000_000), "2024-02-29");
    }
}
