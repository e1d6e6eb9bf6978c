# A read-only /etc image of one generation: `etcflip image` in a Nix build (unprivileged in the
# sandbox: the owners go to mksquashfs through the pseudo file), giving `$out/etc.squashfs`.
# The same generation gives the same bytes. Builtins-compatible arguments, so that
# tests/nix/image.nix builds it with stand-ins and no nixpkgs.
{
  runCommandLocal,
  # A package with bin/etcflip.
  etcflip,
  # The generation (nixos/generation.nix).
  generation,
  # The systemd-tmpfiles binary, the engine of the link farm.
  tmpfiles,
  # A package with bin/mksquashfs.
  squashfsTools,
}:
runCommandLocal "etcflip-etc-image" { } ''
  export PATH=${squashfsTools}/bin:$PATH ETCFLIP_TMPFILES=${tmpfiles}
  ${etcflip}/bin/etcflip image ${generation} --root "$TMPDIR/tree" --squashfs "$TMPDIR/etc.squashfs"
  mkdir "$out"
  mv "$TMPDIR/etc.squashfs" "$out/etc.squashfs"
''
