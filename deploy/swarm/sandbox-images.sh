#!/usr/bin/env bash
# Puts the sandbox images (every `image` of sandbox-images/languages.json) on
# the Docker engines of the sandbox nodes, from this machine's engine, without
# a registry: `docker save | docker -H <node> load`, skipping an image the
# node already has with the same id. Every node then runs byte-identical
# sandboxes, and no registry has to be run, secured and trusted by every
# engine. Run it after building the images (sandbox-images/build.sh) and
# before labelling a new node codecall.sandbox=true; the worker advertises
# only the languages whose image its node has.
#
# Usage: deploy/swarm/sandbox-images.sh HOST...
#   HOST  a Docker host as for `docker -H`: ssh://user@node, tcp://node:2376
#         (with TLS variables set), or unix:///path/to/docker.sock
#   --check  only report which images each host lacks (exit 1 if any)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

check_only=0
hosts=()
for arg in "$@"; do
    case "$arg" in
        --check) check_only=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) hosts+=("$arg") ;;
    esac
done
[ ${#hosts[@]} -gt 0 ] || { echo "usage: $0 [--check] HOST..." >&2; exit 2; }

mapfile -t images < <(python3 -c '
import json, sys
for l in json.load(open(sys.argv[1]))["languages"]:
    print(l["image"])' "$ROOT/sandbox-images/languages.json")

for image in "${images[@]}"; do
    docker image inspect "$image" >/dev/null 2>&1 \
        || { echo "error: $image is not on this engine (build it: sandbox-images/build.sh)" >&2; exit 1; }
done

missing_any=0
for host in "${hosts[@]}"; do
    missing=()
    for image in "${images[@]}"; do
        want=$(docker image inspect -f '{{.Id}}' "$image")
        have=$(docker -H "$host" image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
        [ "$have" = "$want" ] || missing+=("$image")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "$host: all ${#images[@]} sandbox images present" >&2
        continue
    fi
    missing_any=1
    if [ "$check_only" = 1 ]; then
        echo "$host: missing or different: ${missing[*]}" >&2
        continue
    fi
    echo "$host: loading ${missing[*]}" >&2
    docker save "${missing[@]}" | docker -H "$host" load -q
done
[ "$check_only" = 0 ] || exit "$missing_any"
