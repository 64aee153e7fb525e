#!/usr/bin/env bash
# The Docker image, tested for real: build it, run it with a mounted config and a data volume, POST
# an event with curl, find it in `docker logs` and in the volume, check the health check and the
# non-root user, then `docker stop` and check the drain and a clean exit. Prints the image size.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/system/docker_env.sh
ensure_docker

image=evroute:test
name=evroute-test-$$
volume=evroute-test-data-$$
work=$(mktemp -d)
cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker volume rm "$volume" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap 'cleanup; kill "${EVROUTE_DOCKERD_PID:-}" 2>/dev/null || true' EXIT

echo "== docker build"
docker build --network host -q -t "$image" . >/dev/null || die "docker build failed"
size=$(docker image inspect --format '{{.Size}}' "$image")
echo "image size: $((size / 1000000)) MB"

# No bridge network here: the container shares the host's, so it listens on a free loopback port
# given by a mounted config (which also tests that the baked-in one can be overridden).
port=$(free_port)
cat >"$work/evroute.yaml" <<YAML
server: { listen: "127.0.0.1:$port", auth: { tokens: "\${EVROUTE_TOKEN:-}" } }
shutdown_timeout: 10s
sinks:
  console: { type: stdout }
  archive: { type: file, path: /var/lib/evroute/events.ndjson }
YAML
chmod 644 "$work/evroute.yaml"
docker volume create "$volume" >/dev/null
echo "== the baked-in config: open (with a warning) without EVROUTE_TOKEN, authenticated with it"
docker run --rm "$image" --check --config /etc/evroute/evroute.yaml 2>&1 \
  | grep -c "without server.auth.tokens" >/dev/null || die "no warning about an open listener"
if docker run --rm -e EVROUTE_TOKEN=t0k "$image" --check --config /etc/evroute/evroute.yaml 2>&1 \
  | grep -c "without server.auth.tokens" >/dev/null; then
  die "a warning about an open listener although EVROUTE_TOKEN is set"
fi
docker run -d --name "$name" --network host -v "$volume:/var/lib/evroute" -e EVROUTE_TOKEN=s3cret \
  -v "$work/evroute.yaml:/etc/evroute/evroute.yaml:ro" "$image" >/dev/null

echo "== ready"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { docker logs "$name" >&2; die "not ready"; }
[ "$(docker exec "$name" id -u)" = 10001 ] || die "the container does not run as the evroute user"

echo "== POST an event (EVROUTE_TOKEN from the environment is required)"
denied=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/events" \
  -H 'Content-Type: application/json' -d '{"type":"docker.test","n":0}')
[ "$denied" = 401 ] || die "expected 401 without the token, got $denied"
reply=$(curl -s -w ' %{http_code}' -X POST "http://127.0.0.1:$port/v1/events" \
  -H 'Authorization: Bearer s3cret' -H 'Content-Type: application/json' -d '{"type":"docker.test","n":1}')
echo "$reply"
[ "${reply##* }" = 202 ] || die "expected 202"
id=$(echo "$reply" | sed -n 's/.*"ids":\["\([^"]*\)".*/\1/p')
[ -n "$id" ] || die "no id in the reply"
for _ in $(seq 50); do docker logs "$name" 2>/dev/null | grep -c -- "$id" >/dev/null && break; sleep 0.1; done
docker logs "$name" 2>/dev/null | grep -c -- "\"id\":\"$id\"" >/dev/null || die "event not on the container's stdout"
docker exec "$name" grep -q "\"id\":\"$id\"" /var/lib/evroute/events.ndjson \
  || die "event not in the data volume"

echo "== health check"
for _ in $(seq 60); do
  [ "$(docker inspect --format '{{.State.Health.Status}}' "$name")" = healthy ] && break
  sleep 0.5
done
[ "$(docker inspect --format '{{.State.Health.Status}}' "$name")" = healthy ] || die "not healthy"

echo "== docker stop"
start=$(date +%s)
docker stop -t 30 "$name" >/dev/null
elapsed=$(( $(date +%s) - start ))
code=$(docker inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || { docker logs "$name" >&2; die "exit code $code"; }
[ "$elapsed" -lt 15 ] || die "docker stop took ${elapsed}s (drain timeout is 10s)"
docker logs "$name" 2>&1 | grep -c "every accepted event was delivered" >/dev/null || die "no clean drain in the logs"
# The event is still in the volume after the container is gone.
docker rm "$name" >/dev/null
docker run --rm --network host -v "$volume:/data" --entrypoint /bin/cat "$image" /data/events.ndjson \
  | grep -c -- "$id" >/dev/null || die "event lost from the volume"
echo "docker test passed (image $((size / 1000000)) MB, stop ${elapsed}s)"
