//! HTTP method normalization: the methods of RFC 9110 and PATCH keep their name, anything else
//! (extension methods, lower-case spellings, garbage, a missing method) becomes `_OTHER`
//! (OpenTelemetry's value), so the `method` label has at most ten values.

/// Every value the `method` label can take, indexed by [`method_index`].
pub const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER",
];

/// Index of the normalized method in [`METHODS`]. Methods are case-sensitive (RFC 9110 §9.1).
pub fn method_index(method: Option<&str>) -> u8 {
    match method {
        Some("GET") => 0,
        Some("HEAD") => 1,
        Some("POST") => 2,
        Some("PUT") => 3,
        Some("DELETE") => 4,
        Some("CONNECT") => 5,
        Some("OPTIONS") => 6,
        Some("TRACE") => 7,
        Some("PATCH") => 8,
        _ => 9,
    }
}

/// The normalized method label.
pub fn normalize_method(method: Option<&str>) -> &'static str {
    METHODS[usize::from(method_index(method))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::standard_method_kept(Some("GET"), "GET")]
    #[case::patch_kept(Some("PATCH"), "PATCH")]
    #[case::lower_case_is_other(Some("get"), "_OTHER")]
    #[case::extension_method_is_other(Some("PROPFIND"), "_OTHER")]
    #[case::missing_method_is_other(None, "_OTHER")]
    #[case::otel_other_is_other(Some("_OTHER"), "_OTHER")]
    fn normalizes_method(#[case] m: Option<&str>, #[case] want: &str) {
        assert_eq!(normalize_method(m), want);
    }
}
