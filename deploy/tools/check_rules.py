#!/usr/bin/env python3
"""Lints apitap's Prometheus rules beyond what promtool checks.

- every alert has a severity (warning or critical) and summary and description annotations;
- every expression selects only catalogued metrics or series recorded in the same file;
- every alert is exercised by the unit-test file both firing and not firing.
Prints findings and one summary line; exits 1 on any finding.

usage: check_rules.py RULES.yml TESTS.yml
"""

import sys

import yaml

from metric_names import KNOWN, metric_names

SEVERITIES = {"warning", "critical"}


def main():
    rules_path, tests_path = sys.argv[1], sys.argv[2]
    with open(rules_path, encoding="utf-8") as f:
        groups = yaml.safe_load(f)["groups"]
    with open(tests_path, encoding="utf-8") as f:
        tests = yaml.safe_load(f)["tests"]

    rules = [r for g in groups for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    alerts = [r for r in rules if "alert" in r]
    findings = []
    for rule in rules:
        name = rule.get("alert") or rule.get("record")
        for metric in sorted(metric_names(rule["expr"]) - KNOWN - recorded):
            findings.append(f"{name}: unknown metric {metric}")
    for alert in alerts:
        name = alert["alert"]
        if (alert.get("labels") or {}).get("severity") not in SEVERITIES:
            findings.append(f"{name}: severity label must be one of {sorted(SEVERITIES)}")
        annotations = alert.get("annotations") or {}
        for key in ("summary", "description"):
            if not annotations.get(key):
                findings.append(f"{name}: no {key} annotation")

    fired, quiet = {}, set()
    for test in tests:
        for case in test.get("alert_rule_test") or []:
            if case.get("exp_alerts"):
                for exp in case["exp_alerts"]:
                    severity = (exp.get("exp_labels") or {}).get("severity")
                    fired.setdefault(case["alertname"], set()).add(severity)
            else:
                quiet.add(case["alertname"])
    for alert in alerts:
        name, severity = alert["alert"], alert["labels"].get("severity")
        if severity not in fired.get(name, set()):
            findings.append(f"{name} ({severity}): no test shows it firing")
        if name not in quiet:
            findings.append(f"{name}: no test shows it not firing")

    for finding in findings:
        print(f"  - {finding}")
    status = "FAILED" if findings else "ok"
    print(f"{rules_path.split('/')[-1]}: {status}, {len(alerts)} alerts and {len(recorded)} "
          f"recording rules" + (", each alert tested firing and quiet" if not findings else ""))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
