#!/usr/bin/env python3
"""Structural lint of deploy/docker/Dockerfile (no Docker engine is available to build it).

Checks: a named builder stage and a final runtime stage; base images pinned to a tag (never
latest); COPY --from names an earlier stage; no ADD (least of all of URLs); apt-get installs
use --no-install-recommends and clean their lists; the final stage has USER, EXPOSE 9464 and
an exec-form ENTRYPOINT; the dockerignore beside it keeps target dirs and .git out.
Prints findings and one summary line; exits 1 on any finding.

usage: check_dockerfile.py Dockerfile
"""

import json
import pathlib
import re
import sys


def instructions(text):
    """(keyword, arguments) pairs, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        joined.append(current + stripped)
        current = ""
    out = []
    for line in joined:
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def main():
    path = pathlib.Path(sys.argv[1])
    steps = instructions(path.read_text(encoding="utf-8"))
    findings = []
    global_args = set()
    stages = []  # [name, [(keyword, args)]]
    for keyword, args in steps:
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE)
            if not match:
                findings.append(f"unreadable FROM {args}")
                continue
            image, name = match.group(1), match.group(2)
            resolved = re.sub(r"\$\{(\w+)\}", lambda m: "x" if m.group(1) in global_args else m.group(0), image)
            if "${" in resolved:
                findings.append(f"FROM {image}: uses an ARG not declared before the first FROM")
            if ":" not in resolved.split("/")[-1] or resolved.endswith(":latest"):
                findings.append(f"FROM {image}: pin a tag (not latest)")
            stages.append([name, []])
        elif not stages:
            if keyword == "ARG":
                global_args.add(args.split("=")[0])
            else:
                findings.append(f"{keyword} before the first FROM")
        else:
            stages[-1][1].append((keyword, args))

    if len(stages) < 2:
        findings.append(f"expected a multi-stage build, found {len(stages)} stage(s)")
    names = [s[0] for s in stages]
    if stages and not all(names[:-1]):
        findings.append("every stage but the last needs a name (FROM ... AS name)")
    for index, (name, body) in enumerate(stages):
        for keyword, args in body:
            if keyword == "ADD":
                what = "of a URL " if re.search(r"https?://", args) else ""
                findings.append(f"stage {name}: ADD {what}({args}); use COPY, or RUN with a checked download")
            if keyword == "COPY":
                source = re.search(r"--from=(\S+)", args)
                if source and source.group(1) not in names[:index]:
                    findings.append(f"stage {name}: COPY --from={source.group(1)} names no earlier stage")
            if keyword == "RUN" and "apt-get install" in args:
                if "--no-install-recommends" not in args:
                    findings.append(f"stage {name}: apt-get install without --no-install-recommends")
                if "rm -rf /var/lib/apt/lists" not in args:
                    findings.append(f"stage {name}: apt-get lists are not removed in the same RUN")
    if stages:
        final = dict((k, a) for k, a in stages[-1][1])
        if "USER" not in final:
            findings.append("the final stage sets no USER")
        if "9464" not in final.get("EXPOSE", ""):
            findings.append("the final stage does not EXPOSE 9464")
        entry = final.get("ENTRYPOINT")
        try:
            exec_form = isinstance(json.loads(entry), list) if entry else False
        except json.JSONDecodeError:
            exec_form = False
        if not exec_form:
            findings.append("the final stage needs an exec-form ENTRYPOINT [\"...\"]")

    ignore = path.with_name(path.name + ".dockerignore")
    if not ignore.exists():
        findings.append(f"{ignore.name} is missing")
    else:
        patterns = {l.strip() for l in ignore.read_text(encoding="utf-8").splitlines()}
        for needed in (".git", "**/target"):
            if needed not in patterns:
                findings.append(f"{ignore.name} does not exclude {needed}")

    for finding in findings:
        print(f"  - {finding}")
    status = "FAILED" if findings else "ok"
    print(f"{path.name}: {status}, {len(stages)} stages ({', '.join(n or 'final' for n in names)}), "
          f"{len(steps)} instructions")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
