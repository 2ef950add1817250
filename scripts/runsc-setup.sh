#!/usr/bin/env bash
# Sets gVisor up for the sandbox tests: installs `runsc` from the distribution
# when it is missing and registers it with the local Docker engine when the
# engine does not list it (`/etc/docker/daemon.json` gets a `runtimes.runsc`
# entry; every other setting there is kept; the daemon reloads its
# configuration on SIGHUP, which does not touch running containers).
#
# Exits 0 when `docker info` lists runsc afterwards, 1 (with one line saying
# why on stderr) when it cannot be set up here (no root, no package, the
# engine refuses). Used by scripts/test.sh; safe to run again.
set -euo pipefail

say() { printf 'runsc-setup: %s\n' "$*" >&2; }
registered() { docker info --format '{{json .Runtimes}}' 2>/dev/null | grep '"runsc"' >/dev/null; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi; }

docker info >/dev/null 2>&1 || { say "no reachable Docker engine"; exit 1; }
registered && exit 0

RUNSC=$(command -v runsc || true)
if [ -z "$RUNSC" ]; then
  say "installing runsc (apt-get install runsc)"
  { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq runsc; } >/dev/null 2>&1 \
    || { say "cannot install runsc (no root, or no runsc package in this distribution)"; exit 1; }
  RUNSC=$(command -v runsc || true)
  [ -n "$RUNSC" ] || { say "runsc package installed but no runsc binary on PATH"; exit 1; }
fi

DAEMON_JSON=${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}
PID=$(pidof dockerd || true)
[ -n "$PID" ] || { say "no local dockerd process to reload (remote DOCKER_HOST?): register runsc there by hand"; exit 1; }
say "registering runsc ($RUNSC) in $DAEMON_JSON and reloading dockerd"
merged=$(python3 - "$DAEMON_JSON" "$RUNSC" <<'PY'
import json, os, sys
path, runsc = sys.argv[1], sys.argv[2]
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
config.setdefault("runtimes", {})["runsc"] = {"path": runsc, "runtimeArgs": ["--network=none"]}
print(json.dumps(config, indent=2))
PY
) || { say "cannot read $DAEMON_JSON as JSON"; exit 1; }
printf '%s\n' "$merged" | as_root tee "$DAEMON_JSON.codecall-tmp" >/dev/null \
  && as_root mv "$DAEMON_JSON.codecall-tmp" "$DAEMON_JSON" \
  || { say "cannot write $DAEMON_JSON (not root)"; exit 1; }
as_root kill -HUP $PID || { say "cannot signal dockerd (not root)"; exit 1; }
for _ in $(seq 50); do registered && exit 0; sleep 0.1; done
say "dockerd did not list runsc after the reload (see its log)"
exit 1
