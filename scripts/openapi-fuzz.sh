#!/usr/bin/env bash
# Fuzzes the api against its own OpenAPI document: `bash scripts/openapi-fuzz.sh`
# (scripts/test.sh runs it after `cargo test`).
#
# Starts the built api (target/debug/codecall-api, or API_BIN) on a database
# of its own, created on the PostgreSQL server of DATABASE_URL, with its own
# key prefix on the Redis of REDIS_URL, fresh JWT secrets and raised
# throttles; registers a user, signs in and creates a personal API token
# (Judge0 and Piston routes); then runs schemathesis (pinned in
# api/tests/openapi/requirements.txt, installed into a venv on first use)
# with api/tests/openapi/schemathesis.toml: a fixed seed, a bounded number of
# examples, and the checks that every response is documented (status,
# content type, headers, body schema) and none is a server error. Any
# failure fails the script. On exit it stops the api, drops its database and
# deletes its Redis keys.
#
# OPENAPI_FUZZ_MAX_EXAMPLES overrides the examples per operation (a longer,
# local hunt); extra arguments go to `schemathesis run`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=scripts/servers.sh
. scripts/servers.sh
# shellcheck source=scripts/deploy-venv.sh
. scripts/deploy-venv.sh

: "${DATABASE_URL:?DATABASE_URL (a PostgreSQL server the script may create a database on) is required}"
: "${REDIS_URL:?REDIS_URL is required}"
api_bin=${API_BIN:-$root/target/debug/codecall-api}
[ -x "$api_bin" ] || { echo "openapi-fuzz: $api_bin is not built (cargo build --workspace)" >&2; exit 1; }
if ! command -v psql >/dev/null; then
  log "installing postgresql-client (psql creates and drops the fuzz database)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql-client >/dev/null
fi

venv=${OPENAPI_FUZZ_VENV:-$root/target/openapi-fuzz-venv}
pinned_venv "$venv" api/tests/openapi/requirements.txt

run_id=$(python3 -c 'import secrets; print(secrets.token_hex(6))')
database=codecall_fuzz_$run_id
key_prefix=codecall_fuzz_$run_id:
work=$(mktemp -d /tmp/codecall-fuzz.XXXXXX)
api_pid=""

cleanup() {
  if [ -n "$api_pid" ]; then
    kill "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
  fi
  psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
  if command -v redis-cli >/dev/null; then
    redis-cli -u "$REDIS_URL" --scan --pattern "$key_prefix*" \
      | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "openapi fuzz: api on database $database"
psql -q "$DATABASE_URL" -c "CREATE DATABASE $database" >/dev/null
database_url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
  "$DATABASE_URL" "$database")
secret() { python3 -c 'import secrets; print(secrets.token_hex(32))'; }
port=$(free_port)
base=http://127.0.0.1:$port

env DATABASE_URL="$database_url" REDIS_URL="$REDIS_URL" REDIS_KEY_PREFIX="$key_prefix" \
  JWT_ACCESS_SECRET="$(secret)" JWT_REFRESH_SECRET="$(secret)" JWT_ACCESS_EXPIRES_IN=2h \
  HOST=127.0.0.1 PORT="$port" RUST_LOG="${RUST_LOG:-warn}" \
  REGISTER_MAX_PER_ADDRESS=100000 LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS=100000 \
  LOGIN_MAX_FAILURES_PER_ACCOUNT=100000 LOGIN_MAX_FAILURES_PER_ADDRESS=100000 \
  RUN_MAX_PER_MINUTE=100000 RUN_WAIT_MAX=2s CALLBACKS_ENABLED=false \
  "$api_bin" >"$work/api.log" 2>&1 &
api_pid=$!

# Ready, then a user, its access token and a personal API token.
if ! python3 - "$base" >"$work/credentials" <<'PY'; then
import json, sys, time, urllib.error, urllib.request

base = sys.argv[1]

def call(method, path, body=None, token=None):
    request = urllib.request.Request(base + path, method=method)
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)

deadline = time.monotonic() + 60
while True:
    try:
        call("GET", "/ready")
        break
    except (urllib.error.URLError, ConnectionError):
        if time.monotonic() > deadline:
            sys.exit("the api did not become ready within 60 s")
        time.sleep(0.5)

user = {"name": "Fuzz User", "email": "fuzz@codecall.test", "password": "FuzzPass123"}
call("POST", "/api/auth/register", user)
access = call("POST", "/api/auth/login", {"email": user["email"], "password": user["password"]})["accessToken"]
api_token = call("POST", "/api/tokens", {"name": "openapi fuzz"}, access)["token"]
print(access)
print(api_token)
PY
  echo "openapi-fuzz: setting up the api failed; its log:" >&2
  tail -n 50 "$work/api.log" >&2
  exit 1
fi
{ read -r OPENAPI_FUZZ_ACCESS_TOKEN; read -r OPENAPI_FUZZ_API_TOKEN; } <"$work/credentials"
export OPENAPI_FUZZ_ACCESS_TOKEN OPENAPI_FUZZ_API_TOKEN

log "openapi fuzz: schemathesis against $base/api/openapi.json"
examples=()
[ -n "${OPENAPI_FUZZ_MAX_EXAMPLES:-}" ] && examples=(--max-examples "$OPENAPI_FUZZ_MAX_EXAMPLES")
status=0
# From the temp dir: schemathesis keeps its cache (.schemathesis/) in the
# current directory.
(cd "$work" && "$venv/bin/schemathesis" --config-file "$root/api/tests/openapi/schemathesis.toml" \
  --no-color run "$base/api/openapi.json" "${examples[@]}" "$@") || status=$?
if [ "$status" != 0 ]; then
  echo "openapi-fuzz: schemathesis failed (exit $status); the api's last log lines:" >&2
  tail -n 30 "$work/api.log" >&2
fi
exit "$status"
