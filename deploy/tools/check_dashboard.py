#!/usr/bin/env python3
"""Validates a Grafana dashboard JSON file for apitap.

Checks: valid JSON with uid, title and schemaVersion; unique panel ids; panels inside the
24-column grid and not overlapping; every query names only catalogued metrics (see
metric_names.py; process_* ones are reported as optional); every $variable a query uses is
defined; every panel uses the data source variable; the panels this project promises exist.
Prints one summary line (after any findings); exits 1 on any finding.

usage: check_dashboard.py DASHBOARD.json
"""

import json
import re
import sys

from metric_names import KNOWN, OPTIONAL, metric_names

BUILTIN_VARS = {"__rate_interval", "__interval", "__range", "__range_s", "__all"}
# Topics the dashboard must cover, matched against panel titles (case-insensitive).
REQUIRED_TOPICS = [
    "request rate", "error rate", "p50 / p95 / p99", "availability", "top endpoints",
    "top clients", "rate-limit", "auth failures", "lost kernel events", "flows tracked", "memory",
]
VAR_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def main():
    path = sys.argv[1]
    findings = []
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        print(f"{path}: not valid JSON: {err}")
        return 1

    for key in ("uid", "title", "schemaVersion", "panels", "templating"):
        if key not in dash:
            findings.append(f"dashboard has no {key}")
    variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    if "datasource" not in variables:
        findings.append("no datasource variable: panels would be bound to one data source uid")

    panels = dash.get("panels", [])
    ids, cells, queries, optional_used = set(), {}, 0, set()
    for p in panels:
        title = p.get("title", "?")
        if p.get("id") in ids:
            findings.append(f"duplicate panel id {p.get('id')} ({title})")
        ids.add(p.get("id"))
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in "xywh") or g["x"] + g["w"] > 24 or g["x"] < 0:
            findings.append(f"panel {title}: gridPos {g} is outside the 24-column grid")
            continue
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    findings.append(f"panel {title} overlaps {cells[(x, y)]}")
                    break
                cells[(x, y)] = title
            else:
                continue
            break
        if p.get("type") == "row":
            continue
        if (p.get("datasource") or {}).get("uid") != "${datasource}":
            findings.append(f"panel {title}: datasource is not the ${{datasource}} variable")
        targets = p.get("targets") or []
        if not targets:
            findings.append(f"panel {title}: no query")
        for t in targets:
            expr = t.get("expr", "")
            queries += 1
            names = metric_names(expr)
            if not names:
                findings.append(f"panel {title}: query selects no metric: {expr}")
            for name in sorted(names - KNOWN):
                if name in OPTIONAL:
                    optional_used.add(name)
                else:
                    findings.append(f"panel {title}: unknown metric {name}")
            for var in VAR_REF.findall(expr):
                if var not in variables and var not in BUILTIN_VARS:
                    findings.append(f"panel {title}: undefined variable ${var}")

    titles = " | ".join(p.get("title", "").lower() for p in panels)
    for topic in REQUIRED_TOPICS:
        if topic not in titles:
            findings.append(f"no panel about {topic!r}")

    for finding in findings:
        print(f"  - {finding}")
    note = f"; optional metrics not yet exposed: {', '.join(sorted(optional_used))}" if optional_used else ""
    status = "FAILED" if findings else "ok"
    print(f"{path.split('/')[-1]}: {status}, {len(panels)} panels, {queries} queries, "
          f"{len(findings)} findings{note}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
