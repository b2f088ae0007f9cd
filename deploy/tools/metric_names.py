"""The metric names deploy/ files may query, and a PromQL name extractor.

The catalogue is SPEC.md's metric table plus the apitap_* self-metrics the agent exposes;
histograms add their _bucket, _sum and _count series. `up` comes from Prometheus itself.
"""

import re

HISTOGRAMS = {
    "api_request_duration_seconds",
    "api_request_size_bytes",
    "api_response_size_bytes",
}
PLAIN = {
    # SPEC metric table
    "api_requests_total",
    "api_active_connections",
    "api_errors_total",
    "api_rate_limit_hits_total",
    "api_auth_failures_total",
    "api_client_requests_total",
    "api_availability_ratio",
    # apitap self-metrics
    "apitap_events_lost_total",
    "apitap_segments_total",
    "apitap_bytes_captured_total",
    "apitap_events_dropped_total",
    "apitap_flows_tracked",
    "apitap_series_collapsed_total",
    "apitap_store_write_failures_total",
    "apitap_build_info",
    "apitap_h2_unknown_fields_total",
    "apitap_h2_header_blocks_lost_total",
    "apitap_parse_errors_total",
    # written by Prometheus for every target
    "up",
}
# Standard process-collector metrics: queried by the dashboard's memory and CPU panels, which
# show "No data" until the agent exposes them (it does not yet).
OPTIONAL = {
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
}
KNOWN = PLAIN | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "atan2", "inf", "nan",
}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w$:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names(expr):
    """Metric names selected by a PromQL expression (Grafana $variables ignored)."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names
