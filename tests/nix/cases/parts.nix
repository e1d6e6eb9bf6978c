# The spec's other parts: null parts are left out, `overlay` and parts without a converter
# pass through as they are, `etc` may be empty.
(import ../../../nixos/spec.nix).spec {
  etc = { };
  users = null;
  wrappers = null;
  overlay = "/run/etcflip/static";
}
