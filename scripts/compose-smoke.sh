#!/usr/bin/env bash
# Smoke test of docker-compose.yml: build and start the whole stack under a
# throwaway project name and a free host port, wait for the api's /ready to
# answer 200, check the worker is still running, check that `up --build` built
# every sandbox image of sandbox-images/languages.json (tagged as the manifest
# says) and that each build-only sandbox-<id> service exited 0, check that the
# one-shot secrets-init gave this deployment its own random JWT secrets (read
# by the api from files; nothing published in the repository), and always tear
# everything down (containers, networks, volumes; the images stay, for the
# layer cache).
#
# Usage: scripts/compose-smoke.sh
# Environment:
#   API_PORT        host port for the api (default: a free one)
#   READY_TIMEOUT   seconds to wait for /ready after `up` (default 300)
#   DOCKER_GID      group of /var/run/docker.sock (default: detected)
#   SMOKE_NO_BOOTSTRAP=1  never run scripts/offline-images.sh
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

PROJECT=codecall-smoke-$$
export ADMIN_EMAILS="smoke-admin-$$@codecall.dev"
READY_TIMEOUT=${READY_TIMEOUT:-300}
BASE_IMAGES=(debian:bookworm-slim rust:1.95-slim-bookworm postgres:15-bookworm redis:7-bookworm)
SERVICES=(secrets-init postgres redis api worker)
# Sandbox languages: "<id> <image>" per line, from the manifest the worker embeds.
mapfile -t SANDBOXES < <(python3 -c '
import json
for l in json.load(open("sandbox-images/languages.json"))["languages"]:
    print(l["id"], l["image"])') && [ ${#SANDBOXES[@]} -gt 0 ] \
    || { echo "FAIL compose smoke: cannot read sandbox-images/languages.json (python3 needed)"; exit 1; }

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
FAIL_MSG="aborted (see the messages above)"
fail() { FAIL_MSG=$*; printf 'error: %s\n' "$*" >&2; RESULT=1; exit 1; }

if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
else
    echo "FAIL compose smoke: neither 'docker compose' nor 'docker-compose' is available"; exit 1
fi
dc() { "${COMPOSE[@]}" -p "$PROJECT" -f "$ROOT/docker-compose.yml" "$@"; }

# The docker CLI falls back to the legacy builder without buildx, but refuses
# DOCKER_BUILDKIT=1; compose 1.29 builds through the CLI.
if [ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version >/dev/null 2>&1; then
    export DOCKER_BUILDKIT=0
fi

if [ -z "${DOCKER_GID:-}" ]; then
    DOCKER_GID=$(stat -c %g /var/run/docker.sock 2>/dev/null) \
        || { echo "FAIL compose smoke: /var/run/docker.sock not found (set DOCKER_GID)"; exit 1; }
fi
export DOCKER_GID

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
        || for p in $(shuf -i 20000-40000 -n 50); do
               (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; break; }
           done
}
API_PORT=${API_PORT:-$(free_port)}
export API_PORT

RESULT=1
VOLUMES_BEFORE=$(docker volume ls -q | sort)
cleanup() {
    trap - EXIT INT TERM
    if [ "$RESULT" != 0 ] && [ -n "${STARTED:-}" ]; then
        for s in "${SERVICES[@]}"; do
            echo "----- last logs: $s -----"
            dc logs --no-color --tail=40 "$s" 2>&1 | tail -n 40
        done
        echo "----- containers -----"
        dc ps 2>&1
    fi
    log "tearing down $PROJECT"
    dc down -v --remove-orphans -t 15 >/dev/null 2>&1 || dc down -v --remove-orphans -t 15
    local left
    left=$( { docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"
              docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"
              docker volume ls -q | sort | comm -13 <(printf '%s\n' "$VOLUMES_BEFORE") -; } 2>/dev/null)
    if [ -n "$left" ]; then
        echo "error: left behind after 'down -v':" $left >&2
        [ "$RESULT" != 0 ] || { RESULT=1; FAIL_MSG="teardown left containers/networks/volumes behind"; }
    fi
    if [ "$RESULT" = 0 ]; then
        printf '\033[1;32mPASS\033[0m compose smoke: /ready 200 on port %s, own random secrets, worker running, %s sandbox images built (services exited 0), a run accepted end to end, queue and metrics read, clean teardown (%s)\n' \
            "$API_PORT" "${#SANDBOXES[@]}" "$PROJECT"
    else
        printf '\033[1;31mFAIL\033[0m compose smoke: %s\n' "$FAIL_MSG"
    fi
    exit "$RESULT"
}
trap cleanup EXIT
trap 'FAIL_MSG="interrupted"; exit 1' INT TERM

# Base images: build the offline stand-ins when one is missing (no registry),
# and refresh them / the vendored crates when the stand-ins are in use.
need_bootstrap=0
for img in "${BASE_IMAGES[@]}"; do
    if ! docker image inspect "$img" >/dev/null 2>&1; then
        log "base image $img missing"; need_bootstrap=1
    elif [ "$(docker image inspect -f '{{index .Config.Labels "org.codecall.offline-image"}}' "$img")" = 1 ]; then
        need_bootstrap=1
    fi
done
if [ "$need_bootstrap" = 1 ] && [ "${SMOKE_NO_BOOTSTRAP:-0}" != 1 ]; then
    log "scripts/offline-images.sh (skips images that exist, refreshes vendor/)"
    "$ROOT/scripts/offline-images.sh" || fail "offline image bootstrap failed"
fi

# Image ids before the build, to report which sandbox images changed.
declare -A SANDBOX_ID_BEFORE
for entry in "${SANDBOXES[@]}"; do
    read -r id image <<<"$entry"
    SANDBOX_ID_BEFORE[$id]=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null)
done

log "${COMPOSE[*]} -p $PROJECT up -d --build (API_PORT=$API_PORT DOCKER_GID=$DOCKER_GID)"
STARTED=1
t0=$(date +%s)
dc up -d --build || fail "'up --build' failed"
log "built and started after $(( $(date +%s) - t0 ))s; waiting up to ${READY_TIMEOUT}s for /ready"
t0=$(date +%s)

deadline=$(( $(date +%s) + READY_TIMEOUT ))
code=000
while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "http://127.0.0.1:$API_PORT/ready" 2>/dev/null) || true
    [ "$code" = 200 ] && break
    api_id=$(dc ps -q api 2>/dev/null)
    if [ -n "$api_id" ] && [ "$(docker inspect -f '{{.State.Running}}' "$api_id" 2>/dev/null)" = false ]; then
        fail "api container exited (status $(docker inspect -f '{{.State.ExitCode}}' "$api_id"))"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || fail "/ready did not answer 200 within ${READY_TIMEOUT}s (last: $code)"
    sleep 2
done
log "/ready -> 200 after $(( $(date +%s) - t0 ))s"

# Secrets: generated once by secrets-init for this deployment; the api reads
# them from files. Their values are never printed.
init_id=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
                        --filter "label=com.docker.compose.service=secrets-init")
[ -n "$init_id" ] || fail "no secrets-init container"
[ "$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$init_id")" = "exited 0" ] \
    || fail "secrets-init did not exit 0"
secrets=$(dc exec -T api sh -c 'cat /run/secrets/codecall/jwt-access-secret; echo; cat /run/secrets/codecall/jwt-refresh-secret' 2>/dev/null) \
    || fail "the api cannot read its secret files"
access=$(sed -n 1p <<<"$secrets"); refresh=$(sed -n 2p <<<"$secrets")
[[ "$access" =~ ^[0-9a-f]{64}$ && "$refresh" =~ ^[0-9a-f]{64}$ && "$access" != "$refresh" ]] \
    || fail "the JWT secrets are not two distinct random 32-byte values"
if grep -rqsF -e "$access" -e "$refresh" --exclude-dir=.git --exclude-dir=target --exclude-dir=vendor "$ROOT"; then
    fail "a JWT secret of this deployment appears in the repository"
fi
unset secrets access refresh
log "secrets-init exited 0; the api reads this deployment's own JWT secrets"

worker_id=$(dc ps -q worker)
[ -n "$worker_id" ] || fail "no worker container"
sleep 3   # the worker connects to Redis and Docker at start and exits on failure
state=$(docker inspect -f '{{.State.Status}} exit={{.State.ExitCode}} restarts={{.RestartCount}}' "$worker_id")
case "$state" in
    "running exit=0 restarts=0") ;;
    *) fail "worker is not running ($state)" ;;
esac

# Every manifest language: its image exists under the manifest's tag, and the
# build-only service sandbox-<id> ran that very image and exited 0.
for entry in "${SANDBOXES[@]}"; do
    read -r id image <<<"$entry"
    image_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null) \
        || fail "sandbox image $image ($id) does not exist after 'up --build'"
    cid=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
                        --filter "label=com.docker.compose.service=sandbox-$id")
    [ -n "$cid" ] || fail "no container for build-only service sandbox-$id (missing from docker-compose.yml?)"
    [ "$(wc -w <<<"$cid")" = 1 ] || fail "several containers for sandbox-$id: $cid"
    timeout 60 docker wait "$cid" >/dev/null || fail "sandbox-$id did not exit within 60s"
    read -r status code restarts cimage cimage_id < <(docker inspect \
        -f '{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}} {{.Config.Image}} {{.Image}}' "$cid")
    [ "$status $code $restarts" = "exited 0 0" ] \
        || fail "sandbox-$id: status=$status exit=$code restarts=$restarts (want exited 0, no restarts)"
    [ "$cimage" = "$image" ] || fail "sandbox-$id runs image $cimage, the manifest says $image"
    [ "$cimage_id" = "$image_id" ] || fail "sandbox-$id ran $cimage_id, but $image is now $image_id"
    if [ "${SANDBOX_ID_BEFORE[$id]}" = "$image_id" ]; then change="unchanged"; else change="rebuilt"; fi
    log "sandbox image $image: ${image_id:7:12} ($change), sandbox-$id exited 0"
done

# End to end through the containers: register (the admin of ADMIN_EMAILS),
# log in, wait for the worker to announce python, run a program with stdin and
# check the verdict and output, then read the queue report and the metrics.
base="http://127.0.0.1:$API_PORT"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
curl -fsS -m 10 -X POST "$base/auth/register" -H 'content-type: application/json' \
    -d "{\"name\": \"Smoke\", \"email\": \"$ADMIN_EMAILS\", \"password\": \"StrongPass123\"}" >/dev/null \
    || fail "registering through the api container failed"
token=$(curl -fsS -m 10 -X POST "$base/auth/login" -H 'content-type: application/json' \
    -d "{\"email\": \"$ADMIN_EMAILS\", \"password\": \"StrongPass123\"}" | json 'd["accessToken"]') \
    || fail "logging in through the api container failed"
for _ in $(seq 60); do
    curl -fsS -m 5 "$base/api/languages" 2>/dev/null | grep '"python"' >/dev/null && break
    sleep 2
done
curl -fsS -m 5 "$base/api/languages" | grep '"python"' >/dev/null || fail "the worker never announced python"
run=$(curl -fsS -m 60 -X POST "$base/api/runs?wait=true" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' \
    -d '{"language": "python", "source": "print(input()[::-1])", "stdin": "olleh\n"}') \
    || fail "posting a run failed"
verdict=$(json 'd.get("verdict")' <<<"$run")
stdout=$(json 'repr(d.get("stdout"))' <<<"$run")
[ "$verdict" = accepted ] && [ "$stdout" = "'hello\\n'" ] \
    || fail "the run through the worker container: verdict=$verdict stdout=$stdout ($run)"
log "run through the worker container: $verdict, stdout $stdout"
queue=$(curl -fsS -m 10 "$base/api/admin/queue" -H "authorization: Bearer $token") \
    || fail "GET /api/admin/queue failed"
[ "$(json 'd["finished"] >= 1 and len(d["workers"]) >= 1' <<<"$queue")" = True ] \
    || fail "queue report without the finished run or the worker: $queue"
curl -fsS -m 10 "$base/metrics" | grep '^http_requests_total{' >/dev/null \
    || fail "/metrics has no http_requests_total"
log "queue report and /metrics read"
RESULT=0
