#!/usr/bin/env bash
# The Swarm test: deploys deploy/swarm/stack.yml on a single-node swarm (2 api
# replicas, the worker, PostgreSQL, Redis and the HAProxy balancer published
# in host mode) and checks it through the balancer with
# deploy/swarm/swarm_check.py: register; two members' events sockets on
# different replicas; a run streamed to both and accepted; the worker's
# container killed mid-run and the run still accepted; a rolling restart of
# the api under a request loop (only retryable statuses) with sockets that
# reconnect and presence that recovers. Then it tears everything down and
# checks nothing is left: stack, services, containers, networks, volumes,
# secrets, node labels it added, and the swarm itself if it created it.
#
# Usage: scripts/swarm-test.sh
# Environment:
#   API_IMAGE / WORKER_IMAGE   images to deploy (default codecall-api:local,
#                              codecall-worker:local: the compose smoke test's)
#   SWARM_BUILD=1              build API_IMAGE/WORKER_IMAGE from this tree first
#                              (they are built anyway when missing)
#   LB_PORT                    host port of the balancer (default: a free one)
#   DEPLOY_VENV                the tools' venv (scripts/deploy-venv.sh)
#   SWARM_KEEP=1               leave the stack running on failure (debugging;
#                              remove it with `docker stack rm` yourself)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
# shellcheck source=scripts/deploy-venv.sh
. "$ROOT/scripts/deploy-venv.sh"

STACK=codecall-swarm-$$
export CODECALL_SECRETS=$STACK
export API_IMAGE=${API_IMAGE:-codecall-api:local}
export WORKER_IMAGE=${WORKER_IMAGE:-codecall-worker:local}
export LB_IMAGE=${LB_IMAGE:-codecall-lb:local}
export API_REPLICAS=2
WORKER_IDS=$(mktemp /tmp/codecall-swarm-workers.XXXXXX)
LABELS=(codecall.lb codecall.data codecall.sandbox)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
FAIL_MSG="aborted (see the messages above)"
RESULT=1
fail() { FAIL_MSG=$*; printf 'error: %s\n' "$*" >&2; RESULT=1; exit 1; }
T_START=$(date +%s)

command -v docker >/dev/null && docker info >/dev/null 2>&1 \
    || { echo "FAIL swarm test: no reachable Docker engine"; exit 1; }
if [ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version >/dev/null 2>&1; then
    export DOCKER_BUILDKIT=0   # the legacy builder; the CLI refuses BuildKit without buildx
fi
DOCKER_GID=$(stat -c %g /var/run/docker.sock 2>/dev/null) \
    || { echo "FAIL swarm test: /var/run/docker.sock not found"; exit 1; }
export DOCKER_GID

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])'
}
export LB_PORT=${LB_PORT:-$(free_port)}

# ------------------------------------------------------------- teardown ---
CREATED_SWARM=0
GWBRIDGE_BEFORE=1
NODE=""
ADDED_LABELS=()
stack_objects() {
    docker service ls -q --filter "label=com.docker.stack.namespace=$STACK" 2>/dev/null
    docker ps -aq --filter "label=com.docker.stack.namespace=$STACK" 2>/dev/null
    docker network ls -q --filter "label=com.docker.stack.namespace=$STACK" 2>/dev/null
    docker volume ls -q --filter "label=com.docker.stack.namespace=$STACK" 2>/dev/null
    docker secret ls -q --filter "label=org.codecall.secret-prefix=$STACK" 2>/dev/null
}
# Sandbox containers started by this stack's workers (a killed worker leaves
# its warm pool and its run's container behind): their codecall.worker label
# starts with the worker container's host name, its short id.
sandbox_leftovers() {
    [ -s "$WORKER_IDS" ] || return 0
    docker ps -a --filter label=codecall.sandbox --format '{{.ID}} {{.Label "codecall.worker"}}' 2>/dev/null \
        | while read -r id worker; do
              grep -q "^${worker:0:12}" "$WORKER_IDS" && echo "$id"
          done
}
cleanup() {
    trap - EXIT INT TERM
    if [ "$RESULT" != 0 ] && [ -n "$NODE" ]; then
        for s in api worker lb postgres redis; do
            echo "----- ${STACK}_$s -----"
            docker service ps --no-trunc "${STACK}_$s" 2>&1 | head -n 8
            docker service logs --raw --tail 30 "${STACK}_$s" 2>&1 | tail -n 30
        done
        if [ "${SWARM_KEEP:-0}" = 1 ]; then
            echo "SWARM_KEEP=1: stack $STACK left running (LB_PORT=$LB_PORT)"
            printf '\033[1;31mFAIL\033[0m swarm test: %s\n' "$FAIL_MSG"
            exit 1
        fi
    fi
    log "tearing down $STACK"
    # Worker containers still running are recorded for the sandbox sweep.
    docker ps -aq --no-trunc --filter "label=com.docker.swarm.service.name=${STACK}_worker" >>"$WORKER_IDS" 2>/dev/null
    docker stack rm "$STACK" >/dev/null 2>&1
    # Services and containers go first; networks and volumes only after them.
    local deadline=$(( $(date +%s) + 120 )) left
    while :; do
        left=$( { docker service ls -q --filter "label=com.docker.stack.namespace=$STACK"
                  docker ps -aq --filter "label=com.docker.stack.namespace=$STACK"
                  docker network ls -q --filter "label=com.docker.stack.namespace=$STACK"; } 2>/dev/null)
        [ -z "$left" ] && break
        [ "$(date +%s)" -lt "$deadline" ] || break
        sleep 1
    done
    local vols
    vols=$(docker volume ls -q --filter "label=com.docker.stack.namespace=$STACK" 2>/dev/null)
    # shellcheck disable=SC2086
    [ -z "$vols" ] || docker volume rm $vols >/dev/null 2>&1 \
        || { sleep 3; docker volume rm $vols >/dev/null 2>&1; }
    local sandboxes
    sandboxes=$(sandbox_leftovers)
    # shellcheck disable=SC2086
    [ -z "$sandboxes" ] || docker rm -f $sandboxes >/dev/null 2>&1
    bash "$ROOT/deploy/swarm/secrets.sh" rm "$STACK" 2>/dev/null
    if [ "$CREATED_SWARM" = 1 ]; then
        docker swarm leave --force >/dev/null 2>&1
        # `swarm init` creates this bridge and `swarm leave` keeps it.
        [ "$GWBRIDGE_BEFORE" = 1 ] || docker network rm docker_gwbridge >/dev/null 2>&1
    elif [ -n "$NODE" ]; then
        for label in "${ADDED_LABELS[@]}"; do
            docker node update --label-rm "$label" "$NODE" >/dev/null 2>&1
        done
    fi
    left=$(stack_objects; sandbox_leftovers)
    if [ -n "$left" ]; then
        echo "error: left behind after teardown:" $left >&2
        [ "$RESULT" != 0 ] || { RESULT=1; FAIL_MSG="teardown left objects behind"; }
    fi
    if [ "$CREATED_SWARM" = 1 ] && { [ "$(docker info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null)" != inactive ] \
        || { [ "$GWBRIDGE_BEFORE" = 0 ] && docker network inspect docker_gwbridge >/dev/null 2>&1; }; }; then
        echo "error: the swarm this test created is still active, or its docker_gwbridge network is left" >&2
        [ "$RESULT" != 0 ] || { RESULT=1; FAIL_MSG="the swarm was not left"; }
    fi
    rm -f "$WORKER_IDS"
    if [ "$RESULT" = 0 ]; then
        printf '\033[1;32mPASS\033[0m swarm test: 2 api replicas behind HAProxy, sockets on different replicas, runs accepted through a worker kill and a rolling api update, clean teardown (%ss, %s)\n' \
            "$(( $(date +%s) - T_START ))" "$STACK"
    else
        printf '\033[1;31mFAIL\033[0m swarm test: %s\n' "$FAIL_MSG"
    fi
    exit "$RESULT"
}
trap cleanup EXIT
trap 'FAIL_MSG="interrupted"; exit 1' INT TERM

# --------------------------------------------------------------- images ---
deploy_venv || fail "cannot set up the tools' venv"
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
for target in api worker; do
    if [ "$target" = api ]; then image=$API_IMAGE; else image=$WORKER_IMAGE; fi
    if [ "${SWARM_BUILD:-0}" = 1 ] || ! image_exists "$image"; then
        log "building $image (Dockerfile --target $target)"
        docker build -q --target "$target" -t "$image" . >/dev/null || fail "building $image failed"
    fi
done
missing=$(python3 -c '
import json
for l in json.load(open("sandbox-images/languages.json"))["languages"]: print(l["image"])' \
    | while read -r image; do image_exists "$image" || echo "$image"; done)
if [ -n "$missing" ]; then
    log "building the sandbox images (missing: $(echo $missing))"
    bash sandbox-images/build.sh || fail "building the sandbox images failed"
fi
log "building $LB_IMAGE (deploy/swarm/haproxy)"
docker build -q -t "$LB_IMAGE" deploy/swarm/haproxy >/dev/null || fail "building $LB_IMAGE failed"

# ---------------------------------------------------------------- swarm ---
GWBRIDGE_BEFORE=0
docker network inspect docker_gwbridge >/dev/null 2>&1 && GWBRIDGE_BEFORE=1
case "$(docker info -f '{{.Swarm.LocalNodeState}}')" in
    inactive)
        log "docker swarm init --advertise-addr 127.0.0.1 (left again at the end)"
        docker swarm init --advertise-addr 127.0.0.1 >/dev/null || fail "docker swarm init failed"
        CREATED_SWARM=1 ;;
    active)
        [ "$(docker info -f '{{.Swarm.ControlAvailable}}')" = true ] \
            || fail "this engine is in a swarm but not a manager" ;;
    *) fail "swarm state: $(docker info -f '{{.Swarm.LocalNodeState}}')" ;;
esac
NODE=$(docker info -f '{{.Swarm.NodeID}}')
for label in "${LABELS[@]}"; do
    if [ -z "$(docker node inspect -f "{{index .Spec.Labels \"$label\"}}" "$NODE")" ]; then
        docker node update --label-add "$label=true" "$NODE" >/dev/null || fail "labelling the node failed"
        ADDED_LABELS+=("$label")
    fi
done

bash deploy/swarm/secrets.sh create "$STACK" || fail "creating the secrets failed"
log "docker stack deploy $STACK (LB_PORT=$LB_PORT, api=$API_IMAGE, worker=$WORKER_IMAGE)"
docker stack deploy -c deploy/swarm/stack.yml "$STACK" >/dev/null || fail "docker stack deploy failed"

# Converged: every service at its desired count of running tasks, the
# balancer answering /ready, both api replicas and the worker ready.
base="http://127.0.0.1:$LB_PORT"
deadline=$(( $(date +%s) + 180 ))
while :; do
    converged=$(docker service ls --filter "label=com.docker.stack.namespace=$STACK" --format '{{.Replicas}}' \
        | awk -F'[/ ]' '$1 != $2 || $1 == 0 {bad=1} END {print (NR > 0 && !bad)}')
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 3 "$base/ready" 2>/dev/null)
    if [ "$converged" = 1 ] && [ "$code" = 200 ] \
        && curl -fsS -m 3 "$base/api/languages" 2>/dev/null | grep '"python"' >/dev/null; then
        break
    fi
    [ "$(date +%s)" -lt "$deadline" ] \
        || fail "the stack did not converge within 180s (services: $(docker service ls --filter "label=com.docker.stack.namespace=$STACK" --format '{{.Name}}={{.Replicas}}' | tr '\n' ' '); /ready: $code)"
    sleep 2
done
log "stack up after $(( $(date +%s) - T_START ))s: services converged, /ready 200 and python announced through the balancer"

# Both replicas answer through the balancer.
instances=$(for _ in $(seq 20); do
    curl -s -o /dev/null -D - -m 3 "$base/health" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-instance-id" {print $2}'
done | sort -u)
[ "$(wc -l <<<"$instances")" = 2 ] || fail "expected 2 api instances behind the balancer, saw: $(echo $instances)"
log "the balancer spreads requests over both replicas: $(echo $instances)"

log "checks through the balancer (deploy/swarm/swarm_check.py)"
"$DEPLOY_VENV/bin/python" deploy/swarm/swarm_check.py "$base" "$STACK" "$WORKER_IDS" \
    || fail "swarm_check.py failed"
RESULT=0
