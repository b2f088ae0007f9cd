//! Exposition formats and HTTP content negotiation.

/// Which text format to render.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4.
    #[default]
    Prometheus,
    /// OpenMetrics 1.0.0 text format.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` header value for a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Picks the format from an `Accept` header: OpenMetrics when the client lists
    /// `application/openmetrics-text` with a quality at least as high as any `text/plain`
    /// (Prometheus itself sends `application/openmetrics-text;version=1.0.0;q=0.5,...,
    /// text/plain;version=0.0.4;q=0.3,*/*;q=0.2`), otherwise the Prometheus text format, which
    /// is also the answer to a missing, empty, `*/*` or unparsable header.
    pub fn from_accept(header: Option<&str>) -> Format {
        let Some(header) = header else {
            return Format::Prometheus;
        };
        let mut best_om: Option<f32> = None;
        let mut best_text: Option<f32> = None;
        for range in header.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let mut q = 1.0_f32;
            for param in parts {
                if let Some((k, v)) = param.split_once('=')
                    && k.trim().eq_ignore_ascii_case("q")
                {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            if q <= 0.0 {
                continue;
            }
            let slot = match media.as_str() {
                "application/openmetrics-text" => &mut best_om,
                "text/plain" => &mut best_text,
                _ => continue,
            };
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
        match (best_om, best_text) {
            (Some(om), Some(text)) if om >= text => Format::OpenMetrics,
            (Some(_), None) => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::missing_header_is_prometheus(None, Format::Prometheus)]
    #[case::wildcard_is_prometheus(Some("*/*"), Format::Prometheus)]
    #[case::plain_text_is_prometheus(Some("text/plain;version=0.0.4"), Format::Prometheus)]
    #[case::openmetrics_alone(
        Some("application/openmetrics-text; version=1.0.0"),
        Format::OpenMetrics
    )]
    #[case::prometheus_scraper_default(
        Some(
            "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        ),
        Format::OpenMetrics
    )]
    #[case::text_preferred_by_quality(
        Some("application/openmetrics-text;q=0.2,text/plain;q=0.9"),
        Format::Prometheus
    )]
    #[case::refused_openmetrics(Some("application/openmetrics-text;q=0"), Format::Prometheus)]
    #[case::garbage_is_prometheus(Some(";;;,=,q=x"), Format::Prometheus)]
    fn negotiates_format(#[case] accept: Option<&str>, #[case] want: Format) {
        assert_eq!(Format::from_accept(accept), want);
    }
}
