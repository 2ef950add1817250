#!/usr/bin/env bash
# Creates the Secret `codecall` (namespace codecall) that the api Deployment
# and the worker DaemonSet mount, with fresh random JWT secrets and the URLs
# of your PostgreSQL and Redis. Values go to kubectl on stdin: never into a
# file, the process list or the manifests. Re-running replaces the Secret
# (rotating the JWT secrets signs everyone out); restart the pods afterwards:
#   kubectl -n codecall rollout restart deployment/codecall-api daemonset/codecall-worker
#
# Usage: DATABASE_URL=postgres://... REDIS_URL=redis://... deploy/kubernetes/secrets.sh
#   KUBECTL  the kubectl command (default kubectl)
set -euo pipefail
: "${DATABASE_URL:?set DATABASE_URL (postgres://user:password@host:5432/db)}"
: "${REDIS_URL:?set REDIS_URL (redis://:password@host:6379)}"
KUBECTL=${KUBECTL:-kubectl}
random() { head -c 48 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '='; }
printf 'database_url=%s\nredis_url=%s\njwt_access_secret=%s\njwt_refresh_secret=%s\n' \
    "$DATABASE_URL" "$REDIS_URL" "$(random)" "$(random)" \
    | $KUBECTL -n codecall create secret generic codecall --from-env-file=/dev/stdin \
        --dry-run=client -o yaml \
    | $KUBECTL apply -f -
