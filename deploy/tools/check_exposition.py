#!/usr/bin/env python3
"""Compares a real apitap exposition with the metric names deploy/ depends on.

Fails when the exposition has an api_* family that SPEC's catalogue (metric_names.py) does
not know (the agent and the dashboards/rules disagree on a name) or lacks one of the
families every agent exposes (REQUIRED). Lists, without failing, catalogued names the
exposition lacks (families without samples yet, e.g. no 429 seen) and apitap_* families
outside the catalogue (extra self-metrics are allowed).

usage: check_exposition.py FILE|URL     (e.g. http://127.0.0.1:9464/metrics)
"""

import re
import sys
import urllib.request

from metric_names import HISTOGRAMS, KNOWN, PLAIN

REQUIRED = {"apitap_build_info", "apitap_events_lost_total", "apitap_segments_total"}
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)")


def read(source):
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=5) as response:
            return response.read().decode("utf-8")
    with open(source, encoding="utf-8") as f:
        return f.read()


def main():
    text = read(sys.argv[1])
    names = {m.group(1) for line in text.splitlines() if (m := SAMPLE.match(line))}
    unknown_api = sorted(n for n in names if n.startswith("api_") and n not in KNOWN)
    missing_required = sorted(REQUIRED - names)
    families = (PLAIN - {"up"}) | {h + "_bucket" for h in HISTOGRAMS}
    absent = sorted(families - names)
    extra_self = sorted(n for n in names if n.startswith("apitap_") and n not in KNOWN)

    for name in unknown_api:
        print(f"  - {name}: not in the SPEC catalogue the dashboard and rules use")
    for name in missing_required:
        print(f"  - {name}: every agent must expose it")
    if absent:
        print(f"  note: no samples yet for {', '.join(absent)}")
    if extra_self:
        print(f"  note: self-metrics outside the catalogue: {', '.join(extra_self)}")
    failed = bool(unknown_api or missing_required)
    print(f"exposition: {'FAILED' if failed else 'ok'}, {len(names)} sample names, "
          f"{len(families) - len(absent)} of {len(families)} catalogued families present")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
