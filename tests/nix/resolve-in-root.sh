#!/bin/sh
# resolve-in-root.sh ROOT PATH...: prints where each PATH resolves (readlink -f) for a process
# whose root is ROOT and that sees the host's /nix/store, the way a system booted from ROOT
# would. Runs in a private mount namespace (unshare -m): the bind mounts of /nix and /usr
# vanish with it, and nothing is mounted on the host. Needs root.
set -eu
root=$1
shift
# The test passes the unshare arguments it chose (tests/harness.rs, unshare_private).
propagation=${ETCFLIP_UNSHARE_PROPAGATION:-private}
exec unshare -m --propagation "$propagation" sh -eu -c '
  root=$1; shift
  mkdir -p "$root/nix" "$root/usr"
  mount --rbind /nix "$root/nix"
  mount --rbind /usr "$root/usr"
  # Merged /usr (Debian 12): the loader and libraries are reached through these links.
  for d in bin lib lib64; do
    [ -e "$root/$d" ] || [ -L "$root/$d" ] || ln -s "usr/$d" "$root/$d"
  done
  exec chroot "$root" /usr/bin/readlink -f -- "$@"
' sh "$root" "$@"
