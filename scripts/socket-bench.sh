#!/usr/bin/env bash
# The rooms' scale benchmark (api/examples/socket_bench.rs; figures in the
# README's "Sockets at scale"): idle events sockets' memory on one replica,
# and run-event fan-out latency over two replicas against the bare Redis
# pub/sub hop.
#
#   bash scripts/socket-bench.sh                 # N = 1,000 and 10,000, jemalloc
#   ALLOCATOR=system bash scripts/socket-bench.sh
#   ALLOCATOR=mimalloc SOCKETS=1000 bash scripts/socket-bench.sh
#   PROFILE=dev bash scripts/socket-bench.sh     # no release build: see below
#
# It builds the release api (with the chosen global allocator) and the
# benchmark, starts its own PostgreSQL and Redis (scripts/servers.sh), runs
# two api replicas as separate processes on them, with the per-user socket
# caps raised by configuration, and stops everything on exit. Extra options
# for the benchmark go in BENCH_ARGS (e.g. `--hold 30 --events 1000`).
#
# PROFILE=dev builds with the dev profile, whose dependencies are already
# optimised (opt-level 2), and optimises the workspace's own crates too
# (CARGO_PROFILE_DEV_OPT_LEVEL=2): a release build's code in minutes rather
# than a full release build. Unoptimised async code makes much larger
# per-socket futures, so the plain dev profile overstates memory.
#
# File limit: every socket is a descriptor in the api and one in the client,
# so N = 10,000 needs more than the usual soft limit of 1024. The script
# raises its soft limit to the hard one (`ulimit -n`, inherited by the api
# processes, the client and Redis) and refuses to start if that is too low.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/servers.sh
. scripts/servers.sh

ALLOCATOR="${ALLOCATOR:-jemalloc}"
PROFILE="${PROFILE:-release}"
SOCKETS="${SOCKETS:-1000,10000}"
export SQLX_OFFLINE=true
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"

largest=$(tr ',' '\n' <<<"$SOCKETS" | sort -n | tail -1)
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((largest + 1000)) ]; then
  echo "the file limit ($(ulimit -n)) is too low for $largest sockets: raise the hard limit" >&2
  exit 1
fi

# The build selects the whole workspace, as the test build does, so the
# dependencies are shared with it (a narrower selection unifies features
# differently and compiles them again). `mimalloc` and `system` turn default
# features off everywhere, which does compile some dependencies again.
# MIMALLOC_* and _RJEM_MALLOC_CONF variables reach the api processes.
case "$ALLOCATOR" in
  jemalloc) features=() ;;
  mimalloc) features=(--no-default-features --features api/mimalloc) ;;
  system) features=(--no-default-features) ;;
  *) echo "ALLOCATOR is mimalloc, jemalloc or system" >&2; exit 2 ;;
esac
target="${CARGO_TARGET_DIR:-target}"
case "$PROFILE" in
  release) out="$target/release" ;;
  dev) out="$target/debug"; export CARGO_PROFILE_DEV_OPT_LEVEL=2 ;;
  *) echo "PROFILE is release or dev" >&2; exit 2 ;;
esac
log "building the api ($PROFILE, $ALLOCATOR) and the benchmark"
cargo build --profile "$PROFILE" --locked --workspace --bins --examples "${features[@]}"
mkdir -p "$target/socket-bench"
# Replaced, not overwritten: another run may be executing the old copy.
cp "$out/codecall-api" "$target/socket-bench/codecall-api-$PROFILE-$ALLOCATOR.new"
mv -f "$target/socket-bench/codecall-api-$PROFILE-$ALLOCATOR.new" "$target/socket-bench/codecall-api-$PROFILE-$ALLOCATOR"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_servers
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_server_packages
start_servers
secret() { python3 -c 'import secrets; print(secrets.token_hex(32))'; }
access=$(secret)
refresh=$(secret)
logs=$(mktemp -d /tmp/socket-bench.XXXXXX)

start_replica() {
  local port=$1
  env -i PATH="$PATH" HOST=127.0.0.1 PORT="$port" DATABASE_URL="$DATABASE_URL" \
    REDIS_URL="$REDIS_URL" JWT_ACCESS_SECRET="$access" JWT_REFRESH_SECRET="$refresh" \
    JWT_ACCESS_EXPIRES_IN=2h DATABASE_MAX_CONNECTIONS=20 RUST_LOG=warn \
    $(env | grep -E '^(MIMALLOC_|_RJEM_MALLOC_CONF=)' | tr '\n' ' ') \
    SOCKET_MAX_PER_USER=100000 SOCKET_MAX_PER_USER_SESSION=100000 \
    "$target/socket-bench/codecall-api-$PROFILE-$ALLOCATOR" >"$logs/api-$port.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  cat "$logs/api-$port.log" >&2
  return 1
}

port1=$(free_port)
start_replica "$port1"   # the first one applies the migrations
pid1=${pids[-1]}
port2=$(free_port)
start_replica "$port2"
pid2=${pids[-1]}

log "benchmark: allocator $ALLOCATOR, sockets $SOCKETS, logs in $logs"
# shellcheck disable=SC2086
"$out/examples/socket_bench" \
  --api1 "http://127.0.0.1:$port1" --pid1 "$pid1" \
  --api2 "http://127.0.0.1:$port2" --pid2 "$pid2" \
  --redis "$REDIS_URL" --prefix codecall: --sockets "$SOCKETS" ${BENCH_ARGS:-}
