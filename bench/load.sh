#!/usr/bin/env bash
# Load benchmark for evrouted (issues 6 and 12). One command, from a fresh clone:
#
#   bench/load.sh [--runs N] [--duration SECONDS] [--connections N] [--only LIST] [--smoke]
#
# Installs wrk and nginx if missing (scripts/install-deps --bench), builds evrouted, bare_server and
# slowloris Release, and for each of N runs (default 3; 10 s per scenario, wrk -t2 -c16) measures on
# free 127.0.0.1 ports:
#   ceiling  nginx `return 204;` answering the same single-event POST
#   ceiling1k  the same with wrk -c1000: the ceiling of scenario 1k
#   bare     bench/bare_server: evrouted's HTTP core, a handler that parses the body (parse_events)
#            and answers 202: the second ceiling (what the core costs without evrouted's work)
#   1        single-event POSTs (bench/post_event.lua) -> file sink + stdout sink (to /dev/null)
#   1k       scenario 1 with wrk -c1000 (socket errors and non-2xx answers are reported)
#   2        100-event JSON arrays (bench/post_batch.lua) -> the same two sinks
#   3        100-event NDJSON -> the same two sinks
#   4a, 4b   scenario 2 with the file sink behind a disk queue (queue.type: disk), fsync: interval
#            (4a) and fsync: always (4b): every 202 waits for the append (and, in 4b, the fdatasync)
#   5        single-event POSTs -> file + stdout + an http sink whose receiver (nginx, started by this
#            script) is down for the first half of the run
#   6        50-event arrays of 4 KB events (bench/post_big.lua) -> the same three sinks, the receiver
#            down for the whole run: limits.memory binds (503s); the receiver comes up after wrk
#   7        100-event arrays (bench/post_batch.lua) -> an http sink (concurrency: 8) with
#            queue: { type: jetstream } on a 3-node NATS JetStream cluster (nats-server, started by
#            this script; replicas: 3), shared by 2 evrouted replicas on the same config; two wrk
#            -t1 -c(N/2), one per replica. The receiver (nginx) logs each POST's webhook-id:
#            delivered = distinct ids received (>= accepted), duplicates = POSTs beyond them.
#            req/s and errors are summed over both wrk, p50/p99 are the larger of the two, RSS the
#            larger replica's, CPU/ctx per request both replicas' (nats-server's own CPU is logged)
#   slow     bench/slowloris against evrouted with default server settings: 1,000 connections
#            (a fifth idle, the rest sending a header byte a second) while a normal client makes
#            GET /healthz and POST /v1/events one connection at a time for 12 s (past the 10 s
#            request_timeout, so the 408s and reconnects fall inside; 3 s, 100 connections with
#            --smoke): requests made, answered, share within 100 ms, p50/p99/max,
#            evrouted's open fds during the attack
# Per wrk scenario: requests/s, events/s (accepted events / duration), p50/p99, evrouted's peak RSS
# (VmHWM), CPU time per request (utime+stime of the process across the wrk run / requests wrk
# completed) and context switches per request (voluntary+nonvoluntary over its threads), wrk's
# socket errors + non-2xx answers, accepted vs delivered for every sink, and (single-event
# scenarios) req/s as a ratio of both ceilings measured in the same run; the ceilings get the same
# CPU and context-switch figures (nginx: over its worker processes). Then the median of each over
# the runs.
#
# Every scenario waits (bounded) until evrouted's queues are empty, stops it with SIGTERM and checks
# delivered == accepted for every sink (the file's lines, the stdout sink's counter, the receiver's
# log): a run that loses an event fails the script (exit 1). Figures never fail it. --smoke is one
# run of 2 s per scenario (slow: 3 s, 100 connections), for CI: it checks that the script works
# and loses nothing. --only 4a,4b,7 runs only those (names as above: ceiling, ceiling1k, bare, 1,
# 1k, 2, 3, 4a, 4b, 5, 6, 7, slow); the x_ngx/x_bare ratios then need their ceilings listed too.
# EVROUTED=PATH uses that evrouted binary instead of building one (bare_server and slowloris are
# then taken from its build directory, for the scenarios that need them).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3 duration=10 conns=16 smoke=false only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --smoke) smoke=true; runs=1; duration=2; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "load.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$runs" -ge 1 ] && [ "$duration" -ge 2 ] || { echo "load.sh: need --runs >= 1, --duration >= 2" >&2; exit 2; }

log() { echo "load.sh: $*" >&2; }
fail() { echo "load.sh: FAILED: $*" >&2; exit 1; }
all_scenarios="ceiling ceiling1k bare 1 1k 2 3 4a 4b 5 6 7 slow"
for s in ${only//,/ }; do
  [[ " $all_scenarios " == *" $s "* ]] || { echo "load.sh: unknown scenario $s in --only (one of: $all_scenarios)" >&2; exit 2; }
done
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }  # want SCENARIO: whether it runs

scripts/install-deps --bench
if [ -n "${EVROUTED:-}" ]; then
  evrouted=$(realpath "$EVROUTED")
  log "using $evrouted (EVROUTED; not building)"
  bare_server=$(dirname "$(dirname "$evrouted")")/bench/bare_server
  slowloris=$(dirname "$(dirname "$evrouted")")/bench/slowloris
else
  build=${EVROUTE_BENCH_BUILD_DIR:-build-release}
  log "building evrouted, bare_server, slowloris (Release) in $build"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DEVROUTE_BUILD_TESTS=OFF -DEVROUTE_BUILD_BENCH=OFF \
    >/dev/null
  cmake --build "$build" -j"$(nproc)" --target evrouted bare_server slowloris >/dev/null
  evrouted=$PWD/$build/daemon/evrouted
  bare_server=$PWD/$build/bench/bare_server
  slowloris=$PWD/$build/bench/slowloris
fi
nats_server=$(command -v nats-server || echo /usr/sbin/nats-server)
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
# wrk -c1000 (scenario 1k) and slowloris need a descriptor per connection, and so does whatever
# they connect to (evrouted raises its own soft limit; nginx and bare_server inherit this one).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 2200 ] ||
  log "warning: ulimit -n is $(ulimit -n): scenarios 1k and slow need ~2,200 descriptors"
clk_tck=$(getconf CLK_TCK)

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A loopback port nothing listens on: a random one not among the sockets in /proc/net/tcp*.
pick_port() {
  local used p
  used=$(awk 'NR > 1 { split($2, a, ":"); print a[2] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null |
    while read -r hex; do [ -n "$hex" ] && echo $((16#$hex)); done)
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    grep -qx "$p" <<<"$used" || { echo "$p"; return; }
  done
  fail "no free port"
}

# Polls (up to $2 tenths of a second) until command $1 succeeds.
wait_for() {
  local i
  for i in $(seq "$2"); do eval "$1" && return 0; sleep 0.1; done
  return 1
}

# nginx in the foreground of its own prefix: `return 204` on $1; with $2, also logs each request's
# method and status to $2 (the webhook receiver of scenario 5), and with $3 its webhook-id header
# too (scenario 7). Sets nginx_pid.
start_nginx() {
  local port=$1 access_log=${2:-} with_id=${3:-false} dir
  dir=$(mktemp -d "$work/nginx.XXXX")
  local alog="access_log off;" fields='$request_method $status'
  $with_id && fields+=' $http_webhook_id'
  [ -n "$access_log" ] && alog="log_format st '$fields'; access_log $access_log st;"
  cat >"$dir/nginx.conf" <<NGINX
$([ "$(id -u)" = 0 ] && echo "user root;")
daemon off;
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http {
  $alog
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fcgi;
  uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$port; location / { return 204; } }
}
NGINX
  "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" </dev/null >/dev/null 2>>"$dir/error.log" &
  nginx_pid=$!
  pids+=("$nginx_pid")
  wait_for "curl -s -o /dev/null http://127.0.0.1:$port/" 50 || { cat "$dir/error.log" >&2; fail "nginx did not start"; }
}

stop() {  # stops our child PID gracefully (SIGTERM: evrouted drains) and waits; sets stop_rc
  kill -TERM "$1" 2>/dev/null || true
  stop_rc=0
  wait "$1" || stop_rc=$?
}

# wrk output -> "req/s p50_ms p99_ms non2xx requests socket_errors" (socket_errors:
# connect/read/write/timeout)
parse_wrk() {
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000; return v * 1000 }
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    /Non-2xx/ { bad = $NF }
    / requests in / { n = $1 }
    /Socket errors:/ { gsub(",", ""); se = $4 "/" $6 "/" $8 "/" $10 }
    END { printf "%.0f %.3f %.3f %d %d %s\n", rps, p50, p99, bad, n, (se == "" ? "0/0/0/0" : se) }' "$1"
}

# "cpu_ticks context_switches" of the processes given: utime+stime of each whole process
# (/proc/PID/stat: its threads, the exited ones included) and voluntary+nonvoluntary context
# switches summed over its live threads (/proc/PID/task/*/status).
proc_usage() {
  local p t=0 c=0 ticks switches
  for p in "$@"; do
    ticks=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    switches=$(cat /proc/"$p"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }')
    t=$((t + ticks)) c=$((c + switches))
  done
  echo "$t $c"
}

# per_request "TICKS0 CTX0" "TICKS1 CTX1" REQUESTS -> "cpu_us_per_request ctx_per_request"
per_request() {
  awk -v a="$1" -v b="$2" -v n="$3" -v hz="$clk_tck" 'BEGIN { split(a, x, " "); split(b, y, " ")
    if (n <= 0) { print "- -"; exit }
    printf "%.1f %.2f\n", (y[1] - x[1]) * 1e6 / hz / n, (y[2] - x[2]) / n }'
}

metric() {  # metric PORT NAME [LABELS]  -> value
  local name=$2
  [ -n "${3:-}" ] && name+="{$3}"
  curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$name" '$1 == n { print $2 }'
}

run_wrk() {  # run_wrk URL SCRIPT [ARG] -> wrk output on stdout; $wrk_conns connections
  wrk -t2 -c"$wrk_conns" -d"${duration}s" --timeout 10s --latency -s "$2" "$1" ${3:+-- "$3"}
}
wrk_conns=$conns

# Removes a checked scenario's event file and disk queues: a batch scenario leaves gigabytes of
# dirty page cache, and the kernel writing it back took the cores from the next scenario (NDJSON
# after arrays: 1.13 M events/s and 21-31 context switches per request, 1.64-1.71 M and 6-9 with
# the file removed; bench/README.md, "Issue 15, third step").
discard_output() {
  rm -rf "$1/events.ndjson" "$1/state"
}

# One evrouted scenario. Sets result="req/s events/s p50 p99 rss_mib accepted delivered non2xx
# cpu_us_per_request ctx_per_request socket_errors".
scenario() {
  local name=$1 script=$2 arg=${3:-} with_hook=${4:-false} hook_up=${5:-half} fsync=${6:-}
  local dir="$work/$name" hook_port="" hook_pid="" archive_queue=""
  mkdir -p "$dir"
  [ -n "$fsync" ] && archive_queue=", queue: { type: disk, fsync: $fsync }"
  cat >"$dir/evroute.yaml" <<YAML
server: { listen: "127.0.0.1:0" }
data_dir: $dir/state
sinks:
  console: { type: stdout }
  archive: { type: file, path: $dir/events.ndjson$archive_queue }
YAML
  if $with_hook; then
    hook_port=$(pick_port)
    # Retries without a give-up bound and a short breaker cooldown: the receiver is down for half
    # the run, and every event must reach it once it is up.
    cat >>"$dir/evroute.yaml" <<YAML
  hook:
    type: http
    url: http://127.0.0.1:$hook_port/hooks
    retry: { max_attempts: 0, max_elapsed: 10m, max_backoff: 1s, breaker: { threshold: 5, cooldown: 1s } }
YAML
  fi
  "$evrouted" --config "$dir/evroute.yaml" >/dev/null 2>"$dir/log" &
  local pid=$!
  pids+=("$pid")
  wait_for "grep -qs 'listening on' '$dir/log'" 100 || { cat "$dir/log" >&2; fail "$name: evrouted did not start"; }
  local port
  port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$dir/log")

  local usage0 usage1
  usage0=$(proc_usage "$pid")
  run_wrk "http://127.0.0.1:$port/v1/events" "$script" "$arg" >"$dir/wrk.txt" &
  local wrk_pid=$!
  if $with_hook && [ "$hook_up" = half ]; then  # the receiver comes up half-way through
    sleep $((duration / 2))
    start_nginx "$hook_port" "$dir/hook.log"
    hook_pid=$nginx_pid
  fi
  wait "$wrk_pid" || fail "$name: wrk failed: $(cat "$dir/wrk.txt")"
  usage1=$(proc_usage "$pid")
  if $with_hook && [ "$hook_up" = end ]; then  # the receiver comes up once the load is over
    start_nginx "$hook_port" "$dir/hook.log"
    hook_pid=$nginx_pid
  fi

  # Bounded wait until every queue is empty (the hook catches up after its receiver came up) and
  # the accepted count is settled: requests that wrk gave up on may still be admitted after it exits.
  local accepted="" previous=-1 tries=0
  while :; do
    accepted=$(metric "$port" evroute_events_accepted_total)
    [ "$accepted" = "$previous" ] && break
    previous=$accepted
    wait_for "[ \"\$(curl -s http://127.0.0.1:$port/metrics | awk '/^evroute_sink_queue_depth/ { s += \$2 } END { print s + 0 }')\" = 0 ]" 1200 ||
      fail "$name: queues did not drain within 120 s"
    sleep 0.5
    tries=$((tries + 1))
    [ "$tries" -lt 20 ] || fail "$name: the accepted count does not settle"
  done
  local rss_kib console
  rss_kib=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
  console=$(metric "$port" evroute_sink_events_delivered_total 'sink="console"')
  local hook_delivered=""
  $with_hook && hook_delivered=$(metric "$port" evroute_sink_events_delivered_total 'sink="hook"')
  stop "$pid"
  [ "$stop_rc" = 0 ] || fail "$name: evrouted exited $stop_rc"
  local file_lines
  file_lines=$(wc -l <"$dir/events.ndjson")
  [ "$file_lines" = "$accepted" ] || fail "$name: file sink has $file_lines events, $accepted accepted"
  discard_output "$dir"
  [ "$console" = "$accepted" ] || fail "$name: stdout sink delivered $console, $accepted accepted"
  local delivered="file=$file_lines,stdout=$console"
  if $with_hook; then
    stop "$hook_pid"  # nginx writes out its access log
    local received
    received=$(grep -c '^POST 2' "$dir/hook.log" || true)  # not the readiness probe (GET)
    [ "$hook_delivered" = "$accepted" ] || fail "$name: http sink delivered $hook_delivered, $accepted accepted"
    [ "$received" -ge "$accepted" ] || fail "$name: the receiver got $received events, $accepted accepted"
    delivered+=",http=$hook_delivered(receiver:$received)"
  fi
  [ "$accepted" -gt 0 ] || fail "$name: nothing was accepted"
  local rps p50 p99 bad requests sockerr
  read -r rps p50 p99 bad requests sockerr < <(parse_wrk "$dir/wrk.txt")
  local eps=$((accepted / duration))
  result="$rps $eps $p50 $p99 $((rss_kib / 1024)) $accepted $delivered $bad $(per_request "$usage0" "$usage1" "$requests") $sockerr"
}

# Scenario 7: a 3-node NATS JetStream cluster (nats-server, on free loopback ports, data under
# $work), 2 evrouted replicas on one config (an http sink with a jetstream queue, replicas: 3) and
# a wrk per replica. Sets result as scenario() does; fails on a lost event or an unclean exit.
cluster_scenario() {
  local name=$1 script=$2 dir="$work/$1" i
  mkdir -p "$dir"
  [ -x "$nats_server" ] || fail "$name: needs nats-server (scripts/install-deps --bench installs it)"
  local client=() route=() monitor=() npids=() routes="" servers=""
  for i in 0 1 2; do client+=("$(pick_port)") route+=("$(pick_port)") monitor+=("$(pick_port)"); done
  for i in 0 1 2; do
    routes+="${routes:+, }nats-route://127.0.0.1:${route[$i]}"
    servers+="${servers:+, }\"nats://127.0.0.1:${client[$i]}\""
  done
  for i in 0 1 2; do
    mkdir -p "$dir/n$i"
    cat >"$dir/n$i/nats.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:${client[$i]}
http: 127.0.0.1:${monitor[$i]}
jetstream { store_dir: "$dir/n$i/js", max_file_store: 4GB, max_memory_store: 256MB }
cluster { name: evroute, listen: 127.0.0.1:${route[$i]}, routes: [$routes] }
CONF
    "$nats_server" -c "$dir/n$i/nats.conf" >"$dir/n$i/log" 2>&1 &
    npids+=($!)
    pids+=($!)
  done
  # Bounded wait until every node answers /healthz and names the same JetStream meta leader.
  nats_agree() {
    local leaders="" l j
    for j in 0 1 2; do
      curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:${monitor[$j]}/healthz" || return 1
      l=$(curl -s --max-time 1 "http://127.0.0.1:${monitor[$j]}/jsz" | grep -o '"leader": *"[^"]*"' | head -1)
      [ -n "$l" ] || return 1
      leaders+="$l"$'\n'
    done
    [ "$(sort -u <<<"$leaders" | grep -c .)" = 1 ]
  }
  wait_for nats_agree 300 || { tail -5 "$dir"/n*/log >&2; fail "$name: the NATS cluster has no meta leader within 30 s"; }

  local hook_port hook_pid
  hook_port=$(pick_port)
  start_nginx "$hook_port" "$dir/hook.log" true
  hook_pid=$nginx_pid
  cat >"$dir/evroute.yaml" <<YAML
server: { listen: "127.0.0.1:0" }
data_dir: "$dir/state-\${EVROUTE_BENCH_REPLICA}"
nats: { servers: [$servers], replicas: 3 }
sinks:
  hook:
    type: http
    url: http://127.0.0.1:$hook_port/hooks
    concurrency: 8
    queue: { type: jetstream }
    retry: { max_attempts: 0, max_elapsed: 10m, max_backoff: 1s }
YAML
  # One replica after the other: the first creates the streams, the second finds them.
  local rpids=() rports=() r
  for r in a b; do
    EVROUTE_BENCH_REPLICA=$r "$evrouted" --config "$dir/evroute.yaml" >/dev/null 2>"$dir/log-$r" &
    rpids+=($!)
    pids+=($!)
    wait_for "grep -qs 'listening on' '$dir/log-$r'" 100 || { cat "$dir/log-$r" >&2; fail "$name: evrouted $r did not start"; }
    rports+=("$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$dir/log-$r")")
    wait_for "curl -sf -o /dev/null http://127.0.0.1:${rports[-1]}/readyz" 300 ||
      { cat "$dir/log-$r" >&2; fail "$name: evrouted $r is not ready within 30 s"; }
  done

  local usage0 usage1 nats0 nats1 wpids=() half=$((wrk_conns / 2))
  [ "$half" -ge 1 ] || half=1
  usage0=$(proc_usage "${rpids[@]}")
  nats0=$(proc_usage "${npids[@]}")
  for i in 0 1; do
    wrk -t1 -c"$half" -d"${duration}s" --timeout 10s --latency -s "$script" \
      "http://127.0.0.1:${rports[$i]}/v1/events" >"$dir/wrk-$i.txt" &
    wpids+=($!)
  done
  for i in 0 1; do wait "${wpids[$i]}" || fail "$name: wrk failed: $(cat "$dir/wrk-$i.txt")"; done
  usage1=$(proc_usage "${rpids[@]}")
  nats1=$(proc_usage "${npids[@]}")

  # Bounded wait until the consumer has nothing pending (the depth is the consumer's, the same
  # from both replicas, refreshed every second) and the accepted count (both replicas) settles.
  accepted_sum() { echo $(( $(metric "${rports[0]}" evroute_events_accepted_total) + $(metric "${rports[1]}" evroute_events_accepted_total) )); }
  local accepted="" previous=-1 tries=0
  while :; do
    accepted=$(accepted_sum)
    [ "$accepted" = "$previous" ] && break
    previous=$accepted
    wait_for "[ \"\$(curl -s http://127.0.0.1:${rports[0]}/metrics | awk '/^evroute_sink_queue_depth/ { s += \$2 } END { print s + 0 }')\" = 0 ]" 1800 ||
      fail "$name: the JetStream consumer did not drain within 180 s"
    sleep 1.5
    tries=$((tries + 1))
    [ "$tries" -lt 20 ] || fail "$name: the accepted count does not settle"
  done
  local rss_kib=0 k hook_delivered=0
  for i in 0 1; do
    k=$(awk '/VmHWM/ { print $2 }' "/proc/${rpids[$i]}/status")
    [ "$k" -gt "$rss_kib" ] && rss_kib=$k
    hook_delivered=$((hook_delivered + $(metric "${rports[$i]}" evroute_sink_events_delivered_total 'sink="hook"')))
  done
  for i in 0 1; do
    stop "${rpids[$i]}"
    [ "$stop_rc" = 0 ] || fail "$name: evrouted replica $i exited $stop_rc"
  done
  stop "$hook_pid"  # nginx writes out its access log
  for i in 0 1 2; do stop "${npids[$i]}"; done
  local posts unique
  posts=$(grep -c '^POST 2' "$dir/hook.log" || true)
  unique=$(awk '$1 == "POST" && $2 ~ /^2/ { print $3 }' "$dir/hook.log" | sort -u | wc -l)
  [ "$accepted" -gt 0 ] || fail "$name: nothing was accepted"
  [ "$unique" -ge "$accepted" ] || fail "$name: the receiver got $unique distinct events, $accepted accepted"
  [ "$hook_delivered" -ge "$accepted" ] || fail "$name: http sink delivered $hook_delivered, $accepted accepted"
  local delivered="http=$hook_delivered(receiver:$unique,dup:$((posts - unique)))"
  # Both wrk: req/s, requests, non-2xx and socket errors summed; p50/p99 the larger.
  local rps=0 p50=0 p99=0 bad=0 requests=0 sockerr="0/0/0/0" a b c d e f
  for i in 0 1; do
    read -r a b c d e f < <(parse_wrk "$dir/wrk-$i.txt")
    rps=$((rps + a)) bad=$((bad + d)) requests=$((requests + e))
    p50=$(awk -v x="$p50" -v y="$b" 'BEGIN { print (y > x ? y : x) }')
    p99=$(awk -v x="$p99" -v y="$c" 'BEGIN { print (y > x ? y : x) }')
    sockerr=$(awk -v x="$sockerr" -v y="$f" 'BEGIN { split(x, p, "/"); split(y, q, "/"); printf "%d/%d/%d/%d", p[1] + q[1], p[2] + q[2], p[3] + q[3], p[4] + q[4] }')
  done
  log "$name: nats-server (3 nodes) CPU per request: $(per_request "$nats0" "$nats1" "$requests" | cut -d' ' -f1) µs; receiver: $posts POSTs, $unique distinct events"
  local eps=$((accepted / duration))
  result="$rps $eps $p50 $p99 $((rss_kib / 1024)) $accepted $delivered $bad $(per_request "$usage0" "$usage1" "$requests") $sockerr"
}

# nginx `return 204` on the single-event POST: sets result="req/s p50 p99 cpu_us ctx non2xx
# socket_errors" (CPU and switches over its worker processes).
ceiling() {
  local port workers usage0 usage1 rps p50 p99 bad requests sockerr
  port=$(pick_port)
  start_nginx "$port"
  workers=$(pgrep -P "$nginx_pid" | tr '\n' ' ')
  usage0=$(proc_usage $workers)
  run_wrk "http://127.0.0.1:$port/v1/events" bench/post_event.lua >"$work/ceiling.txt"
  usage1=$(proc_usage $workers)
  stop "$nginx_pid"
  read -r rps p50 p99 bad requests sockerr < <(parse_wrk "$work/ceiling.txt")
  result="$rps $p50 $p99 $(per_request "$usage0" "$usage1" "$requests") $bad $sockerr"
}

# bench/bare_server (default threads, like evrouted) on the single-event POST: sets result as
# ceiling() does.
bare() {
  local port pid usage0 usage1 rps p50 p99 bad requests sockerr
  "$bare_server" --listen 127.0.0.1:0 >"$work/bare.out" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_for "grep -qs 'listening on' '$work/bare.out'" 100 || { cat "$work/bare.out" >&2; fail "bare_server did not start"; }
  port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$work/bare.out")
  usage0=$(proc_usage "$pid")
  run_wrk "http://127.0.0.1:$port/v1/events" bench/post_event.lua >"$work/bare.txt"
  usage1=$(proc_usage "$pid")
  stop "$pid"
  [ "$stop_rc" = 0 ] || fail "bare_server exited $stop_rc"
  read -r rps p50 p99 bad requests sockerr < <(parse_wrk "$work/bare.txt")
  [ "$bad" = 0 ] || fail "bare_server answered $bad non-2xx to valid events: $(cat "$work/bare.txt")"
  result="$rps $p50 $p99 $(per_request "$usage0" "$usage1" "$requests") $bad $sockerr"
}

# Scenario slow: bench/slowloris against an evrouted with default server settings (file sink).
# Sets result to slowloris' key=value line; fails on a lost event or an unclean exit.
slow() {
  local name=$1 dir="$work/$1" n d port pid
  n=1000 d=12
  $smoke && n=100 d=3
  mkdir -p "$dir"
  cat >"$dir/evroute.yaml" <<YAML
server: { listen: "127.0.0.1:0" }
data_dir: $dir/state
sinks:
  archive: { type: file, path: $dir/events.ndjson }
YAML
  "$evrouted" --config "$dir/evroute.yaml" >/dev/null 2>"$dir/log" &
  pid=$!
  pids+=("$pid")
  wait_for "grep -qs 'listening on' '$dir/log'" 100 || { cat "$dir/log" >&2; fail "$name: evrouted did not start"; }
  port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$dir/log")
  "$slowloris" --target "127.0.0.1:$port" --connections "$n" --duration "$d" --pid "$pid" \
    >"$dir/slowloris.txt" 2>"$dir/slowloris.log" || fail "$name: slowloris failed: $(cat "$dir/slowloris.log")"
  local accepted lines
  wait_for "[ \"\$(curl -s http://127.0.0.1:$port/metrics | awk '/^evroute_sink_queue_depth/ { s += \$2 } END { print s + 0 }')\" = 0 ]" 300 ||
    fail "$name: queues did not drain within 30 s"
  accepted=$(metric "$port" evroute_events_accepted_total)
  stop "$pid"
  [ "$stop_rc" = 0 ] || fail "$name: evrouted exited $stop_rc"
  lines=$(wc -l <"$dir/events.ndjson")
  [ "$lines" = "$accepted" ] || fail "$name: file sink has $lines events, $accepted accepted"
  discard_output "$dir"
  result="$(cat "$dir/slowloris.txt") accepted=$accepted delivered=$lines"
}

# One row per wrk scenario and run (tab-separated): run scenario rps eps p50 p99 rss accepted
# delivered non2xx x_nginx x_bare cpu_us ctx socket_errors(c/r/w/t) errors(total)
results="$work/results.tsv"
slow_results="$work/slow.tsv"  # run, then slowloris' key=value figures
errors_total() {  # errors_total NON2XX C/R/W/T -> their sum
  awk -v b="$1" -v s="$2" 'BEGIN { n = split(s, e, "/"); t = b; for (i = 1; i <= n; i++) t += e[i]; print t }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
: >"$results"
: >"$slow_results"
for run in $(seq "$runs"); do
  c_rps=0 k_rps=0 b_rps=0  # ceilings not run (--only): no ratios
  if want ceiling; then
    log "run $run/$runs: nginx ceiling"
    ceiling
    read -r c_rps c_p50 c_p99 c_cpu c_ctx c_bad c_se <<<"$result"
    printf '%s\tceiling\t%s\t-\t%s\t%s\t-\t-\t-\t%s\t1.00\t-\t%s\t%s\t%s\t%s\n' "$run" "$c_rps" "$c_p50" \
      "$c_p99" "$c_bad" "$c_cpu" "$c_ctx" "$c_se" "$(errors_total "$c_bad" "$c_se")" >>"$results"
  fi
  # The same at -c1000: the machine's ceiling for scenario 1k, whose p99 it bounds (wrk's two
  # threads share the two cores with the server, and its latencies include their own queueing).
  if want ceiling1k; then
    log "run $run/$runs: nginx ceiling at -c1000"
    wrk_conns=1000
    ceiling
    wrk_conns=$conns
    read -r k_rps k_p50 k_p99 k_cpu k_ctx k_bad k_se <<<"$result"
    printf '%s\tceiling1k\t%s\t-\t%s\t%s\t-\t-\t-\t%s\t1.00\t-\t%s\t%s\t%s\t%s\n' "$run" "$k_rps" "$k_p50" \
      "$k_p99" "$k_bad" "$k_cpu" "$k_ctx" "$k_se" "$(errors_total "$k_bad" "$k_se")" >>"$results"
  fi
  if want bare; then
    log "run $run/$runs: bare_server ceiling"
    bare
    read -r b_rps b_p50 b_p99 b_cpu b_ctx b_bad b_se <<<"$result"
    printf '%s\tbare\t%s\t-\t%s\t%s\t-\t-\t-\t%s\t%s\t1.00\t%s\t%s\t%s\t%s\n' "$run" "$b_rps" "$b_p50" \
      "$b_p99" "$b_bad" "$(ratio "$b_rps" "$c_rps")" "$b_cpu" "$b_ctx" "$b_se" "$(errors_total "$b_bad" "$b_se")" >>"$results"
  fi
  for s in 1 1k 2 3 4a 4b 5 6 7 slow; do
    want "$s" || continue
    log "run $run/$runs: scenario $s"
    wrk_conns=$conns
    case $s in
      1) scenario s$s-$run bench/post_event.lua ;;
      1k) wrk_conns=1000; scenario s$s-$run bench/post_event.lua ;;
      2) scenario s$s-$run bench/post_batch.lua ;;
      3) scenario s$s-$run bench/post_batch.lua ndjson ;;
      4a) scenario s$s-$run bench/post_batch.lua "" false half interval ;;
      4b) scenario s$s-$run bench/post_batch.lua "" false half always ;;
      5) scenario s$s-$run bench/post_event.lua "" true ;;
      6) scenario s$s-$run bench/post_big.lua "" true end ;;
      7) cluster_scenario s$s-$run bench/post_batch.lua ;;
      slow)
        slow s$s-$run
        printf '%s\t%s\n' "$run" "$result" >>"$slow_results"
        continue ;;
    esac
    read -r rps eps p50 p99 rss accepted delivered bad cpu ctx sockerr <<<"$result"
    # req/s against the ceilings' single-event req/s (at -c$conns): meaningful for single-event
    # scenarios only
    x_nginx=- x_bare=-
    case $s in
      1 | 5) x_nginx=$(ratio "$rps" "$c_rps") x_bare=$(ratio "$rps" "$b_rps") ;;
      1k) x_nginx=$(ratio "$rps" "$k_rps") x_bare=$(ratio "$rps" "$b_rps") ;;  # nginx at -c1000
    esac
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$s" "$rps" "$eps" \
      "$p50" "$p99" "$rss" "$accepted" "$delivered" "$bad" "$x_nginx" "$x_bare" "$cpu" "$ctx" \
      "$sockerr" "$(errors_total "$bad" "$sockerr")" >>"$results"
  done
done

median() {  # median of column $2 for scenario $1 (numeric; "-" stays "-")
  awk -F'\t' -v s="$1" -v c="$2" '$2 == s { print $c }' "$results" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (v[1] == "-") print "-";
           else if (NR % 2) print v[(NR + 1) / 2]; else printf "%g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
slow_median() {  # median over the runs of slowloris' figure $1
  sed -n "s/.*[[:space:]]$1=\([^ ]*\).*/\1/p" "$slow_results" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
           else printf "%g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
echo "evrouted load benchmark: $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'),"
echo "$(nproc) cores, wrk -t2 -c$conns (1k: -c1000; 7: two wrk -t1 -c$((conns / 2)), one per replica), ${duration}s per scenario,"
echo "$runs run(s)${only:+, scenarios $only}; medians over runs;"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Per run (CPU: µs of the server's CPU time per request; ctx: its context switches per request;"
echo "errors: wrk's socket errors connect/read/write/timeout, and non-2xx answers):"
printf '%-4s %-8s %8s %9s %8s %8s %5s %7s %6s %6s %6s %13s  %s\n' run scenario req/s events/s p50_ms p99_ms RSS_MiB \
  CPU_us ctx x_ngx x_bare "sock_errors" "accepted -> delivered (non-2xx)"
while IFS=$'\t' read -r run s rps eps p50 p99 rss accepted delivered bad x_nginx x_bare cpu ctx sockerr _; do
  printf '%-4s %-8s %8s %9s %8s %8s %5s %7s %6s %6s %6s %13s  %s\n' "$run" "$s" "$rps" "$eps" "$p50" "$p99" "$rss" \
    "$cpu" "$ctx" "$x_nginx" "$x_bare" "$sockerr" \
    "$(case $s in ceiling | ceiling1k | bare) echo "($bad non-2xx)" ;; *) echo "$accepted -> $delivered ($bad)" ;; esac)"
done <"$results"
while IFS=$'\t' read -r run figures; do
  echo "$run    slow     $figures"
done <"$slow_results"
echo
echo "Medians:"
printf '| %-46s | %8s | %9s | %9s | %11s | %8s | %9s | %7s | %6s | %7s | %6s |\n' scenario req/s events/s p50 p99 \
  "peak RSS" "CPU/req" "ctx/req" errors "x nginx" "x bare"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..48})" ---------- ----------- ----------- \
  ------------- ---------- ----------- --------- -------- --------- --------
declare -A names=([ceiling]="nginx return 204 (ceiling)" [ceiling1k]="nginx return 204 at -c1000 (ceiling of 1k)" [bare]="bare_server: the HTTP core + parse (ceiling)"
       [1]="1 single events (file + stdout)" [1k]="1k = 1 with wrk -c1000"
       [2]="2 100-event JSON arrays" [3]="3 100-event NDJSON"
       [4a]="4a = 2, file on a disk queue, fsync interval"
       [4b]="4b = 2, file on a disk queue, fsync always"
       [5]="5 + http sink, receiver down 1st half" [6]="6 4 KB events, receiver down: budget"
       [7]="7 = 2, http sink on jetstream, 2 replicas")
for s in ceiling ceiling1k bare 1 1k 2 3 4a 4b 5 6 7; do
  awk -F'\t' -v s="$s" '$2 == s { found = 1 } END { exit !found }' "$results" || continue
  printf '| %-46s | %8s | %9s | %6s ms | %8s ms | %4s MiB | %6s µs | %7s | %6s | %7s | %6s |\n' "${names[$s]}" \
    "$(median "$s" 3)" "$(median "$s" 4)" "$(median "$s" 5)" "$(median "$s" 6)" "$(median "$s" 7)" \
    "$(median "$s" 13)" "$(median "$s" 14)" "$(median "$s" 16)" "$(median "$s" 11)" "$(median "$s" 12)"
done
if [ -s "$slow_results" ]; then
  echo
  echo "slow (slowloris, default server settings; medians over runs): $(slow_median connections) connections"
  echo "  ($(slow_median idle) idle, the rest a header byte a second; $(slow_median reopened) reopened after the server closed them,"
  echo "  $(slow_median got_408) of them after a 408); the normal client: $(slow_median requests) requests, $(slow_median answered) answered 2xx,"
  echo "  $(slow_median within_100ms_pct)% within 100 ms; p50 $(slow_median p50_ms) ms, p99 $(slow_median p99_ms) ms, max $(slow_median max_ms) ms;"
  echo "  evrouted's open fds during the attack: $(slow_median fds_min)-$(slow_median fds_max) (server.max_connections: 4096)"
  echo "  target (issue 12): >= 99% answered, each within 100 ms; fds bounded by max_connections"
fi
echo
echo "Every run: delivered == accepted for every sink (7: every accepted event received at least once,"
echo "dup: the deliveries made again); the run fails otherwise."
$smoke && echo "(smoke run: figures are not meaningful)"
exit 0
