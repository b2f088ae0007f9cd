#!/usr/bin/env bash
# apitap's memory with many open flows: nginx on lo in a private namespace, apitap attached,
# N keep-alive connections held open; prints apitap_flows_tracked and the agent's RSS.
# usage (root): bench/flows.sh [APITAP_BIN] [N]
set -euo pipefail
bin=${1:-target/release/apitap}
n=${2:-10000}
here=$(cd "$(dirname "$0")" && pwd)
ns=at-flows-$$
dir=$(mktemp -d)
cleanup() {
  [ -n "${agent:-}" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null || true
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 15000; }
http {
  access_log off;
  keepalive_timeout 120s;
  client_body_temp_path $dir/b; proxy_temp_path $dir/p; fastcgi_temp_path $dir/f;
  uwsgi_temp_path $dir/u; scgi_temp_path $dir/s;
  server { listen 127.0.0.1:18090; location / { return 200 'ok'; } }
}
CONF
ip netns exec "$ns" nginx -c "$dir/nginx.conf"
ip netns exec "$ns" "$bin" run -i lo -p 18090 --listen 127.0.0.1:9464 --data-dir "$dir/data" \
  --api-token bench-token-1 2>"$dir/agent.log" &
agent=$!
sleep 2
if ! kill -0 "$agent" 2>/dev/null; then echo "apitap exited:"; cat "$dir/agent.log"; exit 1; fi
rss() { awk '/VmRSS|VmHWM/ {printf "%s %s kB  ", $1, $2}' "/proc/$agent/status"; echo; }
echo "before: $(rss)"
ip netns exec "$ns" python3 "$here/flows.py" 127.0.0.1 18090 "$n" 8 &
client=$!
sleep 6
flows=$(ip netns exec "$ns" curl -s 127.0.0.1:9464/metrics | awk '$1=="apitap_flows_tracked" {print $2}')
lost=$(ip netns exec "$ns" curl -s 127.0.0.1:9464/metrics | awk '$1=="apitap_events_lost_total" {print $2}')
echo "with $n open connections: apitap_flows_tracked $flows, events lost $lost, $(rss)"
wait "$client"
