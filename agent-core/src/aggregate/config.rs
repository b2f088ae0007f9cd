//! Aggregation settings (`[aggregate]` in the agent's config).

use serde::Deserialize;

/// Bounds on what the aggregator keeps. Every bound, when hit, is counted, never silent.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AggregateConfig {
    /// Label sets per metric before new ones collapse to `endpoint`/`client` `"other"`
    /// (default 2,000). Histograms count one series per label set, not per bucket.
    pub series_budget: usize,
    /// Clients tracked by name (top-K by traffic, default 100); the rest are `"other"`.
    pub top_clients: usize,
    /// Services tracked by name (default 64); more are folded into service `"other"` and
    /// counted as `apitap_series_collapsed_total{metric="service"}`.
    pub max_services: usize,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        AggregateConfig {
            series_budget: 2000,
            top_clients: 100,
            max_services: 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    fn missing_keys_take_defaults() {
        let c: AggregateConfig = serde_json::from_str(r#"{"top_clients": 5}"#).expect("parses");
        assert_eq!(
            c,
            AggregateConfig {
                top_clients: 5,
                ..Default::default()
            }
        );
    }

    #[rstest]
    fn unknown_keys_are_rejected() {
        assert!(serde_json::from_str::<AggregateConfig>(r#"{"series_budjet": 5}"#).is_err());
    }
}
