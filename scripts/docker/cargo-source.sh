#!/bin/sh
# Run inside a Dockerfile's Rust build stage: makes cargo use the vendored
# crates in /opt/cargo-vendor when the build context had ./vendor (offline
# builds; scripts/offline-images.sh creates it), else crates.io.
#   CARGO_VENDOR=auto (default) | yes (require vendor/) | no (ignore it)
set -eu
rm -f /opt/cargo-vendor/Cargo.lock
mkdir -p "${CARGO_HOME:-$HOME/.cargo}"
crates=$(find /opt/cargo-vendor -mindepth 2 -maxdepth 2 -name Cargo.toml 2>/dev/null | wc -l)
case "${CARGO_VENDOR:-auto}" in
  auto) use=$([ "$crates" -gt 0 ] && echo yes || echo no) ;;
  yes|no) use=$CARGO_VENDOR ;;
  *) echo "CARGO_VENDOR must be auto, yes or no" >&2; exit 1 ;;
esac
if [ "$use" = yes ]; then
  [ "$crates" -gt 0 ] || { echo "CARGO_VENDOR=yes but the build context has no vendor/ (run scripts/offline-images.sh)" >&2; exit 1; }
  printf '%s\n' '[source.crates-io]' 'replace-with = "vendored"' '[source.vendored]' \
    'directory = "/opt/cargo-vendor"' '[net]' 'offline = true' >> "${CARGO_HOME:-$HOME/.cargo}/config.toml"
  echo "crates: $crates vendored crates from the build context (offline)"
else
  rm -rf /opt/cargo-vendor
  echo "crates: fetched from crates.io"
fi
