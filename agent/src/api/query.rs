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
    known(params, &[name])?;
    int(params, name, default, min, max)
}

/// Refuses any parameter not in `allowed`.
pub fn known(params: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(other) => Err(ApiError::BadRequest(format!(
            "unknown query parameter {other:?}; expected {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// `name` as one of `choices` (`choices[0]` when absent).
pub fn choice<'a>(
    params: &HashMap<String, String>,
    name: &str,
    choices: &[&'a str],
) -> Result<&'a str, ApiError> {
    let Some(raw) = params.get(name) else {
        return Ok(choices[0]);
    };
    choices
        .iter()
        .find(|c| **c == raw.trim())
        .copied()
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{name} must be one of {}, got {raw:?}",
                choices.join(", ")
            ))
        })
}

/// `name` as an unsigned integer, if present.
pub fn optional_u64(params: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    params
        .get(name)
        .map(|raw| {
            raw.trim().parse::<u64>().map_err(|_| {
                ApiError::BadRequest(format!("{name} must be an unsigned integer, got {raw:?}"))
            })
        })
        .transpose()
}

/// `name` as an integer in `min..=max` (`default` when absent).
pub fn int(
    params: &HashMap<String, String>,
    name: &str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ApiError> {
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

    #[rstest]
    #[case::absent_is_the_first(&[], Ok("count"))]
    #[case::given(&[("sort", "p95")], Ok("p95"))]
    #[case::unknown_value(&[("sort", "name")], Err(()))]
    fn sort_is_one_of_the_choices(#[case] pairs: &[(&str, &str)], #[case] want: Result<&str, ()>) {
        let got = choice(&params(pairs), "sort", &["count", "error_rate", "p95"]);
        assert_eq!(got.map_err(|_| ()), want);
    }

    #[rstest]
    fn known_names_only() {
        assert!(
            known(
                &params(&[("top", "3"), ("sort", "count")]),
                &["top", "sort"]
            )
            .is_ok()
        );
        assert!(
            known(
                &params(&[("top", "3"), ("srot", "count")]),
                &["top", "sort"]
            )
            .is_err()
        );
        assert_eq!(
            optional_u64(&params(&[("since", "12")]), "since").ok(),
            Some(Some(12))
        );
        assert!(optional_u64(&params(&[("since", "-1")]), "since").is_err());
    }
}
