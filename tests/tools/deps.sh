#!/usr/bin/env bash
# Makes sure what etcflip's demo and tests need is on this Debian machine, installing missing
# Debian packages (as root, or through sudo) and Rust components. Sourced or run.
set -euo pipefail

_etcflip_apt_install() {
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=(sudo -n); else
      echo "etcflip: missing Debian packages: $*; install them as root (apt-get install $*)" >&2
      return 1
    fi
  fi
  echo "etcflip: installing Debian packages: $*" >&2
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null; then
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
  fi
}

# ensure_deps [tests]: the demo needs cargo and systemd-tmpfiles; the tests also need python3, the
# toolchain's rustfmt/clippy, what fetch-tmpfiles.sh uses (apt-get download, dpkg-deb), strace, perl,
# setcap and a C compiler (tests/wrapper.rs), squashfs-tools, erofs-utils and fakeroot
# (tests/image.rs),
# and Debian's Nix (nix-bin: it makes no nix.conf and no nixbld group; tests/nix.rs brings its
# own configuration, tests/nix/conf/nix.conf, and Nix makes /nix on first use as root).
ensure_deps() {
  local missing=()
  command -v systemd-tmpfiles >/dev/null 2>&1 || missing+=(systemd)
  if [ "${1:-}" = tests ]; then
    command -v python3 >/dev/null 2>&1 || missing+=(python3)     # tests/nix.rs
    command -v dpkg-deb >/dev/null 2>&1 || missing+=(dpkg)
    command -v gpgv >/dev/null 2>&1 || missing+=(gpgv)
    command -v strace >/dev/null 2>&1 || missing+=(strace)
    command -v perl >/dev/null 2>&1 || missing+=(perl-base)     # tests/locks.rs
    command -v nix-build >/dev/null 2>&1 || missing+=(nix-bin)   # tests/nix.rs (Nix 2.8)
    command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
    command -v setcap >/dev/null 2>&1 || missing+=(libcap2-bin)  # tests/wrapper.rs
    command -v cc >/dev/null 2>&1 || missing+=(gcc)              # tests/wrapper.rs' target
    command -v mksquashfs >/dev/null 2>&1 || missing+=(squashfs-tools)  # tests/image.rs
    command -v mkfs.erofs >/dev/null 2>&1 || missing+=(erofs-utils)     # tests/image.rs
    command -v fakeroot >/dev/null 2>&1 || missing+=(fakeroot)          # tests/image.rs (erofs)
    [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
  fi
  if [ ${#missing[@]} -gt 0 ]; then _etcflip_apt_install "${missing[@]}"; fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "etcflip: cargo is missing; install Rust (https://rustup.rs) and rerun" >&2
    return 1
  fi
  if [ "${1:-}" = tests ] && command -v rustup >/dev/null 2>&1; then
    for c in rustfmt clippy; do
      rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >&2
    done
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then ensure_deps "$@"; fi
