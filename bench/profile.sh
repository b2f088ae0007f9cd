#!/bin/sh
# Where the CPU goes while `cargo xtask bench` runs: waits for the Nth agent the bench starts
# (the 2nd is the worst case's second "with" run), samples the whole machine with perf for
# SECS seconds a moment after it started (inside its wrk run), and prints the share of each
# command and of the classifier's helpers. Figures, never assertions.
#
#   flock /tmp/apitap-root.lock cargo xtask bench --live-only --parts worst &
#   bench/profile.sh 2 3 /tmp/apitap.perf
#
# perf comes from apt (linux-perf); on a VM without a PMU it samples cpu-clock.
set -eu
nth=${1:-2}
secs=${2:-3}
out=${3:-/tmp/apitap.perf}
seen=""
count=0
while :; do
    pid=$(pgrep -x apitap | head -n 1 || true)
    if [ -n "$pid" ] && ! echo " $seen " | grep -q " $pid "; then
        seen="$seen $pid"
        count=$((count + 1))
        if [ "$count" -ge "$nth" ]; then
            break
        fi
    fi
    sleep 0.05
done
sleep 1.2
perf record -a -g -F 1999 -o "$out" -- sleep "$secs" >/dev/null 2>&1
echo "== share of all samples by command"
perf report -i "$out" --no-children --sort comm -g none --stdio 2>/dev/null | grep '%' | head -n 8
echo "== the classifier and its helpers (inclusive share of all samples)"
perf report -i "$out" --children --sort sym -g none --stdio 2>/dev/null |
    grep -E 'bpf_prog_.*tc_|bpf_skb_|bpf_ringbuf|pskb_|established_get' | head -n 12
echo "== the agent's analysis thread, by function (self share of all samples)"
perf report -i "$out" --no-children --comm apitap-analyze --sort sym -g none --stdio 2>/dev/null |
    grep '%' | head -n 20
