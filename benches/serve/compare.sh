#!/usr/bin/env bash
# Serving throughput and latency of `stowage serve` beside nginx, on loopback, in one sitting: the same
# 2 MB segments of one bundle, 64 connections, wrk on 2 threads, ROUNDS alternating runs of SECONDS each.
# Needs wrk and nginx (apt-get install wrk nginx) and a release build of stowage
# (cargo build --release -p stowage). Prints wrk's report of every run.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN=${SECONDS_PER_RUN:-15}
ROUNDS=${ROUNDS:-3}
work=$(mktemp -d)
cleanup() {
  [ -n "${stowage_pid:-}" ] && kill "$stowage_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo run --quiet --release -p stowage-serve --example bench_store -- "$work/store" >/dev/null
# nginx's workers may run as another user: they must be able to read the store.
chmod -R a+rX "$work"

# nginx as it is usually set up for static files: sendfile, keep-alive, a worker per core, no access log.
mkdir -p "$work/nginx-temp"
cat >"$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx-temp;
  proxy_temp_path $work/nginx-temp;
  fastcgi_temp_path $work/nginx-temp;
  uwsgi_temp_path $work/nginx-temp;
  scgi_temp_path $work/nginx-temp;
  types { video/mp2t ts; }
  server {
    listen 127.0.0.1:18081;
    root $work/store;
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"
./target/release/stowage --store "$work/store" serve --listen 127.0.0.1:18080 >/dev/null &
stowage_pid=$!
sleep 1
curl -sf -o /dev/null http://127.0.0.1:18080/asset/big/video/seg-d0-s0.ts
curl -sf -o /dev/null http://127.0.0.1:18081/big/video/seg-d0-s0.ts

run() {
  local name=$1 url=$2 prefix=$3
  echo "== $name"
  SEGMENT_PREFIX=$prefix wrk -t2 -c64 -d"${SECONDS_PER_RUN}s" --latency -s benches/serve/rotate.lua "$url"
}
for round in $(seq "$ROUNDS"); do
  echo "#### round $round"
  if [ $((round % 2)) -eq 1 ]; then
    run "stowage serve" http://127.0.0.1:18080 /asset/big/video/
    run nginx http://127.0.0.1:18081 /big/video/
  else
    run nginx http://127.0.0.1:18081 /big/video/
    run "stowage serve" http://127.0.0.1:18080 /asset/big/video/
  fi
done
