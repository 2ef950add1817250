# shellcheck shell=bash
# Throwaway PostgreSQL and Redis servers for tests, sourced by scripts/test.sh
# and scripts/sqlx-prepare.sh. Each server lives in a temp dir on a free port and
# is stopped by `stop_servers` (the callers trap EXIT/INT/TERM).

SERVERS_DIR=""

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

# Installs PostgreSQL and Redis from Debian/Ubuntu packages when missing.
ensure_server_packages() {
  local missing=()
  pg_bindir >/dev/null || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v python3 >/dev/null || missing+=(python3)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  # Keep Debian's own postgresql/redis services from starting: ours run on free ports.
  printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
  as_root chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  as_root rm -f /usr/sbin/policy-rc.d
}

# The reference Yjs client the document tests drive: Node.js with Debian's
# yjs, y-websocket and ws packages (no npm registry needed).
ensure_client_packages() {
  local missing=()
  command -v node >/dev/null || missing+=(nodejs)
  [ -d /usr/share/nodejs/yjs ] || missing+=(node-yjs)
  [ -d /usr/share/nodejs/y-websocket ] || missing+=(node-y-websocket)
  [ -d /usr/share/nodejs/ws ] || missing+=(node-ws)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts both servers and exports DATABASE_URL (a superuser on the server's
# `postgres` database; tests create their own databases) and REDIS_URL.
start_servers() {
  SERVERS_DIR=$(mktemp -d /tmp/codecall-test.XXXXXX)
  chmod 755 "$SERVERS_DIR"
  local bindir pg_port redis_port run_pg=()
  bindir=$(pg_bindir)
  pg_port=$(free_port)
  redis_port=$(free_port)
  mkdir -p "$SERVERS_DIR/pg"
  # PostgreSQL refuses to run as root.
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$SERVERS_DIR/pg"
    run_pg=(runuser -u postgres --)
  fi
  log "starting PostgreSQL on 127.0.0.1:$pg_port"
  "${run_pg[@]}" "$bindir/initdb" -D "$SERVERS_DIR/pg/data" -U postgres --auth=trust -E UTF8 >"$SERVERS_DIR/initdb.log" 2>&1 \
    || { cat "$SERVERS_DIR/initdb.log" >&2; return 1; }
  "${run_pg[@]}" "$bindir/pg_ctl" -D "$SERVERS_DIR/pg/data" -l "$SERVERS_DIR/pg/server.log" -w -t 30 start \
    -o "-p $pg_port -k $SERVERS_DIR/pg -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null \
    || { cat "$SERVERS_DIR/pg/server.log" >&2; return 1; }
  log "starting Redis on 127.0.0.1:$redis_port"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --dir "$SERVERS_DIR" --pidfile "$SERVERS_DIR/redis.pid" --logfile "$SERVERS_DIR/redis.log"
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
  export REDIS_URL="redis://127.0.0.1:$redis_port"
  export PG_BINDIR="$bindir"
}

stop_servers() {
  [ -n "$SERVERS_DIR" ] && [ -d "$SERVERS_DIR" ] || return 0
  if [ -f "$SERVERS_DIR/pg/data/postmaster.pid" ]; then
    local run_pg=()
    [ "$(id -u)" = 0 ] && run_pg=(runuser -u postgres --)
    "${run_pg[@]}" "$(pg_bindir)/pg_ctl" -D "$SERVERS_DIR/pg/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  [ -f "$SERVERS_DIR/redis.pid" ] && kill "$(cat "$SERVERS_DIR/redis.pid")" 2>/dev/null || true
  rm -rf "$SERVERS_DIR"
  SERVERS_DIR=""
}
