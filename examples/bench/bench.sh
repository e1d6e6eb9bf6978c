#!/usr/bin/env bash
# etcflip benchmark: prints a Markdown table on stdout (progress on stderr).
#
#   bash examples/bench/bench.sh [--sizes 1000,10000,100000] [--budget SECONDS]
#
# Builds the workspace (release) and the floor program, then runs examples/bench/bench.py in
# a scratch directory on tmpfs (/dev/shm), removed at the end. Never touches the real /etc:
# every switch uses --root inside the scratch directory. See examples/bench/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

for tool in python3 gcc systemd-tmpfiles mksquashfs; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is required (apt-get install time)" >&2; exit 1; }
command -v strace >/dev/null || echo "bench: strace not found: exec counts will be skipped" >&2

tmpfs="${BENCH_TMPFS:-/dev/shm}"
if [ "$(stat -f -c %T "$tmpfs")" != tmpfs ]; then
    echo "bench: $tmpfs is not a tmpfs (set BENCH_TMPFS)" >&2
    exit 1
fi
scratch="$(mktemp -d "$tmpfs/etcflip-bench.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

# Static-pie, as nixos/package.nix builds the package: no dynamic loader at every activation
# (≈ 0.25 ms of a 1 ms no-op switch here). `--target` keeps proc macros built for the host.
host="$(rustc -vV | sed -n 's/^host: //p')"
static="-C target-feature=+crt-static"
if [ -n "${ETCFLIP_STATIC_LIBC:-}" ]; then # the Nix dev shell says where libc.a is
    static="$static -L native=$ETCFLIP_STATIC_LIBC"
elif ! gcc -print-file-name=libc.a | grep -q /; then
    echo "bench: glibc's libc.a is required for the static build (apt-get install libc6-dev)" >&2
    exit 1
fi
echo "bench: cargo build --release --workspace --target $host (static-pie)" >&2
(cd "$repo" && RUSTFLAGS="$static" \
    cargo build --release --workspace --target "$host" --quiet) >&2
target_dir="${CARGO_TARGET_DIR:-$repo/target}/$host"

echo "bench: gcc -O2 floor.c" >&2
gcc -O2 -Wall -Wextra -o "$scratch/floor" "$here/floor.c"

python3 "$here/bench.py" \
    --bin-dir "$target_dir/release" \
    --floor "$scratch/floor" \
    --scratch "$scratch" \
    --here "$here" \
    "$@"

echo "bench: the users phase (examples/bench/users.py)" >&2
python3 "$here/users.py" \
    --bin-dir "$target_dir/release" \
    --floor "$scratch/floor" \
    --scratch "$scratch"

echo "bench: the wrappers (examples/bench/wrappers.py)" >&2
python3 "$here/wrappers.py" \
    --bin-dir "$target_dir/release" \
    --scratch "$scratch"

echo "bench: boot and images (examples/bench/boot.py)" >&2
python3 "$here/boot.py" \
    --bin-dir "$target_dir/release" \
    --floor "$scratch/floor" \
    --scratch "$scratch"
