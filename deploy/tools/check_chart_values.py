#!/usr/bin/env python3
"""Every `.Values.x.y` a chart template reads must exist in the chart's values.yaml.

Helm renders a misspelt value path as empty without complaint; this catches it. It also
reports values.yaml keys no template reads (dead settings). Exits 1 on any finding.

usage: check_chart_values.py CHART_DIR
"""

import pathlib
import re
import sys

import yaml

REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def has_path(values, path):
    node = values
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def leaf_paths(node, prefix=()):
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from leaf_paths(value, prefix + (key,))
    else:
        yield prefix


def main():
    chart = pathlib.Path(sys.argv[1])
    values = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8")) or {}
    refs = {}
    for template in sorted((chart / "templates").glob("*")):
        for match in REF.finditer(template.read_text(encoding="utf-8")):
            path = tuple(match.group(1).lstrip(".").split("."))
            refs.setdefault(path, template.name)
    missing = [f"{'.'.join(p)} (in {t})" for p, t in sorted(refs.items()) if not has_path(values, p)]
    # A leaf is used when a template reads it or any of its ancestors (toYaml of a subtree).
    unused = [
        ".".join(leaf)
        for leaf in leaf_paths(values)
        if not any(leaf[: len(ref)] == ref for ref in refs)
    ]
    for path in missing:
        print(f"  - .Values.{path} is not in values.yaml")
    for path in unused:
        print(f"  - values.yaml key {path} is read by no template")
    status = "" if not (missing or unused) else "NOT "
    print(f"{chart.name}: {len(refs)} .Values paths, {status}all defined and used")
    return 1 if missing or unused else 0


if __name__ == "__main__":
    sys.exit(main())
