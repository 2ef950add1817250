# CodeCall: api and worker images.
#
#   docker build --target api    -t codecall-api .
#   docker build --target worker -t codecall-worker .
#
# Works with the legacy builder (no RUN --mount) and with BuildKit. Online the
# base images come from Docker Hub; offline, scripts/offline-images.sh builds
# local images under the same tags and vendors the crates into ./vendor, which
# the builder uses instead of crates.io when present (CARGO_VENDOR=auto).

# Static checks (scripts/k8s-validate.sh runs checkov):
#checkov:skip=CKV_DOCKER_7:the base images are ARGs whose defaults are pinned version tags (rust:1.95-slim-bookworm, debian:bookworm-slim)
#checkov:skip=CKV_DOCKER_2:health checks belong to the orchestrator (compose and stack healthcheck, Kubernetes probes); the api and worker targets need different ones
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------- sources ---
# The workspace without vendor/, plus a skeleton of it: every manifest and
# every target root (src/lib.rs, src/main.rs, src/bin/*, build.rs, `path =`
# entries) replaced by a stub. The skeleton only changes when a manifest does,
# so the dependency layer below stays cached across source edits, and new
# workspace members need no change here.
FROM ${RUST_IMAGE} AS sources
WORKDIR /src
COPY . .
RUN set -eu; \
    rm -rf vendor; mkdir -p /skeleton; cp Cargo.toml Cargo.lock /skeleton/; \
    find . -mindepth 2 -name Cargo.toml -not -path './target/*' | sort | while read -r manifest; do \
      dir=$(dirname "$manifest"); mkdir -p "/skeleton/$dir"; cp "$manifest" "/skeleton/$dir/"; \
      ( cd "$dir"; \
        { find src -path 'src/lib.rs' -o -path 'src/main.rs' -o -path 'src/bin/*.rs' 2>/dev/null || true; \
          [ ! -f build.rs ] || echo build.rs; \
          sed -n 's/^[[:space:]]*path[[:space:]]*=[[:space:]]*"\([^"]*\.rs\)".*/\1/p' Cargo.toml; \
        } | sort -u | while read -r root; do \
          mkdir -p "$(dirname "/skeleton/$dir/$root")"; \
          case "$root" in */lib.rs) : ;; *) echo 'fn main() {}' ;; esac > "/skeleton/$dir/$root"; \
        done ); \
    done; \
    find /skeleton -type f | sort

# ---------------------------------------------------------------- builder ---
FROM ${RUST_IMAGE} AS builder
# auto: use ./vendor when the build context has it; yes: require it; no: ignore it
ARG CARGO_VENDOR=auto
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0
WORKDIR /src

# Optional vendored crates. The glob matches nothing when ./vendor is absent
# (Cargo.lock keeps the COPY valid). cargo-source.sh points cargo at them, or
# at crates.io when there are none (CARGO_VENDOR=auto|yes|no).
COPY Cargo.lock vendo[r] /opt/cargo-vendor/
COPY scripts/docker/cargo-source.sh /usr/local/bin/cargo-source.sh
RUN sh /usr/local/bin/cargo-source.sh

# The api's allocator (jemalloc) is built from C sources with make, which the
# slim Rust image does not have (the offline one built here does).
RUN command -v make >/dev/null || { apt-get update -qq \
      && apt-get install -y -qq --no-install-recommends make >/dev/null \
      && rm -rf /var/lib/apt/lists/*; }

# Dependencies only (the workspace's own crates are stubs here).
COPY --from=sources /skeleton/ ./
RUN cargo build --release --locked --bin codecall-api --bin codecall-worker

# Real sources. `touch` makes them newer than the stub build's fingerprints
# (COPY keeps the context's older mtimes, which cargo would treat as fresh).
COPY --from=sources /src/ ./
RUN set -eu; \
    find . -path ./target -prune -o -type f -exec touch {} +; \
    cargo build --release --locked --bin codecall-api --bin codecall-worker; \
    mkdir -p /out; \
    cp target/release/codecall-api target/release/codecall-worker /out/

# ---------------------------------------------------------------- runtime ---
# Neither binary speaks TLS (Postgres, Redis and the Docker socket are plain),
# so the runtime needs no extra packages and no network to build.
FROM ${RUNTIME_IMAGE} AS runtime
RUN set -eu; \
    groupadd --gid 10001 codecall; \
    useradd --uid 10001 --gid codecall --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin codecall
WORKDIR /app

# The worker talks to the Docker engine through /var/run/docker.sock; run it
# with the socket's group (compose: group_add DOCKER_GID), not as root.
FROM runtime AS worker
COPY --from=builder /out/codecall-worker /usr/local/bin/codecall-worker
USER codecall:codecall
STOPSIGNAL SIGTERM
CMD ["codecall-worker"]

FROM runtime AS api
COPY --from=builder /out/codecall-api /usr/local/bin/codecall-api
USER codecall:codecall
ENV HOST=0.0.0.0 \
    PORT=5000
EXPOSE 5000
CMD ["codecall-api"]
