//! Renders a [`Snapshot`] plus self-metrics as Prometheus text 0.0.4 or OpenMetrics 1.0.
//!
//! Both formats share the sample lines; they differ in: OpenMetrics names a counter family
//! without its `_total` suffix in `# HELP`/`# TYPE` and always suffixes the samples with
//! `_total`, escapes `"` in help text, writes bucket bounds in canonical float form
//! (`le="1.0"`), and ends with `# EOF`. Histograms are rendered cumulative (`_bucket{le}` up
//! to `+Inf`, then `_sum` and `_count`).

use super::format::Format;
use super::{MetricKind, SelfMetric};
use crate::aggregate::snapshot::{
    FamilyKind, HistogramValue, MetricFamily, Sample, SampleValue, Snapshot,
};
use std::fmt::Write as _;

/// The whole exposition. Self-metrics are grouped by name after the snapshot's families (or
/// appended to a snapshot family of the same name and kind); a self-metric whose name is taken
/// by a family of another kind is left out (a programming error of the contributor, never user
/// input). The snapshot is read, never copied.
pub fn render(snapshot: &Snapshot, self_metrics: &[SelfMetric], format: Format) -> String {
    let families = &snapshot.series.families;
    let mut appended: Vec<Vec<Sample>> = vec![Vec::new(); families.len()];
    let mut extra: Vec<MetricFamily> = Vec::new();
    for m in self_metrics {
        let kind = match m.kind {
            MetricKind::Counter => FamilyKind::Counter,
            MetricKind::Gauge => FamilyKind::Gauge,
        };
        let name = sanitize_name(&m.name);
        let sample = Sample {
            labels: m
                .labels
                .iter()
                .map(|(k, v)| (sanitize_label(k), v.clone()))
                .collect(),
            value: SampleValue::Scalar(m.value),
        };
        if let Some(i) = families.iter().position(|f| f.name == name) {
            if families[i].kind == kind {
                appended[i].push(sample);
            }
            continue;
        }
        match extra.iter_mut().find(|f| f.name == name) {
            Some(f) if f.kind == kind => f.samples.push(sample),
            Some(_) => {}
            None => extra.push(MetricFamily {
                name,
                help: m.help.clone(),
                kind,
                samples: vec![sample],
            }),
        }
    }
    let lines: usize = families
        .iter()
        .flat_map(|f| &f.samples)
        .map(|s| match &s.value {
            SampleValue::Scalar(_) => 1,
            SampleValue::Histogram(h) => h.bounds.len() + 3,
        })
        .sum();
    let mut out = String::with_capacity((lines + self_metrics.len()) * 128 + 4096);
    for (f, more) in families.iter().zip(&appended) {
        write_family(&mut out, f, more, format);
    }
    for f in &extra {
        write_family(&mut out, f, &[], format);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn write_family(out: &mut String, f: &MetricFamily, more: &[Sample], format: Format) {
    let om = format == Format::OpenMetrics;
    let (family_name, sample_name) = match (f.kind, om) {
        (FamilyKind::Counter, true) => {
            let base = f.name.strip_suffix("_total").unwrap_or(&f.name);
            (base.to_string(), format!("{base}_total"))
        }
        _ => (f.name.clone(), f.name.clone()),
    };
    let kind = match f.kind {
        FamilyKind::Counter => "counter",
        FamilyKind::Gauge => "gauge",
        FamilyKind::Histogram => "histogram",
    };
    let _ = writeln!(out, "# HELP {family_name} {}", escape_help(&f.help, om));
    let _ = writeln!(out, "# TYPE {family_name} {kind}");
    for s in f.samples.iter().chain(more) {
        match &s.value {
            SampleValue::Scalar(v) => write_line(out, &sample_name, &s.labels, None, *v),
            SampleValue::Histogram(h) => write_histogram(out, &sample_name, &s.labels, h, om),
        }
    }
}

fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    h: &HistogramValue,
    om: bool,
) {
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0u64;
    for (i, bound) in h.bounds.iter().enumerate() {
        cumulative += h.counts.get(i).copied().unwrap_or(0);
        let le = float(*bound, om);
        write_line(out, &bucket, labels, Some(&le), cumulative as f64);
    }
    // +Inf equals the count by construction; write the count so the two never disagree.
    write_line(out, &bucket, labels, Some("+Inf"), h.count as f64);
    write_line(out, &format!("{name}_sum"), labels, None, h.sum);
    write_line(out, &format!("{name}_count"), labels, None, h.count as f64);
}

fn write_line(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    le: Option<&str>,
    value: f64,
) {
    out.push_str(name);
    let extra = le.map(|v| ("le", v));
    let mut pairs = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra)
        .peekable();
    if pairs.peek().is_some() {
        out.push('{');
        for (i, (k, v)) in pairs.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label_into(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&float(value, false));
    out.push('\n');
}

/// Go-style float text: `1`, `0.005`, `+Inf`, `-Inf`, `NaN`; with `canonical`, integers get a
/// `.0` (OpenMetrics bucket bounds: `le="1.0"`).
fn float(v: f64, canonical: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let mut s = v.to_string();
    if canonical && !s.contains('.') {
        s.push_str(".0");
    }
    s
}

fn escape_label_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(h: &str, om: bool) -> String {
    let mut out = String::with_capacity(h.len());
    for c in h.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if om => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// Replaces characters outside `[a-zA-Z0-9_:]` with `_` and guards a leading digit.
fn sanitize_name(n: &str) -> String {
    sanitize(n, true)
}

fn sanitize_label(n: &str) -> String {
    sanitize(n, false)
}

fn sanitize(n: &str, colon: bool) -> String {
    let mut s: String = n
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}
