#!/usr/bin/env bash
# etcflip's whole test suite, exactly as CI runs it (.ci/run calls this). Installs what it
# needs on a fresh Debian machine: Debian packages, Rust components, and the systemd-tmpfiles
# 254/257 reference binaries (unpacked into .cache, never installed).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/tools/deps.sh
ensure_deps tests

step() { printf '\n== %s\n' "$*" >&2; }

step "systemd-tmpfiles reference binaries (252 host, 254, 257)"
tests/tools/fetch-tmpfiles.sh
export ETCFLIP_REQUIRE_ALL_TMPFILES=1   # a missing version fails instead of skipping
export INSTA_UPDATE=no                  # snapshots are compared, never written

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Doc comments link only to what exists and may be linked (intra-doc links are checked).
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --document-private-items --quiet

step "build"
cargo build --workspace --locked

step "tests"
cargo test --workspace --locked
