# etcflip, etcflip-gen and etcflip-wrapper, built from this source tree.
#
# Needs a nixpkgs whose Rust is at least the workspace's `rust-version` (1.88, which sha2 0.11
# needs: nixpkgs 25.11 or later) and `lib.fileset` (23.11 or later).
{
  lib,
  stdenv,
  rustPlatform,
  glibc,
}:
let
  workspace = (lib.importTOML ../Cargo.toml).workspace.package;
  # The crates that make the package: the three binaries (etcflip-gen finds etcflip-wrapper
  # beside it, in bin/) and the format crate they share (the workspace's fifth member is the
  # e2e tests).
  members = [
    "-p"
    "etcflip"
    "-p"
    "etcflip-gen"
    "-p"
    "etcflip-wrapper"
    "-p"
    "etcflip-format"
  ];
in
rustPlatform.buildRustPackage {
  pname = "etcflip";
  inherit (workspace) version;

  # Only what cargo reads: the workspace manifest, the lock file and the members (applier/
  # holds applier/format; the end-to-end `tests` crate is a member, so cargo needs it to load
  # the workspace).
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../clippy.toml
      ../applier
      ../generator
      ../tests
    ];
  };
  cargoLock.lockFile = ../Cargo.lock;

  cargoBuildFlags = members;

  # Static-pie on glibc: etcflip runs at every boot and every switch, and without the dynamic
  # loader it starts ≈ 0.25 ms sooner (a quarter of a no-op switch; examples/bench). It uses
  # no NSS, so static glibc loses nothing. The build passes `--target`, so RUSTFLAGS reach
  # only the target crates, not build scripts or proc macros; libc.a is named there rather
  # than added to buildInputs, whose -L would come first for every dynamic link too and make
  # those binaries crash (nixpkgs issue 59267).
  env = lib.optionalAttrs stdenv.hostPlatform.isGnu {
    RUSTFLAGS = "-C target-feature=+crt-static -L native=${glibc.static}/lib";
  };
  # The unit and generator tests run here. The end-to-end suite (tests/) needs root, strace and
  # reference systemd-tmpfiles binaries fetched from Debian: it runs in tests/run.sh.
  cargoTestFlags = members;

  meta = {
    description = "Atomic, declarative /etc: a generator of generations and an applier that flips them";
    license = lib.licenses.${lib.toLower workspace.license};
    mainProgram = "etcflip";
    platforms = lib.platforms.linux;
  };
}
