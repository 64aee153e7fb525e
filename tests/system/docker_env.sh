# Sourced by the system tests: makes a Docker engine and the debian:bookworm-slim base image
# available on this offline machine (recipe: shared/platform.md), or fails saying why.
#   ensure_docker   sets DOCKER_HOST; starts a private dockerd if none answers (stopped on exit)
# Needs root (it installs docker.io and debootstrap when missing).

die() { echo "FAIL: $*" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ensure_docker() {
  [ "$(id -u)" -eq 0 ] || die "the Docker tests need root (to run dockerd)"
  if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    echo "installing docker.io and debootstrap" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap \
      >/dev/null || die "cannot install docker.io/debootstrap"
  fi
  if [ -z "${DOCKER_HOST:-}" ] && docker info >/dev/null 2>&1; then
    return 0  # a Docker engine already answers
  fi
  # A private engine, its state kept under /var/tmp so images survive between runs on one machine.
  local d=/var/tmp/evroute-docker
  mkdir -p "$d"
  export DOCKER_HOST="unix://$d/docker.sock"
  if ! docker info >/dev/null 2>&1; then
    rm -f "$d/docker.sock" "$d/dockerd.pid"
    dockerd --iptables=false --bridge=none --data-root "$d/data" --exec-root "$d/exec" \
      -H "$DOCKER_HOST" --pidfile "$d/dockerd.pid" >"$d/dockerd.log" 2>&1 &
    EVROUTE_DOCKERD_PID=$!
    trap 'kill "$EVROUTE_DOCKERD_PID" 2>/dev/null; wait "$EVROUTE_DOCKERD_PID" 2>/dev/null' EXIT
    for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { tail -20 "$d/dockerd.log" >&2; die "dockerd did not start"; }
  fi
  if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    echo "making the debian:bookworm-slim base image with debootstrap (~2 min)" >&2
    local rootfs="$d/rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$d/debootstrap.log" 2>&1 \
      || { tail -20 "$d/debootstrap.log" >&2; die "debootstrap failed"; }
    # Slim it as Debian's official image is: no package cache, docs, man pages or locales, and
    # apt set to clean up after itself.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    echo 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
      >"$rootfs/etc/apt/apt.conf.d/docker-clean"
    tar -C "$rootfs" -c . | docker import - debian:bookworm-slim >/dev/null || die "docker import failed"
    rm -rf "$rootfs"
  fi
}
