#!/usr/bin/env bash
# Where evrouted's CPU goes under load: samples it with perf (Debian linux-perf) while wrk drives
# one scenario of bench/load.sh, then prints the share of samples by category and the top symbols.
#
#   bench/profile.sh [1|2|3|4a|4b] [SECONDS=8]
#     1: single events, 2: 100-event arrays, 3: NDJSON, 4a / 4b: 2 with the file sink on a disk
#     queue, fsync interval / always (as bench/load.sh's scenarios of those names)
#
# Needs the Release build bench/load.sh makes (build-release/daemon/evrouted), wrk, and perf that
# works here (`perf stat -e instructions true`).
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-1}
seconds=${2:-8}
evrouted=${EVROUTE_BENCH_BUILD_DIR:-build-release}/daemon/evrouted
[ -x "$evrouted" ] || { echo "profile.sh: build it first: bench/load.sh --smoke" >&2; exit 1; }
command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null
archive_queue=""
case $scenario in
  1) script=(bench/post_event.lua) ;;
  2) script=(bench/post_batch.lua) ;;
  3) script=(bench/post_batch.lua -- ndjson) ;;
  4a) script=(bench/post_batch.lua) archive_queue=", queue: { type: disk, fsync: interval }" ;;
  4b) script=(bench/post_batch.lua) archive_queue=", queue: { type: disk, fsync: always }" ;;
  *) echo "profile.sh: scenario is 1, 2, 3, 4a or 4b" >&2; exit 2 ;;
esac

work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
cat >"$work/evroute.yaml" <<YAML
server: { listen: "127.0.0.1:0" }
data_dir: $work/state
sinks:
  console: { type: stdout }
  archive: { type: file, path: $work/events.ndjson$archive_queue }
YAML
"$evrouted" --config "$work/evroute.yaml" >/dev/null 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$work/log")
[ -n "$port" ] || { cat "$work/log" >&2; exit 1; }

perf record -F 499 -o "$work/perf.data" -p "$pid" -- sleep "$seconds" >/dev/null 2>&1 &
perf_pid=$!
perf stat -e task-clock,context-switches -p "$pid" -o "$work/stat.txt" -- sleep "$seconds" &
stat_pid=$!
wrk -t2 -c16 -d"${seconds}s" --latency -s "${script[0]}" "http://127.0.0.1:$port/v1/events" \
  ${script[1]:+"${script[@]:1}"} >"$work/wrk.txt"
wait "$perf_pid" "$stat_pid" || true
requests=$(awk '/requests in/ { print $1 }' "$work/wrk.txt")

echo "scenario $scenario: $(awk '/Requests\/sec/ { print $2 }' "$work/wrk.txt") req/s over ${seconds}s"
awk -v n="$requests" '/task-clock/ { gsub(",", "", $1); printf "CPU: %.1f us per request\n", $1 * 1000 / n }
  /context-switches/ { gsub(",", "", $1); printf "context switches: %.1f per request\n", $1 / n }' "$work/stat.txt"
echo
echo "Share of evrouted's CPU samples:"
perf report -i "$work/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' |
  awk '{ p = $1; sub("%", "", p); k = $2; $1 = ""; $2 = ""; s = $0; c = "other"
    if (k == "[k]") c = "kernel: syscalls (poll, send, recv, writev, futex), scheduling, TCP"
    else if (s ~ /nlohmann/) c = "JSON: nlohmann parse, DOM and dump"
    else if (s ~ /malloc|free|_int_|unlink_chunk|operator new|operator delete/) c = "malloc/free"
    else if (s ~ /writev|__poll|__send|recv|futex|pthread|__GI___|asynccancel/) c = "libc: syscall wrappers, locks"
    else if (s ~ /httplib|tolower|basic_string|memmove|memcpy|memchr|strlen/) c = "cpp-httplib, strings, memcpy"
    else if (s ~ /evroute/) c = "evroute: router, queues, sinks, ids"
    t[c] += p } END { for (c in t) printf "  %5.1f%%  %s\n", t[c], c }' | sort -rn
echo
echo "Top symbols:"
perf report -i "$work/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' |
  head -15 | cut -c1-120
