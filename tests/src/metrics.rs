//! Prometheus text exposition parsed into a map of `name{labels}` -> value.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct Metrics(pub BTreeMap<String, f64>);

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let map = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                Some((key.trim().to_string(), value.trim().parse::<f64>().ok()?))
            })
            .collect();
        Metrics(map)
    }

    /// The sample `key` (name plus labels exactly as exposed), if present.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.0.get(key).copied()
    }

    /// The sample `key` as an integer counter; panics naming the key when it is missing.
    pub fn count(&self, key: &str) -> u64 {
        match self.get(key) {
            Some(v) => v as u64,
            None => panic!(
                "metric {key} missing from the exposition: {:?}",
                self.0.keys()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_with_and_without_labels() {
        let m = Metrics::parse(
            "# HELP a x\n# TYPE a counter\na 3\nb{stage=\"capture\"} 0\nc{x=\"a b\"} 1.5\n",
        );
        assert_eq!(m.get("a"), Some(3.0));
        assert_eq!(m.count("b{stage=\"capture\"}"), 0);
        assert_eq!(m.get("c{x=\"a b\"}"), Some(1.5));
        assert_eq!(m.get("d"), None);
    }
}
