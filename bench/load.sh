#!/usr/bin/env bash
# Load benchmark for evrouted: single-event POSTs with keep-alive, driven by wrk, against a fan-out
# to a file sink and a stdout sink (sent to /dev/null). Builds Release, runs the scenario, then
# stops evrouted (draining) and checks that every accepted event reached the file.
#   bench/load.sh [SECONDS] [CONNECTIONS]      (defaults: 10 s, 16 connections, 2 wrk threads)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
conns=${2:-16}
command -v wrk >/dev/null || { scripts/install-deps; apt-get install -y -qq wrk >/dev/null; }
scripts/install-deps
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DEVROUTE_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc)" --target evrouted >/dev/null

work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/evroute.yaml" <<YAML
server: { listen: "127.0.0.1:0" }
sinks:
  console: { type: stdout }
  archive: { type: file, path: $work/events.ndjson }
YAML
build-release/daemon/evrouted --config "$work/evroute.yaml" >/dev/null 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$work/log")
[ -n "$port" ] || { cat "$work/log"; exit 1; }

wrk -t2 -c"$conns" -d"${duration}s" --latency -s bench/post_event.lua "http://127.0.0.1:$port/v1/events" \
  | tee "$work/wrk.txt"
accepted=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^evroute_events_accepted_total/ {print $2}')
peak_rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"
wait "$pid" || true
delivered=$(wc -l <"$work/events.ndjson")
rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
echo
echo "requests/s: $rps  accepted: $accepted  delivered to file: $delivered  peak RSS: $((peak_rss_kb / 1024)) MiB"
[ "$accepted" = "$delivered" ] || { echo "FAILED: delivered != accepted"; exit 1; }
