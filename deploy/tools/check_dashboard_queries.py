#!/usr/bin/env python3
"""Runs every query of a Grafana dashboard against a real Prometheus.

Grafana's variables are replaced the way Grafana would with "All" selected ($job and the
other query variables by .*, $__rate_interval by 1m, $__range by 5m); label_values(SEL, L)
variable queries become `count by (L) (SEL)`. Each query must be accepted by Prometheus'
engine (syntax, types, matching) and return data; a variable's query must also offer a value
(some series carries label L). Prints the failures and one summary line;
exits 1 on any failure.

usage: check_dashboard_queries.py PROMETHEUS_API_URL DASHBOARD.json
       (PROMETHEUS_API_URL like http://127.0.0.1:9090/api/v1)
"""

import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}
LABEL_VALUES = re.compile(r"^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$")


def substitute(expr, variables):
    def repl(match):
        name = match.group(1) or match.group(2)
        if name in BUILTINS:
            return BUILTINS[name]
        if name in variables:
            return ".*"
        return match.group(0)  # e.g. ${1} in label_replace stays as it is

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def query(api, expr):
    url = f"{api}/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            doc = json.load(response)
    except urllib.error.HTTPError as err:
        doc = json.load(err)
    if doc.get("status") != "success":
        return None, f"{doc.get('errorType')}: {doc.get('error')}"
    return doc["data"]["result"], None


def main():
    api, path = sys.argv[1].rstrip("/"), sys.argv[2]
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    variables = {v["name"] for v in dash["templating"]["list"]}
    checks = []
    for v in dash["templating"]["list"]:
        if v.get("type") == "query":
            match = LABEL_VALUES.match(v["definition"])
            if match:
                label = match.group(2)
                checks.append((f"variable {v['name']}", f"count by ({label}) ({match.group(1)})", label))
    for p in dash["panels"]:
        for t in p.get("targets") or []:
            checks.append((f"{p['title']} [{t['refId']}]", t["expr"], None))

    failures = []
    for where, expr, label in checks:
        result, error = query(api, substitute(expr, variables))
        if error:
            failures.append(f"{where}: rejected: {error}")
        elif not result:
            failures.append(f"{where}: no data for {substitute(expr, variables)}")
        elif label and not any(r["metric"].get(label) for r in result):
            failures.append(f"{where}: no series carries the label {label}")
    for failure in failures:
        print(f"  - {failure}")
    status = "FAILED" if failures else "ok"
    print(f"dashboard queries: {status}, {len(checks) - len(failures)} of {len(checks)} ran and returned data")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
