#!/usr/bin/env bash
# The test command: `bash scripts/test.sh` (CI runs exactly this).
#
# On a fresh Debian/Ubuntu machine it installs what is missing (PostgreSQL,
# Redis and the reference Yjs client — nodejs, node-yjs, node-y-websocket,
# node-ws — from the distribution's packages), starts throwaway servers of its own on
# free ports — unless DATABASE_URL and REDIS_URL are already set, in which case
# it uses those — checks formatting and lints, runs the whole test suite, and
# stops its servers on exit, failure or ctrl-c. After the suite it fuzzes the
# api against its OpenAPI document (scripts/openapi-fuzz.sh). When a Docker engine is
# reachable it also runs the sandbox suite a second time under gVisor
# (`runsc`, installed and registered by scripts/runsc-setup.sh where it can be:
# otherwise one line says why and that pass is skipped, or fails when CI is
# set), the compose smoke test (SKIP_COMPOSE=1 skips it) and the Swarm test
# (SKIP_SWARM=1 skips it), and it always validates the Kubernetes manifests and
# checks them and the Dockerfiles with checkov.
#
# Tests create their own databases (`codecall_test_*`) on the given server and
# their own Redis key prefixes; they never touch anything else.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/servers.sh
. scripts/servers.sh

# Builds use the committed query data in .sqlx/, never a live database: the
# DATABASE_URL exported below is for the tests, not for the sqlx macros.
export SQLX_OFFLINE=true
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-always}"

trap stop_servers EXIT
trap 'exit 130' INT TERM

log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

ensure_client_packages

if [ -z "${DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}" ]; then
  ensure_server_packages
  start_servers
else
  log "using the given DATABASE_URL and REDIS_URL"
fi

if docker info >/dev/null 2>&1; then
  log "building the sandbox images (docker reachable)"
  if ! command -v mmdebstrap >/dev/null; then
    log "installing mmdebstrap (local base images for the offline build)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq mmdebstrap >/dev/null
  fi
  if [ "${SKIP_OFFLINE_IMAGES:-0}" != 1 ]; then
    # No-op where the base images exist; builds local ones where no registry is reachable.
    bash scripts/offline-images.sh debian rust vendor
  fi
  bash sandbox-images/build.sh
else
  log "no reachable Docker engine: the sandbox tests will be skipped"
fi

log "cargo test"
cargo test --workspace --locked --no-fail-fast

# Every response the api gives must be documented by its OpenAPI document
# (the api binary `cargo test` built, fuzzed by schemathesis).
log "openapi fuzz (scripts/openapi-fuzz.sh)"
bash scripts/openapi-fuzz.sh

# The sandbox suite (adversarial programs included) a second time, under
# gVisor: scripts/runsc-setup.sh installs and registers runsc when it can.
if docker info >/dev/null 2>&1; then
  if bash scripts/runsc-setup.sh; then
    log "sandbox suite under gVisor (SANDBOX_TEST_RUNTIME=runsc)"
    # The same selection as the run above (`--workspace`): `-p worker` would
    # unify features differently and compile the dependencies again.
    SANDBOX_TEST_RUNTIME=runsc cargo test --workspace --locked --test sandbox
  elif [ -n "${CI:-}" ]; then
    echo "test.sh: CI is set and runsc could not be set up (see the line above)" >&2
    exit 1
  else
    log "sandbox suite under gVisor skipped (see the line above)"
  fi
fi

if [ "${SKIP_COMPOSE:-0}" != 1 ] && docker info >/dev/null 2>&1; then
  log "compose smoke test"
  bash scripts/compose-smoke.sh
else
  log "compose smoke test skipped (no reachable Docker engine, or SKIP_COMPOSE=1)"
fi

log "deployment files: Kubernetes schemas, kustomization, checkov (scripts/k8s-validate.sh)"
bash scripts/k8s-validate.sh

if [ "${SKIP_SWARM:-0}" != 1 ] && docker info >/dev/null 2>&1; then
  log "swarm test (scripts/swarm-test.sh)"
  bash scripts/swarm-test.sh
else
  log "swarm test skipped (no reachable Docker engine, or SKIP_SWARM=1)"
fi
