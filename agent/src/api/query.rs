//! Strict parsing of the /api/v1 query parameters: known names only, bounded integers,
//! a 400 with a JSON error otherwise.

use std::collections::HashMap;

use super::ApiError;

/// Parses `name` from `params` as an integer in `min..=max` (`default` when absent), refusing
/// any other parameter.
pub fn bounded(
    params: &HashMap<String, String>,
    name: &str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ApiError> {
    if let Some(other) = params.keys().find(|k| k.as_str() != name) {
        return Err(ApiError::BadRequest(format!(
            "unknown query parameter {other:?}; expected {name}"
        )));
    }
    let Some(raw) = params.get(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(ApiError::BadRequest(format!(
            "{name} must be an integer from {min} to {max}, got {raw:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[rstest]
    #[case::absent_uses_default(&[], Ok(7))]
    #[case::lower_bound(&[("days", "1")], Ok(1))]
    #[case::upper_bound(&[("days", "30")], Ok(30))]
    #[case::zero_refused(&[("days", "0")], Err(()))]
    #[case::too_large_refused(&[("days", "31")], Err(()))]
    #[case::negative_refused(&[("days", "-1")], Err(()))]
    #[case::not_a_number(&[("days", "week")], Err(()))]
    #[case::unknown_parameter(&[("day", "3")], Err(()))]
    fn days_are_bounded(#[case] pairs: &[(&str, &str)], #[case] want: Result<u32, ()>) {
        assert_eq!(
            bounded(&params(pairs), "days", 7, 1, 30).map_err(|_| ()),
            want
        );
    }
}
