#!/usr/bin/env bash
# Try several evrouted sharing the work through NATS JetStream on this machine (a minute, once built):
#
#   examples/cluster/run.sh            # start everything, print what to try, Ctrl-C stops it all
#   examples/cluster/run.sh --demo     # the same, non-interactively: posts, kill -9, checks, exits
#
# It builds evrouted (Release, in build-release/, or $EVROUTE_BUILD_DIR; $EVROUTED names a binary
# to use instead), then starts, all on 127.0.0.1 and with their data in one temporary directory:
#   * 3 nats-server nodes (JetStream, one cluster): clients on ports 14222-14224, routes on
#     16222-16224, monitoring on 18222-18224; it waits until they agree on a JetStream meta leader;
#   * a webhook receiver (python3) on 18090 that logs each POST as "<event id> <replica>" to
#     received.log;
#   * 2 evrouted replicas, A on 18080 and B on 18081, both on examples/cluster/evroute.yaml: an http
#     sink to the receiver with queue: { type: jetstream }, in a replicas-3 stream.
# Ctrl-C (or the end of --demo) stops exactly the processes it started and removes the directory.
#
# --demo [--events N]: posts N events (default 1000, in arrays of 10, ids demo-1..demo-N) spread
# over both replicas, kill -9s replica B half-way (it holds events it has not delivered), posts the
# rest to A, then waits (up to 60 s) until the receiver has every acknowledged (202) event. Prints
# acknowledged, delivered and duplicates; exits 0 when every acknowledged event was delivered,
# 1 when one was lost.
#
# Ports are fixed so that the config file can name them (examples/cluster/evroute.yaml reads them
# from the environment this script sets); they are below 32768 (the ephemeral range) so a killed
# node can be started again on its port at once. The script refuses to start if one is taken.
set -euo pipefail
cd "$(dirname "$0")/../.."

demo=false events=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --demo | --check) demo=true; shift ;;
    --events) events=$2; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$events" -ge 20 ] 2>/dev/null || { echo "run.sh: --events must be a number >= 20" >&2; exit 2; }

log() { echo "run.sh: $*" >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }

nats_client=(14222 14223 14224) nats_route=(16222 16223 16224) nats_monitor=(18222 18223 18224)
replica_names=(A B) replica_ports=(18080 18081) receiver_port=18090

# --- what it needs -----------------------------------------------------------------------------
if [ -n "${EVROUTED:-}" ]; then
  evrouted=$EVROUTED
else
  build=${EVROUTE_BUILD_DIR:-build-release}
  [ -x "$build/daemon/evrouted" ] || scripts/install-deps
  log "building evrouted (Release) in $build"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DEVROUTE_BUILD_TESTS=OFF \
    -DEVROUTE_BUILD_BENCH=OFF >/dev/null
  cmake --build "$build" -j"$(nproc)" --target evrouted >/dev/null
  evrouted=$PWD/$build/daemon/evrouted
fi
[ -x "$evrouted" ] || die "no evrouted at $evrouted"
nats_server=$(command -v nats-server || echo /usr/sbin/nats-server)
if [ ! -x "$nats_server" ]; then
  log "installing nats-server (Debian package)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y nats-server >/dev/null
  nats_server=$(command -v nats-server || echo /usr/sbin/nats-server)
fi
command -v python3 >/dev/null || die "python3 is needed (the webhook receiver)"
command -v curl >/dev/null || die "curl is needed"

# Listening TCP ports (state 0A) of /proc/net/tcp*, in decimal.
listening() {
  awk 'NR > 1 && $4 == "0A" { split($2, a, ":"); print a[2] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null |
    while read -r hex; do echo $((16#$hex)); done
}
taken=$(listening)
for p in "${nats_client[@]}" "${nats_route[@]}" "${nats_monitor[@]}" "${replica_ports[@]}" "$receiver_port"; do
  ! grep -qx "$p" <<<"$taken" || die "port $p is in use (another run.sh?); stop what uses it first"
done

# --- processes: started here, stopped here by PID ---------------------------------------------
work=$(mktemp -d /tmp/evroute-cluster.XXXXXX)
nats_pids=() replica_pids=() receiver_pid=""
cleanup() {
  trap - EXIT INT TERM
  local p
  # evrouted first (it gives back to JetStream what it holds), then the receiver, then NATS.
  for p in "${replica_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${replica_pids[@]}"; do  # draining takes up to shutdown_timeout (10 s); then -9
    for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  [ -n "$receiver_pid" ] && { kill -TERM "$receiver_pid" 2>/dev/null || true; wait "$receiver_pid" 2>/dev/null || true; }
  for p in "${nats_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${nats_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; log "stopping"; exit 130' INT TERM

# Polls (up to $2 tenths of a second) until command $1 succeeds.
wait_for() {
  local i
  for i in $(seq "$2"); do eval "$1" && return 0; sleep 0.1; done
  return 1
}

log "starting 3 nats-server nodes (data in $work)"
routes=""
for i in 0 1 2; do routes+="${routes:+, }nats-route://127.0.0.1:${nats_route[$i]}"; done
for i in 0 1 2; do
  n=n$((i + 1))
  mkdir -p "$work/$n"
  cat >"$work/$n/nats.conf" <<CONF
server_name: $n
listen: 127.0.0.1:${nats_client[$i]}
http: 127.0.0.1:${nats_monitor[$i]}
jetstream { store_dir: "$work/$n/jetstream", max_file_store: 4GB, max_memory_store: 256MB }
cluster { name: evroute, listen: 127.0.0.1:${nats_route[$i]}, routes: [$routes] }
CONF
  "$nats_server" -c "$work/$n/nats.conf" >"$work/$n/log" 2>&1 &
  nats_pids+=($!)
done

# The meta leader each node names in /jsz ("" when none, or the node does not answer).
meta_leader() {
  curl -s --max-time 1 "http://127.0.0.1:$1/jsz" |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("meta_cluster", {}).get("leader", ""))' 2>/dev/null || true
}
cluster_ready() {
  local leaders="" i l
  for i in 0 1 2; do
    kill -0 "${nats_pids[$i]}" 2>/dev/null || die "nats-server n$((i + 1)) exited: $(tail -5 "$work/n$((i + 1))/log")"
    curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:${nats_monitor[$i]}/healthz" || return 1
    l=$(meta_leader "${nats_monitor[$i]}")
    [ -n "$l" ] || return 1
    leaders+="$l"$'\n'
  done
  [ "$(sort -u <<<"$leaders" | grep -c .)" = 1 ]
}
wait_for cluster_ready 300 || die "the NATS nodes did not agree on a meta leader within 30 s: $(tail -3 "$work"/n*/log)"
log "NATS cluster up; JetStream meta leader: $(meta_leader "${nats_monitor[0]}")"

# The webhook receiver: logs "<event id> <replica that delivered it>" per POST, answers 204 after
# $receiver_delay seconds (so that, in the demo, replicas hold events they have not delivered).
receiver_delay=0
$demo && receiver_delay=0.02
python3 -u - "$receiver_port" "$work/received.log" "$receiver_delay" >"$work/receiver.out" 2>&1 <<'PY' &
import http.server, json, sys, threading, time
port, path, delay = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
out, lock = open(path, "a", buffering=1), threading.Lock()
class Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            event_id = json.loads(body).get("id", "?")
        except ValueError:
            event_id = "?"
        if delay:
            time.sleep(delay)
        with lock:
            out.write("%s %s\n" % (event_id, self.headers.get("X-Evroute-Replica", "-")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Hook).serve_forever()
PY
receiver_pid=$!
touch "$work/received.log"
wait_for "curl -sf -o /dev/null http://127.0.0.1:$receiver_port/" 100 || die "the receiver did not start: $(cat "$work/receiver.out")"

export EVROUTE_NATS_PORT_1=${nats_client[0]} EVROUTE_NATS_PORT_2=${nats_client[1]}
export EVROUTE_NATS_PORT_3=${nats_client[2]} EVROUTE_RECEIVER_PORT=$receiver_port
config=examples/cluster/evroute.yaml
replica_ready() {  # replica_ready INDEX: /readyz is 200 (dies if the process exited)
  kill -0 "${replica_pids[$1]}" 2>/dev/null ||
    die "evrouted ${replica_names[$1]} exited: $(tail -5 "$work/evrouted-${replica_names[$1]}.log")"
  curl -sf -o /dev/null "http://127.0.0.1:${replica_ports[$1]}/readyz"
}
for i in 0 1; do
  r=${replica_names[$i]}
  mkdir -p "$work/$r"
  EVROUTE_LISTEN=127.0.0.1:${replica_ports[$i]} EVROUTE_REPLICA=$r EVROUTE_DATA_DIR=$work/$r \
    "$evrouted" --config "$config" >/dev/null 2>"$work/evrouted-$r.log" &
  replica_pids+=($!)
  # One after the other, each waited for: A creates the streams, B finds them.
  wait_for "replica_ready $i" 300 ||
    die "evrouted $r is not ready within 30 s: $(tail -5 "$work/evrouted-$r.log")"
done
log "evrouted A on http://127.0.0.1:${replica_ports[0]} (pid ${replica_pids[0]}), B on http://127.0.0.1:${replica_ports[1]} (pid ${replica_pids[1]}): ready"

if ! $demo; then
  cat <<TXT

Everything runs (data and logs in $work). Try, in another terminal:

  # an event through A, one through B: either replica takes them, either may deliver them
  curl -i -X POST http://127.0.0.1:${replica_ports[0]}/v1/events -H 'Content-Type: application/json' -d '{"type":"order.created","order":1}'
  curl -i -X POST http://127.0.0.1:${replica_ports[1]}/v1/events -H 'Content-Type: application/json' -d '{"type":"order.created","order":2}'

  # what the receiver got ("<event id> <replica that delivered it>")
  tail -f $work/received.log

  # the sink, its JetStream consumer's counts (pending, ack_pending, redelivered, naks)
  curl -s http://127.0.0.1:${replica_ports[0]}/v1/sinks
  curl -s http://127.0.0.1:${replica_ports[0]}/metrics | grep jetstream

  # kill -9 replica B: A goes on alone; what B held is redelivered after ack_wait (5 s)
  kill -9 ${replica_pids[1]}

  # dead letters (from any replica; none unless the receiver refuses events)
  curl -s http://127.0.0.1:${replica_ports[0]}/v1/sinks/receiver/dead-letters

  # a NATS node down: the cluster (replicas: 3) goes on with two
  kill -9 ${nats_pids[2]}

Logs: $work/evrouted-A.log, $work/evrouted-B.log, $work/n1/log ... Ctrl-C stops everything.
TXT
  # Until Ctrl-C; also when a process is killed by hand (wait then returns for the next one).
  while :; do wait || true; sleep 1; done
fi

# --- --demo --------------------------------------------------------------------------------------
half=$((events / 2)) batch=10
acked="$work/acked.ids"
: >"$acked"
declare -A acked_by=([A]=0 [B]=0)
post() {  # post REPLICA_INDEX FIRST LAST: one array of events demo-FIRST..demo-LAST; 202 -> acked
  local port=${replica_ports[$1]} body="[" i code attempt
  for i in $(seq "$2" "$3"); do body+="{\"id\":\"demo-$i\",\"type\":\"demo.event\",\"n\":$i},"; done
  body="${body%,}]"
  for attempt in 1 2 3 4 5; do  # a 503 (NATS busy) is retried: the ids make a resend safe
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST "http://127.0.0.1:$port/v1/events" \
      -H 'Content-Type: application/json' --data-binary "$body" || true)
    [ "$code" = 202 ] && break
    sleep 0.5
  done
  if [ "$code" = 202 ]; then
    seq -f 'demo-%.0f' "$2" "$3" >>"$acked"
    acked_by[${replica_names[$1]}]=$((acked_by[${replica_names[$1]}] + $3 - $2 + 1))
  else
    log "POST of demo-$2..demo-$3 to ${replica_names[$1]}: $code (not acknowledged)"
  fi
}
log "demo: posting $half events over A and B (arrays of $batch)"
i=1 k=0
while [ "$i" -le "$half" ]; do
  last=$((i + batch - 1)); [ "$last" -le "$half" ] || last=$half
  post $((k % 2)) "$i" "$last"
  i=$((last + 1)) k=$((k + 1))
done
# Kill B while it delivers: once the receiver has seen it deliver (at most 5 s).
wait_for "grep -q ' B\$' '$work/received.log'" 50 || log "demo: B delivered nothing yet (A pulled it all); killing it anyway"
held=$(curl -s "http://127.0.0.1:${replica_ports[1]}/metrics" | awk '$1 ~ /^evroute_sink_jetstream_ack_pending/ { print $2 }')
log "demo: kill -9 replica B (pid ${replica_pids[1]}); the sink's consumer has ${held:-?} event(s) handed out and not acknowledged (both replicas)"
kill -9 "${replica_pids[1]}"
exec 3>&2 2>/dev/null  # without bash's "Killed" notice
wait "${replica_pids[1]}" || true
exec 2>&3 3>&-
replica_pids=("${replica_pids[0]}")
log "demo: posting $((events - half)) more events to A"
i=$((half + 1))
while [ "$i" -le "$events" ]; do
  last=$((i + batch - 1)); [ "$last" -le "$events" ] || last=$events
  post 0 "$i" "$last"
  i=$((last + 1))
done

# Delivered: acknowledged ids the receiver logged (once or more).
delivered_count() { awk 'NR == FNR { want[$1] = 1; next } ($1 in want) && !($1 in seen) { seen[$1] = 1; n++ } END { print n + 0 }' "$acked" "$work/received.log"; }
n_acked=$(wc -l <"$acked")
log "demo: waiting (up to 60 s) until the receiver has all $n_acked acknowledged events (B's are redelivered after ack_wait: 5 s)"
wait_for '[ "$(delivered_count)" -ge "$n_acked" ]' 600 || true
n_delivered=$(delivered_count)
n_lines=$(wc -l <"$work/received.log")
by_replica=$(awk '{ n[$2]++ } END { for (r in n) printf "%s%s=%d", (s++ ? ", " : ""), r, n[r] }' "$work/received.log")

echo
echo "acknowledged (202): $n_acked events (through A: ${acked_by[A]}, through B: ${acked_by[B]}; B was killed -9 after $half)"
echo "delivered:          $n_delivered of them (receiver POSTs: $n_lines; by replica: $by_replica)"
echo "duplicates:         $((n_lines - n_delivered)) (deliveries B made but had not acknowledged to JetStream when it died, made again by A)"
if [ "$n_delivered" -lt "$n_acked" ]; then
  echo "LOST: $((n_acked - n_delivered)) acknowledged event(s) never reached the receiver:"
  awk 'NR == FNR { got[$1] = 1; next } !($1 in got)' "$work/received.log" "$acked" | head -20
  for r in A B; do echo "--- evrouted $r (last lines)"; tail -15 "$work/evrouted-$r.log"; done
  exit 1
fi
echo "OK: every acknowledged event was delivered."
exit 0
