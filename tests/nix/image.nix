# A read-only /etc image built by Nix from builtins alone: the NixOS module's own image step
# (nixos/image.nix) over a generation made for an image (tests/nix/generation.nix with
# forImage), with builtins stand-ins for the nixpkgs builder and this machine's
# systemd-tmpfiles and mksquashfs. tests/nix.rs builds it and boots it through the module's
# initrd script (nixos/initrd.nix).
{
  # A directory with the freshly built binaries in bin/ (copied into the store).
  etcflipPackage,
  # This machine's systemd-tmpfiles and the directory holding bin/mksquashfs.
  tmpfiles,
  squashfsTools,
}:
let
  generation = import ./generation.nix {
    inherit etcflipPackage;
    withUsers = true;
    forImage = true;
  };
  runCommandLocal = (import ./lib.nix).runCommandLocal "";
in
{
  inherit generation;
  image = import ../../nixos/image.nix {
    inherit runCommandLocal generation tmpfiles squashfsTools;
    etcflip = builtins.path {
      path = etcflipPackage;
      name = "etcflip";
    };
  };
}
