#!/usr/bin/env bash
# End-to-end check that a real Prometheus can scrape a running apitap and evaluate the
# shipped rules against it.
#
# usage: deploy/prometheus-scrape-test.sh URL [--timeout SECONDS] [--require METRIC]...
#                                           [--dashboard FILE]
#   URL          the agent's endpoint, e.g. http://127.0.0.1:9464 (a /metrics path is optional)
#   --require    a metric that must return data (repeatable; default: api_requests_total and
#                apitap_build_info)
#   --dashboard  also run every query of this Grafana dashboard (tools/check_dashboard_queries.py);
#                each must run and return data
#
# Starts Debian's /usr/bin/prometheus (or $PROMETHEUS) on a free loopback port with
# deploy/prometheus/prometheus.yml rewritten to scrape URL every second and a temporary
# storage dir, waits for a successful scrape, queries each required metric through the HTTP
# API, checks that every shipped rule evaluates without error, prints what it found and
# exits 0 when all of it holds, 1 otherwise. Bounded by --timeout (default 30 s); the
# Prometheus it started is always stopped and its files removed.
set -euo pipefail

DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROMETHEUS="${PROMETHEUS:-/usr/bin/prometheus}"
timeout_s=30
required=()
url=""
dashboard=""
while (($#)); do
    case "$1" in
        --timeout) timeout_s="$2"; shift 2 ;;
        --require) required+=("$2"); shift 2 ;;
        --dashboard) dashboard="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        -*) echo "scrape-test: unknown option $1" >&2; exit 2 ;;
        *) url="$1"; shift ;;
    esac
done
if [[ -z "$url" ]]; then
    echo "usage: $0 URL [--timeout SECONDS] [--require METRIC]..." >&2
    exit 2
fi
((${#required[@]})) || required=(api_requests_total apitap_build_info)
if [[ ! -x "$PROMETHEUS" ]]; then
    echo "scrape-test: $PROMETHEUS not found (apt-get install prometheus)" >&2
    exit 1
fi

# http://host:port[/path] -> scheme, host:port, path
if [[ ! "$url" =~ ^(https?)://([^/]+)(/.*)?$ ]]; then
    echo "scrape-test: not an http(s) URL: $url" >&2
    exit 2
fi
scheme="${BASH_REMATCH[1]}"
target="${BASH_REMATCH[2]}"
path="${BASH_REMATCH[3]:-/metrics}"
[[ "$path" == "/" ]] && path=/metrics

work="$(mktemp -d)"
prom_pid=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    if [[ -n "$prom_pid" ]] && kill -0 "$prom_pid" 2>/dev/null; then
        kill "$prom_pid" 2>/dev/null || true
        wait "$prom_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cp -r "$DEPLOY/prometheus/rules" "$work/rules"
sed -e "s|targets: \[\"localhost:9464\"\]|targets: [\"$target\"]|" \
    -e "s|^\(  *\)metrics_path: /metrics|\1metrics_path: $path\n\1scheme: $scheme|" \
    -e "s|^\(  *\)scrape_interval: 15s|\1scrape_interval: 1s|" \
    -e "s|^\(  *\)scrape_timeout: 10s|\1scrape_timeout: 1s|" \
    -e "s|^\(  *\)evaluation_interval: 15s|\1evaluation_interval: 1s|" \
    "$DEPLOY/prometheus/prometheus.yml" > "$work/prometheus.yml"
if ! grep -q "targets: \[\"$target\"\]" "$work/prometheus.yml"; then
    echo "scrape-test: could not rewrite the target in prometheus.yml" >&2
    exit 1
fi

"$PROMETHEUS" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn >"$work/prometheus.log" 2>&1 &
prom_pid=$!
api="http://127.0.0.1:$port/api/v1"
echo "scrape-test: prometheus (pid $prom_pid) on 127.0.0.1:$port scraping $scheme://$target$path"

# Polls until tools/prom_api.py KIND accepts the answer to QUERY_URL (exit 0), fails it for
# good (exit 2) or the deadline passes; prints the last verdict.
deadline=$((SECONDS + timeout_s))
wait_for() {
    local kind="$1" query_url="$2" out rc
    while true; do
        if ! kill -0 "$prom_pid" 2>/dev/null; then
            echo "prometheus exited: $(tail -n 3 "$work/prometheus.log")"
            return 1
        fi
        rc=0
        out="$(curl -fsS --max-time 2 "$query_url" 2>/dev/null | python3 "$DEPLOY/tools/prom_api.py" "$kind" 2>&1)" || rc=$?
        case "$rc" in
            0) echo "$out"; return 0 ;;
            3) ;;
            *) echo "$out"; return 1 ;;
        esac
        # Always one attempt, even when an earlier wait used up the time.
        if ((SECONDS >= deadline)); then
            echo "${out:-no answer}"
            return 1
        fi
        sleep 0.5
    done
}

failed=0
if out="$(wait_for up "$api/query?query=up%7Bjob%3D%22apitap%22%7D")"; then
    echo "ok    scrape: $out"
else
    echo "FAIL  scrape: no successful scrape of $url within ${timeout_s}s ($out)"
    curl -fsS --max-time 2 "$api/targets" 2>/dev/null | python3 -c '
import json, sys
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    print("      target", t["scrapeUrl"], t["health"], t.get("lastError", ""))' >&2 || true
    exit 1
fi
for metric in "${required[@]}"; do
    if out="$(wait_for query "$api/query?query=$metric")"; then
        echo "ok    query $metric: $out"
    else
        echo "FAIL  query $metric: $out (waited up to ${timeout_s}s)"
        failed=1
    fi
done
if out="$(wait_for rules "$api/rules")"; then
    echo "ok    rules: $out"
else
    echo "FAIL  rules: $out (waited up to ${timeout_s}s)"
    failed=1
fi
if [[ -n "$dashboard" ]]; then
    # rate() needs two samples in its window: retry until the deadline (at least once).
    while true; do
        if out="$(python3 "$DEPLOY/tools/check_dashboard_queries.py" "$api" "$dashboard" 2>&1)"; then
            echo "ok    $out"
            break
        fi
        if ((SECONDS >= deadline)) || grep -q 'rejected:' <<<"$out"; then
            echo "FAIL  dashboard queries:"
            echo "$out"
            failed=1
            break
        fi
        sleep 1
    done
fi
exit "$failed"
