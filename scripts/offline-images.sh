#!/usr/bin/env bash
# Build local stand-ins for the public base images that Dockerfile and
# docker-compose.yml use, for machines that cannot pull from a registry.
#
# Every image is bootstrapped from Debian bookworm with mmdebstrap (using the
# host's apt mirror) and loaded with `docker import` under the exact public
# tag, so the same Dockerfile / compose file work online and offline:
#
#   debian:bookworm-slim      minbase + ca-certificates
#   rust:1.95-slim-bookworm   + gcc libc6-dev make pkg-config + the host's rustup
#                             toolchain 1.95.0 (rustc, cargo, rust-std only)
#   postgres:15-bookworm      Debian's postgresql-15 + an entrypoint that
#                             mimics the official image (POSTGRES_* env, PGDATA)
#   redis:7-bookworm          Debian's redis-server 7.0, protected mode off
#
# It also vendors the workspace's crates into ./vendor (gitignored by its own
# .gitignore): containers here cannot fetch from crates.io, so the Dockerfile
# takes the crates from the build context when vendor/ is present.
#
# Usage: scripts/offline-images.sh [--force] [--no-vendor] [--probe] [TARGET...]
#   TARGET: debian rust postgres redis vendor (default: all of them)
#   --force       rebuild images whose tag already exists (and re-vendor)
#   --no-vendor   skip the vendor step
#   --probe       only check whether a container can reach crates.io over TLS
#   --list        print the tags and exit
# Environment:
#   DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR  apt mirrors (default: the host's)
#   RUST_TOOLCHAIN_DIR  toolchain to copy (default: ~/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu)
#   RUSTUP_BIN          rustup binary to copy (default: ~/.cargo/bin/rustup)
#   OFFLINE_IMAGES_WORKDIR  scratch space (default: a mktemp dir, removed on exit)
set -euo pipefail

RUST_VERSION=1.95.0
RUST_HOST=x86_64-unknown-linux-gnu
PG_MAJOR=15
SUITE=bookworm

TAG_DEBIAN=debian:bookworm-slim
TAG_RUST=rust:1.95-slim-bookworm
TAG_POSTGRES=postgres:${PG_MAJOR}-bookworm
TAG_REDIS=redis:7-bookworm
LABEL=org.codecall.offline-image

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'offline-images: error: %s\n' "$*" >&2; exit 1; }

FORCE=0 VENDOR=1 PROBE_ONLY=0
TARGETS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --force) FORCE=1 ;;
        --no-vendor) VENDOR=0 ;;
        --probe) PROBE_ONLY=1 ;;
        --list) printf '%s\n' "$TAG_DEBIAN" "$TAG_RUST" "$TAG_POSTGRES" "$TAG_REDIS"; exit 0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        debian|rust|postgres|redis|vendor) TARGETS+=("$1") ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(debian rust postgres redis vendor)
[ "$VENDOR" = 1 ] || TARGETS=("${TARGETS[@]/vendor}")
wants() { local t; for t in "${TARGETS[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

command -v docker >/dev/null || die "docker not found"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker engine (is it running? are you in the docker group?)"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- probe ---
# Can a container on the default bridge reach crates.io with a certificate it
# trusts? Uses openssl from our debian image (curl is not in it).
probe_crates_io() {
    image_exists "$TAG_DEBIAN" || { echo "probe skipped: $TAG_DEBIAN missing"; return 2; }
    local out
    out=$(docker run --rm --entrypoint sh "$TAG_DEBIAN" -c \
        'command -v openssl >/dev/null || { echo "no openssl in image"; exit 3; }
         timeout 20 openssl s_client -connect index.crates.io:443 -servername index.crates.io \
             -verify_return_error </dev/null 2>&1 | grep -E "^(verify|Verify return code|.*error)" | head -3' 2>&1) || true
    if grep -q 'Verify return code: 0 (ok)' <<<"$out"; then
        echo "containers CAN reach crates.io (TLS verified)"; return 0
    fi
    echo "containers can NOT reach crates.io with a trusted certificate:"
    printf '%s\n' "$out" | sed 's/^/    /'
    return 1
}
if [ "$PROBE_ONLY" = 1 ]; then probe_crates_io; exit $?; fi

# ------------------------------------------------------------- mmdebstrap ---
need_mmdebstrap() {
    command -v mmdebstrap >/dev/null || die "mmdebstrap not found (apt-get install mmdebstrap)"
    [ "$(id -u)" = 0 ] || die "run as root (mmdebstrap root mode + docker import)"
}

# First URI of the host's apt sources that ends in $1 (debian / debian-security).
host_mirror() {
    local suffix=$1 uri
    uri=$( { grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i=2;i<=NF;i++) print $i}';
             grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}'; } \
           | sed 's:/*$::' | grep -E "/${suffix}\$" | head -1) || true
    printf '%s' "$uri"
}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-$(host_mirror debian)}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-$(host_mirror debian-security)}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

WORK=${OFFLINE_IMAGES_WORKDIR:-}
if [ -z "$WORK" ]; then
    WORK=$(mktemp -d /var/tmp/offline-images.XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"

HOOKS=/usr/share/mmdebstrap/hooks
# mmdebstrap <out.tar> [extra mmdebstrap options...]
bootstrap() {
    local out=$1; shift
    local hookdirs=()
    # merged-usr without installing the usrmerge package (which drags in perl);
    # eatmydata makes dpkg skip fsync (3x faster).
    [ -d "$HOOKS/merged-usr" ] && hookdirs+=(--hook-dir="$HOOKS/merged-usr")
    [ -d "$HOOKS/eatmydata" ] && hookdirs+=(--hook-dir="$HOOKS/eatmydata")
    local mmlog=$WORK/$(basename "$out" .tar).mmdebstrap.log
    local a incl=""
    for a in "$@"; do case "$a" in --include=*) incl=${a#--include=} ;; esac; done
    echo "    mmdebstrap --variant=minbase $SUITE -> $(basename "$out") (+ ${incl:-nothing})" >&2
    if ! mmdebstrap --variant=minbase --format=tar \
        "${hookdirs[@]}" \
        --aptopt='APT::Install-Recommends "false"' \
        --aptopt='APT::Install-Suggests "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-include=/usr/share/locale/locale.alias' \
        --dpkgopt='path-exclude=/usr/share/lintian/*' \
        "$@" \
        "$SUITE" "$out" \
        "deb $DEBIAN_MIRROR $SUITE main" \
        "deb $DEBIAN_MIRROR $SUITE-updates main" \
        "deb $DEBIAN_SECURITY_MIRROR $SUITE-security main" \
        > "$mmlog" 2>&1
    then
        tail -n 25 "$mmlog" >&2
        cp "$mmlog" /var/tmp/ 2>/dev/null || true
        die "mmdebstrap failed for $(basename "$out") (full log: /var/tmp/$(basename "$mmlog"); mirror $DEBIAN_MIRROR reachable?)"
    fi
    grep -E '^I: success' "$mmlog" | sed 's/^I: /    mmdebstrap: /' >&2 || true
}

# import <tar> <tag> [--change ...]
import() {
    local tar=$1 tag=$2; shift 2
    docker import \
        --change "LABEL $LABEL=1" \
        --change "LABEL $LABEL.source=\"mmdebstrap $SUITE $(date -u +%Y-%m-%dT%H:%M:%SZ)\"" \
        "$@" "$tar" "$tag" >/dev/null || die "docker import failed for $tag"
    rm -f "$tar"
}

STD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
TIMINGS=()

# build <target> <tag> <function>
build() {
    local target=$1 tag=$2 fn=$3 t0
    wants "$target" || return 0
    if [ "$FORCE" = 0 ] && image_exists "$tag"; then
        log "$tag: already present, skipping (--force to rebuild)"
        return 0
    fi
    need_mmdebstrap
    log "$tag: bootstrapping (mirror $DEBIAN_MIRROR)"
    t0=$(date +%s)
    "$fn" "$tag"
    local dt=$(( $(date +%s) - t0 ))
    TIMINGS+=("$tag: ${dt}s, $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')")
    log "$tag: done in ${dt}s"
}

# ----------------------------------------------------------------- debian ---
build_debian() {
    bootstrap "$WORK/debian.tar" --include=ca-certificates
    import "$WORK/debian.tar" "$1" --change 'CMD ["bash"]'
}

# ------------------------------------------------------------------- rust ---
# Copy only what `rustup --profile minimal` would install (rustc, cargo,
# rust-std), following the component manifests, without share/doc and man.
pack_toolchain() {
    local out=$1
    local tc=${RUST_TOOLCHAIN_DIR:-$HOME/.rustup/toolchains/$RUST_VERSION-$RUST_HOST}
    local rustup=${RUSTUP_BIN:-$HOME/.cargo/bin/rustup}
    [ -d "$tc" ] || die "toolchain not found: $tc (set RUST_TOOLCHAIN_DIR)"
    tc=$(readlink -f "$tc")
    [ -x "$rustup" ] || die "rustup not found: $rustup (set RUSTUP_BIN)"
    local v; v=$("$tc/bin/rustc" -V) || die "$tc/bin/rustc does not run"
    case "$v" in "rustc $RUST_VERSION "*) ;; *) die "$tc is '$v', expected rustc $RUST_VERSION" ;; esac

    local stage=$WORK/rust-stage name=$RUST_VERSION-$RUST_HOST
    local dst=$stage/usr/local/rustup/toolchains/$name rl=lib/rustlib
    rm -rf "$stage"; mkdir -p "$dst/$rl" "$stage/usr/local/cargo/bin"
    local comps=(rustc cargo rust-std) c list=$WORK/toolchain.files
    : > "$list"
    for c in "${comps[@]}"; do
        local m=$tc/$rl/manifest-$c-$RUST_HOST
        [ -f "$m" ] || die "component $c missing from $tc"
        grep -vE '^(file|dir):share/(doc|man)/' "$m" > "$dst/$rl/manifest-$c-$RUST_HOST"
        sed -n 's/^\(file\|dir\)://p' "$dst/$rl/manifest-$c-$RUST_HOST" >> "$list"
    done
    tar -C "$tc" -cf - -T "$list" | tar -C "$dst" -xf -
    cp "$tc/$rl/rust-installer-version" "$tc/$rl/multirust-channel-manifest.toml" "$dst/$rl/"
    printf '%s\n' "${comps[@]/%/-$RUST_HOST}" > "$dst/$rl/components"
    { echo 'config_version = "1"'
      for c in "${comps[@]}"; do printf '\n[[components]]\npkg = "%s"\ntarget = "%s"\nis_extension = false\n' "$c" "$RUST_HOST"; done
    } > "$dst/$rl/multirust-config.toml"
    printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n\n[overrides]\n' "$name" \
        > "$stage/usr/local/rustup/settings.toml"
    install -m 0755 "$rustup" "$stage/usr/local/cargo/bin/rustup"
    for c in cargo rustc rustdoc rust-gdb rust-gdbgui rust-lldb; do ln -s rustup "$stage/usr/local/cargo/bin/$c"; done
    chmod -R a+w "$stage/usr/local/rustup" "$stage/usr/local/cargo"
    tar -C "$stage" -cf "$out" usr
    rm -rf "$stage"
    log "toolchain $v: $(du -sh "$out" | cut -f1) packed from $tc"
}

build_rust() {
    export TOOLCHAIN_TAR=$WORK/toolchain.tar
    pack_toolchain "$TOOLCHAIN_TAR"
    bootstrap "$WORK/rust.tar" --include=ca-certificates,gcc,libc6-dev,make,pkg-config \
        --customize-hook='tar -C "$1" -xf "$TOOLCHAIN_TAR"' \
        --customize-hook='chroot "$1" env RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo /usr/local/cargo/bin/rustc -V' \
        --customize-hook='chroot "$1" env RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo /usr/local/cargo/bin/cargo -V'
    rm -f "$TOOLCHAIN_TAR"
    import "$WORK/rust.tar" "$1" \
        --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
        --change 'ENV CARGO_HOME=/usr/local/cargo' \
        --change "ENV PATH=/usr/local/cargo/bin:$STD_PATH" \
        --change "ENV RUST_VERSION=$RUST_VERSION" \
        --change 'CMD ["bash"]'
}

# --------------------------------------------------------------- postgres ---
# Entry point modelled on docker-library/postgres' docker-entrypoint.sh:
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB (+ *_FILE),
# POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD, /docker-entrypoint-initdb.d.
write_postgres_entrypoint() {
    cat > "$1" <<'EOF'
#!/bin/bash
# Offline stand-in for the official postgres image's entrypoint.
set -Eeuo pipefail

file_env() {  # VAR [default]: VAR or the contents of VAR_FILE
    local var=$1 fvar=${1}_FILE def=${2:-}
    if [ -n "${!var:-}" ] && [ -n "${!fvar:-}" ]; then
        echo >&2 "error: both $var and $fvar are set (but are exclusive)"; exit 1
    fi
    local val=$def
    if [ -n "${!var:-}" ]; then val=${!var}; elif [ -n "${!fvar:-}" ]; then val=$(< "${!fvar}"); fi
    export "$var"="$val"; unset "$fvar"
}

if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"; chmod 3777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups env HOME=/var/lib/postgresql "$BASH_SOURCE" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
        echo >&2 'error: database is uninitialized and POSTGRES_PASSWORD is not set (or use POSTGRES_HOST_AUTH_METHOD=trust)'
        exit 1
    fi
    mkdir -p "$PGDATA"; chmod 700 "$PGDATA" 2>/dev/null || true
    echo "initdb: user=$POSTGRES_USER db=$POSTGRES_DB data=$PGDATA"
    # shellcheck disable=SC2086
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        -D "$PGDATA" $POSTGRES_INITDB_ARGS
    printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
    printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"

    # Temporary server on the Unix socket only, so TCP clients (and a
    # `pg_isready -h 127.0.0.1` health check) see nothing until init is done.
    PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    export PGUSER=$POSTGRES_USER PGPASSWORD=$POSTGRES_PASSWORD
    psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname postgres)
    if [ "$POSTGRES_DB" != postgres ]; then
        "${psql[@]}" --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    psql+=(--dbname "$POSTGRES_DB")
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) echo "running $f"; if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
            *.sql) echo "running $f"; "${psql[@]}" -f "$f" ;;
            *.sql.gz) echo "running $f"; gunzip -c "$f" | "${psql[@]}" ;;
            *) [ -e "$f" ] && echo "ignoring $f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    unset PGPASSWORD
    echo 'PostgreSQL init process complete; ready for start up.'
fi

exec "$@"
EOF
    chmod 0755 "$1"
}

build_postgres() {
    export PG_ENTRYPOINT=$WORK/docker-entrypoint.sh
    write_postgres_entrypoint "$PG_ENTRYPOINT"
    bootstrap "$WORK/postgres.tar" --include=ca-certificates,locales,postgresql-$PG_MAJOR \
        --essential-hook='mkdir -p "$1/etc/postgresql-common/createcluster.d" && echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.d/no-main-cluster.conf"' \
        --customize-hook='chroot "$1" localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8' \
        --customize-hook='install -m 0755 "$PG_ENTRYPOINT" "$1/usr/local/bin/docker-entrypoint.sh"' \
        --customize-hook='mkdir -p "$1/docker-entrypoint-initdb.d" "$1/var/lib/postgresql/data" "$1/var/run/postgresql" && chroot "$1" chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql && chmod 3777 "$1/var/run/postgresql" && chmod 700 "$1/var/lib/postgresql/data"' \
        --customize-hook='test ! -e "$1/var/lib/postgresql/'$PG_MAJOR'/main"'
    import "$WORK/postgres.tar" "$1" \
        --change "ENV PG_MAJOR=$PG_MAJOR" \
        --change "ENV PATH=/usr/lib/postgresql/$PG_MAJOR/bin:$STD_PATH" \
        --change 'ENV LANG=en_US.utf8' \
        --change 'ENV PGDATA=/var/lib/postgresql/data' \
        --change 'VOLUME /var/lib/postgresql/data' \
        --change 'EXPOSE 5432' \
        --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
        --change 'CMD ["postgres"]'
    # `docker import --change` does not accept STOPSIGNAL (engine 20.10): add
    # it with a metadata-only build step (no network, no pull).
    printf 'FROM %s\nSTOPSIGNAL SIGINT\n' "$1" | docker build -q -t "$1" - >/dev/null 2>&1 \
        || die "could not set STOPSIGNAL on $1"
}

# ------------------------------------------------------------------ redis ---
# Like the official image: runs as user redis in /data, and protected mode is
# off by default (the official build patches the compiled-in default).
write_redis_entrypoint() {
    cat > "$1" <<'EOF'
#!/bin/sh
# Offline stand-in for the official redis image's entrypoint.
set -e
# first arg is `-f` or `--some-option`, or `something.conf`
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "$1" = redis-server ]; then
    shift
    case "${1:-}" in
        *.conf) conf=$1; shift; set -- redis-server "$conf" --protected-mode no "$@" ;;
        *) set -- redis-server --protected-mode no "$@" ;;
    esac
fi
[ "$(umask)" != 0022 ] || umask 0077
exec "$@"
EOF
    chmod 0755 "$1"
}

build_redis() {
    export REDIS_ENTRYPOINT=$WORK/redis-entrypoint.sh
    write_redis_entrypoint "$REDIS_ENTRYPOINT"
    bootstrap "$WORK/redis.tar" --include=redis-server,redis-tools \
        --customize-hook='install -m 0755 "$REDIS_ENTRYPOINT" "$1/usr/local/bin/docker-entrypoint.sh"' \
        --customize-hook='mkdir -p "$1/data" && chroot "$1" chown redis:redis /data'
    import "$WORK/redis.tar" "$1" \
        --change 'WORKDIR /data' \
        --change 'VOLUME /data' \
        --change 'EXPOSE 6379' \
        --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
        --change 'CMD ["redis-server"]'
}

# ----------------------------------------------------------------- vendor ---
# `cargo vendor` only downloads and copies sources; it compiles nothing.
vendor_crates() {
    wants vendor || return 0
    local lock=$ROOT/Cargo.lock dir=$ROOT/vendor stamp
    [ -f "$lock" ] || { log "vendor: no Cargo.lock, skipping"; return 0; }
    stamp=$(sha256sum "$lock" "$ROOT/Cargo.toml" | sha256sum | cut -d' ' -f1)
    if [ "$FORCE" = 0 ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
        log "vendor: up to date with Cargo.lock, skipping"
        return 0
    fi
    local cargo
    cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
    [ -x "$cargo" ] || die "cargo not found (needed for 'cargo vendor')"
    log "vendor: cargo vendor --locked -> vendor/"
    local t0; t0=$(date +%s)
    (cd "$ROOT" && "$cargo" vendor --locked --quiet vendor >/dev/null) \
        || die "cargo vendor failed (Cargo.lock out of date with the manifests? run 'cargo generate-lockfile' or build once)"
    printf '*\n' > "$dir/.gitignore"
    printf '%s\n' "$stamp" > "$dir/.stamp"
    TIMINGS+=("vendor/: $(( $(date +%s) - t0 ))s, $(du -sh "$dir" | cut -f1), $(find "$dir" -mindepth 1 -maxdepth 1 -type d | wc -l) crates")
}

build debian "$TAG_DEBIAN" build_debian
build rust "$TAG_RUST" build_rust
build postgres "$TAG_POSTGRES" build_postgres
build redis "$TAG_REDIS" build_redis
vendor_crates

if [ ${#TIMINGS[@]} -gt 0 ]; then
    log "summary"
    printf '  %s\n' "${TIMINGS[@]}" >&2
fi
docker images --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' \
    | grep -E "^($TAG_DEBIAN|$TAG_RUST|$TAG_POSTGRES|$TAG_REDIS)\b" | sed 's/^/  /' >&2 || true
