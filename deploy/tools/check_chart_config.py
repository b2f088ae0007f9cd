#!/usr/bin/env python3
"""The agent config a render ships must be one the agent accepts.

Reads a rendered manifest stream, takes apitap.toml from the ConfigMap that has it, parses it
as TOML and checks every table and key against deploy/apitap.example.toml (which documents
every key the agent knows; a key missing there would be refused by the agent as unknown).
Prints one summary line, then each finding; exits 1 on any finding.

usage: check_chart_config.py RENDER.yaml EXAMPLE.toml
"""

import re
import sys
import tomllib

import yaml


def example_keys(text):
    """(table, key) pairs the example documents, commented-out ones included."""
    keys, table = set(), ""
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        m = re.fullmatch(r"\[\[?([a-z0-9_.]+)\]\]?", line)
        if m:
            table = m.group(1)
            keys.add((table, None))
            continue
        m = re.match(r"([a-z0-9_]+) = ", line)
        if m:
            keys.add((table, m.group(1)))
    return keys


def used_keys(doc, table=""):
    for key, value in doc.items():
        name = f"{table}.{key}" if table else key
        if isinstance(value, dict):
            yield (name, None)
            yield from used_keys(value, name)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            yield (name, None)
            for v in value:
                yield from used_keys(v, name)
        else:
            yield (table, key)


def main():
    render, example = sys.argv[1], sys.argv[2]
    docs = [d for d in yaml.safe_load_all(open(render, encoding="utf-8")) if d]
    tomls = [d["data"]["apitap.toml"] for d in docs if d.get("kind") == "ConfigMap" and "apitap.toml" in (d.get("data") or {})]
    if len(tomls) != 1:
        print(f"{render}: expected one ConfigMap with apitap.toml, found {len(tomls)}")
        return 1
    try:
        doc = tomllib.loads(tomls[0])
    except tomllib.TOMLDecodeError as e:
        print(f"{render}: apitap.toml is not TOML: {e}")
        return 1
    known = example_keys(open(example, encoding="utf-8").read())
    findings = [f"unknown key {t + '.' if t and k else t}{k or ''}" for t, k in used_keys(doc) if (t, k) not in known]
    keys = sum(1 for _ in used_keys(doc))
    if findings:
        print(f"{render}: {len(findings)} of {keys} keys unknown to the agent")
        for f in findings:
            print(f"  - {f}")
        return 1
    print(f"apitap.toml: {keys} keys, all documented in {example.split('/')[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
