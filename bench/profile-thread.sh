#!/bin/sh
# The analysis thread alone, with DWARF call stacks: waits for the first agent the bench starts
# (its command name must be `apitap`), lets its wrk run get going, samples its apitap-analyze
# thread for SECS seconds and prints the thread's functions by self share. Figures, never
# assertions.
#
#   flock /tmp/apitap-root.lock cargo xtask bench --live-only --rounds 1 --parts worst &
#   bench/profile-thread.sh 2 /tmp/analyze.perf
#
# perf comes from apt (linux-perf); on a VM without a PMU it samples cpu-clock.
set -eu
secs=${1:-2}
out=${2:-/tmp/analyze.perf}
while :; do
    pid=$(pgrep -x apitap | head -n 1 || true)
    [ -n "$pid" ] && break
    sleep 0.05
done
sleep 1.5
tid=$(ps -T -p "$pid" -o spid=,comm= | awk '$2 == "apitap-analyze" { print $1 }')
if [ -z "$tid" ]; then
    echo "no apitap-analyze thread in pid $pid" >&2
    exit 1
fi
perf record -F 1999 --call-graph dwarf,16384 -t "$tid" -o "$out" -- sleep "$secs" >/dev/null 2>&1
echo "== the analysis thread (tid $tid), by function (self share of its samples)"
perf report -i "$out" --no-children --sort sym -g none --stdio 2>/dev/null | grep '%' | head -n 25
echo "(callers of one function: perf report -i $out --no-children -G --symbol-filter=NAME --stdio)"
