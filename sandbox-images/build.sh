#!/usr/bin/env bash
# Builds the sandbox image of every language in languages.json (or those named
# as arguments) from sandbox-images/Dockerfile, tagged as the manifest says.
# Offline (no registry), run scripts/offline-images.sh first: it provides the
# base images under their public tags and vendors the crates.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t entries < <(python3 -c '
import json, sys
for l in json.load(open("sandbox-images/languages.json"))["languages"]:
    print(l["id"], l["image"])')
wanted=("$@")
for entry in "${entries[@]}"; do
  read -r id image <<<"$entry"
  if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " =~ " $id " ]]; then continue; fi
  printf '\033[1m==> sandbox image %s (%s)\033[0m\n' "$image" "$id" >&2
  docker build -q -f sandbox-images/Dockerfile --target "$id" -t "$image" . >/dev/null
done
