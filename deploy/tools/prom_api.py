#!/usr/bin/env python3
"""Judges one Prometheus HTTP API answer (JSON on stdin) for prometheus-scrape-test.sh.

usage: prom_api.py up|query|rules
Exit 0 and print a one-line summary when the answer shows what is wanted; exit 3 when it
does not yet (the caller polls again); exit 2 on a definitive failure (a rule erroring).
"""

import json
import sys

NOT_YET, FAILED = 3, 2


def judge(kind, doc):
    if doc.get("status") != "success":
        return NOT_YET, f"API status {doc.get('status')}"
    data = doc["data"]
    if kind == "up":
        result = data["result"]
        if not result or result[0]["value"][1] != "1":
            return NOT_YET, "target not up yet"
        return 0, f"{len(result)} target(s) up"
    if kind == "query":
        result = data["result"]
        if not result:
            return NOT_YET, "no data yet"
        first = result[0]
        labels = ",".join(f"{k}={v}" for k, v in sorted(first["metric"].items()) if k != "__name__")
        return 0, f"{len(result)} series, e.g. {{{labels}}} = {first['value'][1]}"
    if kind == "rules":
        rules = [r for g in data["groups"] for r in g["rules"]]
        failing = [f"{r['name']}: {r.get('lastError')}" for r in rules if r.get("health") == "err"]
        if failing:
            return FAILED, "rules failing: " + "; ".join(failing)
        unevaluated = [r["name"] for r in rules if r.get("lastEvaluation", "").startswith("0001-")]
        if not rules or unevaluated:
            return NOT_YET, "rules not evaluated yet"
        return 0, f"{len(rules)} rules evaluated, none failing"
    raise SystemExit(f"unknown kind {kind}")


def main():
    try:
        doc = json.load(sys.stdin)
    except json.JSONDecodeError:
        return NOT_YET
    code, message = judge(sys.argv[1], doc)
    print(message)
    return code


if __name__ == "__main__":
    sys.exit(main())
