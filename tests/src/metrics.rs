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

impl Metrics {
    /// Every sample of the family `name`, with its labels parsed.
    pub fn family(&self, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        self.0
            .iter()
            .filter_map(|(key, v)| {
                let rest = key.strip_prefix(name)?;
                if rest.is_empty() {
                    return Some((BTreeMap::new(), *v));
                }
                let inner = rest.strip_prefix('{')?.strip_suffix('}')?;
                Some((parse_labels(inner), *v))
            })
            .collect()
    }

    /// The sum of every sample of `name` whose labels contain all of `with`.
    pub fn sum(&self, name: &str, with: &[(&str, &str)]) -> u64 {
        self.family(name)
            .iter()
            .filter(|(labels, _)| {
                with.iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| *v as u64)
            .sum()
    }
}

/// `a="x",b="y \"q\""` into a map (label values are escaped with backslashes).
fn parse_labels(inner: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = inner;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').to_string(), value);
        rest = &after[end..];
    }
    out
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

    #[test]
    fn sums_a_family_by_labels() {
        let m = Metrics::parse(
            "x{a=\"1\",b=\"q\\\"\"} 2\nx{a=\"1\",b=\"z\"} 3\nx{a=\"2\",b=\"z\"} 4\nxy 9\n",
        );
        assert_eq!(m.sum("x", &[]), 9);
        assert_eq!(m.sum("x", &[("a", "1")]), 5);
        assert_eq!(m.sum("x", &[("b", "q\"")]), 2);
    }
}
