#!/usr/bin/env bash
# End-to-end run latency benchmark: builds the release binaries, starts a
# throwaway PostgreSQL (with production durability: fsync and synchronous
# commit on) and Redis, the api and one worker as real processes on the
# local Docker engine, then runs `worker/examples/e2e_bench.rs`, which prints
# every figure and the goal's ratios (see README, "How a run travels").
#
#   bench/run-latency.sh            # needs Docker and the sandbox images
#   BENCH_PROFILE=dev bench/run-latency.sh   # reuse the dev build (dependencies
#                                           # are optimised there too)
#
# Logs of the api and the worker stay in $BENCH_LOGS (default: a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export SQLX_OFFLINE=true
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}

PROFILE=${BENCH_PROFILE:-release}
# The dev profile's dependencies are already optimised (opt-level 2); the
# workspace's crates are then optimised too, so BENCH_PROFILE=dev measures
# optimised code after minutes of building instead of a full release build.
# The whole workspace is selected, as the test build does, so dependencies
# are shared with it rather than compiled again with other features.
[ "$PROFILE" = dev ] && export CARGO_PROFILE_DEV_OPT_LEVEL=2
cargo build --profile "$PROFILE" --locked --workspace --bins --examples
BIN=$CARGO_TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")

# shellcheck source=scripts/servers.sh
. scripts/servers.sh
ensure_server_packages
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  stop_servers
}
trap cleanup EXIT INT TERM
start_servers
psql "$DATABASE_URL" -qAt -c "ALTER SYSTEM SET fsync = on" \
  -c "ALTER SYSTEM SET synchronous_commit = on" \
  -c "ALTER SYSTEM SET full_page_writes = on" -c "SELECT pg_reload_conf()" >/dev/null

LOGS=${BENCH_LOGS:-$(mktemp -d /tmp/codecall-bench.XXXXXX)}
API_PORT=$(free_port)
METRICS_PORT=$(free_port)
SECRET_A=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
SECRET_B=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
PREFIX="bench-$$:"

# Quotas out of the way: the benchmark measures the run path, not the limits
# (the room load registers 80 users from one address).
env PORT="$API_PORT" JWT_ACCESS_SECRET="$SECRET_A" JWT_REFRESH_SECRET="$SECRET_B" \
  REDIS_KEY_PREFIX="$PREFIX" RUN_MAX_PER_MINUTE=100000 RUN_MAX_CONCURRENT_PER_USER=100 \
  REGISTER_MAX_PER_ADDRESS=100000 \
  RUST_LOG=warn "$BIN/codecall-api" >"$LOGS/api.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$API_PORT/health" >/dev/null 2>&1 && break; sleep 0.2; done

env REDIS_KEY_PREFIX="$PREFIX" WORKER_CONCURRENCY=4 METRICS_PORT="$METRICS_PORT" \
  WORKER_ID="bench-worker-$$" RUST_LOG=info LOG_FORMAT=json \
  "$BIN/codecall-worker" >"$LOGS/worker.log" 2>&1 &
PIDS+=($!)

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $PROFILE build$([ "$PROFILE" = dev ] && echo ' (opt-level 2)'), $(nproc) cores, $(docker info --format '{{.Driver}}, Docker {{.ServerVersion}}, cgroup v{{.CgroupVersion}}' 2>/dev/null)"
BENCH_API_URL="http://127.0.0.1:$API_PORT" \
BENCH_WORKER_METRICS_URL="http://127.0.0.1:$METRICS_PORT/metrics" \
  "$BIN/examples/e2e_bench"
echo "# logs: $LOGS"
