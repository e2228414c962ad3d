#!/usr/bin/env bash
# Installs tansu, the Kafka-protocol broker the integration tests start on loopback.
# It is built from the Rust package registry once and cached outside the clone, so a
# later CI run on the same machine finds it and skips the ~15-minute build.
#   `--locked`: without it the dependency resolution picks versions that do not compile.
#   `dynostore`: without it tansu refuses the `memory://` storage the tests use.
set -euo pipefail

TOOLS="${WHOLECHILD_TOOLS:-/var/cache/wholechild/tools}"
VERSION="0.6.0"
BIN="$TOOLS/bin/tansu"

if [[ -x "$BIN" ]] && "$BIN" --version 2>/dev/null | grep -q "$VERSION"; then
    echo "tansu $VERSION already installed at $BIN"
    exit 0
fi

mkdir -p "$TOOLS"
echo "building tansu $VERSION into $TOOLS (once per machine; about 15 minutes on 2 cores)"
CARGO_TARGET_DIR="$TOOLS/build" cargo install tansu --version "$VERSION" --locked \
    --features dynostore --root "$TOOLS"
"$BIN" --version
