#!/usr/bin/env bash
# The .deb under a real systemd: build the package with cpack, install it into a container that
# boots systemd as PID 1 (shared/platform.md), and check that the unit is enabled and started the
# Debian way, that READY=1 is what makes `systemctl start` return, that a curl POST is delivered
# (journal and state directory), that reload and stop work (stop drains), and that
# `systemd-analyze verify` is clean.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/system/docker_env.sh
ensure_docker

name=evroute-systemd-test-$$
image=evroute-systemd:test
work=$(mktemp -d)
trap 'docker rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$work"; kill "${EVROUTE_DOCKERD_PID:-}" 2>/dev/null || true' EXIT
box() { docker exec "$name" "$@"; }
# Whether evrouted's journal holds the pattern. (Not `journalctl | grep -q`: grep -q exits at the
# first match, journalctl then dies of SIGPIPE, and pipefail fails the pipeline.)
journal_has() { box journalctl -u evrouted --no-pager | grep -c -- "$1" >/dev/null; }

echo "== cpack -G DEB"
command -v dpkg-shlibdeps >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev >/dev/null
cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DEVROUTE_BUILD_TESTS=OFF -DEVROUTE_BUILD_BENCH=OFF >/dev/null
cmake --build build-deb -j"$(nproc)" --target evrouted >/dev/null
(cd build-deb && cpack -G DEB >/dev/null)
deb=$(ls build-deb/evroute_*_amd64.deb)
echo "$deb"
dpkg-deb -f "$deb" Depends
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -cx /etc/evroute/evroute.yaml >/dev/null \
  || die "/etc/evroute/evroute.yaml is not a conffile"

echo "== image with systemd and the package"
port=$(free_port)
cp "$deb" "$work/evroute.deb"
cat >"$work/Dockerfile" <<DOCKERFILE
FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      systemd systemd-sysv curl ca-certificates && rm -rf /var/lib/apt/lists/*
COPY evroute.deb /tmp/evroute.deb
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y /tmp/evroute.deb \
 && rm -rf /var/lib/apt/lists/*
# The host's network is shared (no bridge here): listen on a free loopback port.
RUN sed -i 's/127.0.0.1:8080/127.0.0.1:$port/' /etc/evroute/evroute.yaml
CMD ["/sbin/init"]
DOCKERFILE
docker build --network host -q -t "$image" "$work" >/dev/null 2>&1 || die "image build failed"
# The unit's sandboxing (DynamicUser=, ProtectSystem=, PrivateTmp=...) needs mount namespaces,
# which systemd as PID 1 of a plain container cannot create ("226/NAMESPACE"). Giving the
# container's systemd CAP_SYS_ADMIN (as PID 1 has on a real host; --privileged is refused here)
# lets the unit run exactly as shipped, hardening included.
docker run -d --name "$name" --network host --tmpfs /run --tmpfs /run/lock \
  -v /sys/fs/cgroup:/sys/fs/cgroup:ro --cap-add SYS_ADMIN \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined "$image" >/dev/null
# `docker run -d` returns before systemd inside has even opened its bus: wait until it answers
# (is-system-running --wait alone fails at once with "Failed to connect to bus" that early).
state=
for _ in $(seq 600); do
  [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ] \
    || { docker logs "$name" >&2 || true; die "the systemd container exited during boot"; }
  state=$(box systemctl is-system-running --wait 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 0.1
done
echo "system: $state"
case "$state" in
  running) ;;
  degraded) box systemctl --failed --no-pager >&2 || true ;;
  *) docker logs "$name" >&2 || true; die "systemd in the container did not finish booting (state '$state')" ;;
esac

echo "== installed and enabled the Debian way"
[ "$(box systemctl is-enabled evrouted)" = enabled ] || die "evrouted.service is not enabled"
for _ in $(seq 50); do [ "$(box systemctl is-active evrouted)" = active ] && break; sleep 0.2; done
[ "$(box systemctl is-active evrouted)" = active ] || { box journalctl -u evrouted --no-pager >&2; die "not active after boot"; }
box systemd-analyze verify /lib/systemd/system/evrouted.service || die "systemd-analyze verify failed"

echo "== READY=1 makes systemctl start return"
box systemctl stop evrouted
box systemctl start evrouted
# No waiting: when start returns, evrouted must already answer.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")
[ "$code" = 200 ] || die "readyz answered $code right after systemctl start"
box systemctl show -p Type -p StatusText evrouted
box systemctl show -p StatusText evrouted | grep -q "listening on" || die "no STATUS= from sd_notify"

echo "== POST with curl"
reply=$(curl -s -X POST "http://127.0.0.1:$port/v1/events" -H 'Content-Type: application/json' \
  -d '{"type":"systemd.test"}')
echo "$reply"
id=$(echo "$reply" | sed -n 's/.*"ids":\["\([^"]*\)".*/\1/p')
[ -n "$id" ] || die "no 202 with an id"
for _ in $(seq 50); do journal_has "$id" && break; sleep 0.1; done
journal_has "\"id\":\"$id\"" || die "event not in the journal (stdout sink)"
box grep -q "$id" /var/lib/evroute/data/events.ndjson || die "event not in the state directory"

echo "== systemctl reload"
box systemctl reload evrouted
for _ in $(seq 50); do journal_has "SIGHUP: re-reading .*, reopening file sinks" && break; sleep 0.1; done
journal_has "SIGHUP: re-reading .*, reopening file sinks" || die "reload did not reach evrouted"
for _ in $(seq 50); do journal_has "is valid and unchanged" && break; sleep 0.1; done
journal_has "SIGHUP: /etc/evroute/evroute.yaml is valid and unchanged" \
  || die "reload did not re-read and check the configuration"
[ "$(box systemctl is-active evrouted)" = active ] || die "not active after reload"

echo "== systemctl reload applies an added sink"
box sh -c 'printf "  audit:\n    type: file\n    path: ./data/audit.ndjson\n" >> /etc/evroute/evroute.yaml'
box systemctl reload evrouted
for _ in $(seq 50); do journal_has "sinks added: audit" && break; sleep 0.1; done
journal_has "SIGHUP: reloaded /etc/evroute/evroute.yaml: sinks added: audit; removed: none; changed: none; unchanged: console, archive" \
  || { box journalctl -u evrouted --no-pager | tail -20 >&2; die "reload did not add the sink"; }
reply=$(curl -s -X POST "http://127.0.0.1:$port/v1/events" -H 'Content-Type: application/json' \
  -d '{"type":"after.reload"}')
id=$(echo "$reply" | sed -n 's/.*"ids":\["\([^"]*\)".*/\1/p')
[ -n "$id" ] || die "no 202 after the reload: $reply"
for _ in $(seq 50); do box grep -q "$id" /var/lib/evroute/data/audit.ndjson 2>/dev/null && break; sleep 0.1; done
box grep -q "$id" /var/lib/evroute/data/audit.ndjson || die "the added sink did not get the event"
box grep -q "$id" /var/lib/evroute/data/events.ndjson || die "the unchanged sink did not get the event"
[ "$(box systemctl is-active evrouted)" = active ] || die "not active after reload"

echo "== systemctl stop drains"
for i in $(seq 20); do
  curl -sf -X POST "http://127.0.0.1:$port/v1/events" -H 'Content-Type: application/json' \
    -d "{\"id\":\"drain-$i\"}" >/dev/null || die "POST $i failed"
done
box systemctl stop evrouted
[ "$(box systemctl show -p ExecMainStatus --value evrouted)" = 0 ] || die "unclean exit"
for _ in $(seq 50); do journal_has "every accepted event was delivered" && break; sleep 0.1; done
journal_has "every accepted event was delivered" \
  || { box journalctl -u evrouted --no-pager | tail -20 >&2; die "no clean drain"; }
[ "$(box grep -c '"id":"drain-' /var/lib/evroute/data/events.ndjson)" = 20 ] || die "events lost at stop"
box systemctl status evrouted --no-pager | head -5 || true  # inactive: exits 3
box journalctl -u evrouted --no-pager | tail -5
echo "systemd test passed"
