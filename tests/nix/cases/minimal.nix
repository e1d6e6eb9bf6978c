# The smallest option set: one text entry, target from the attribute name.
(import ../../../nixos/spec.nix).spec {
  etc.motd.text = "Welcome\n";
}
