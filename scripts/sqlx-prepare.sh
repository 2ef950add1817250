#!/usr/bin/env bash
# Regenerates .sqlx/, the query data that lets `sqlx::query!` compile without a
# database (CI, the Docker build). Run it after adding or changing a query or a
# migration, and commit the result. Needs no sqlx-cli: the macros write the data
# themselves when SQLX_OFFLINE_DIR is set and they can reach a database.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/servers.sh
trap stop_servers EXIT
trap 'exit 130' INT TERM

ensure_server_packages
start_servers
for f in migrations/*.sql; do
  psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -f "$f" >/dev/null
done
rm -rf .sqlx && mkdir .sqlx
# Touch every crate that has queries so the macros run again.
find api/src api/tests worker/src -name '*.rs' -exec touch {} + 2>/dev/null || true
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$PWD/.sqlx" cargo check --workspace --all-targets
log "wrote $(ls .sqlx | wc -l) query files to .sqlx/"
