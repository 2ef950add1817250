#!/usr/bin/env bash
# Creates (or removes) the Docker secrets deploy/swarm/stack.yml uses, with
# fresh random values. The values go from this script straight to
# `docker secret create` on stdin: they are never written to a file, printed
# or put in the stack file. Secrets are immutable in Swarm: to rotate one,
# create new ones under another prefix and redeploy with CODECALL_SECRETS set
# to it.
#
# Usage: deploy/swarm/secrets.sh create|rm|ls [PREFIX]
#   PREFIX  default $CODECALL_SECRETS, else `codecall` (secret names: PREFIX_<key>)
#   POSTGRES_HOST / REDIS_HOST  service names in the URLs (default postgres / redis)
set -euo pipefail

action=${1:-}
prefix=${2:-${CODECALL_SECRETS:-codecall}}
POSTGRES_HOST=${POSTGRES_HOST:-postgres}
REDIS_HOST=${REDIS_HOST:-redis}
KEYS=(database_url redis_url jwt_access_secret jwt_refresh_secret postgres_password redis_conf)

# URL-safe random text: 48 bytes of randomness, base64url without padding.
random() { head -c 48 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '='; }

create() {
    local name=$1 value=$2
    printf '%s' "$value" | docker secret create --label org.codecall.secret-prefix="$prefix" "$name" - >/dev/null
    echo "created secret $name" >&2
}

case "$action" in
    create)
        existing=0
        for key in "${KEYS[@]}"; do
            docker secret inspect "${prefix}_${key}" >/dev/null 2>&1 && existing=$((existing + 1))
        done
        if [ "$existing" = "${#KEYS[@]}" ]; then
            echo "the ${prefix}_* secrets exist; kept (use another prefix to rotate)" >&2
            exit 0
        elif [ "$existing" != 0 ]; then
            # The URLs embed the passwords: a partial set cannot be completed.
            echo "error: only $existing of ${#KEYS[@]} ${prefix}_* secrets exist; run '$0 rm $prefix' first" >&2
            exit 1
        fi
        pg_password=$(random)
        redis_password=$(random)
        create "${prefix}_postgres_password" "$pg_password"
        create "${prefix}_database_url" "postgres://codecall:${pg_password}@${POSTGRES_HOST}:5432/codecall"
        create "${prefix}_redis_conf" "requirepass ${redis_password}"$'\n'
        create "${prefix}_redis_url" "redis://:${redis_password}@${REDIS_HOST}:6379"
        create "${prefix}_jwt_access_secret" "$(random)"
        create "${prefix}_jwt_refresh_secret" "$(random)"
        ;;
    rm)
        for key in "${KEYS[@]}"; do
            docker secret rm "${prefix}_${key}" >/dev/null 2>&1 && echo "removed secret ${prefix}_${key}" >&2 || true
        done
        ;;
    ls)
        docker secret ls --filter label=org.codecall.secret-prefix="$prefix"
        ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
