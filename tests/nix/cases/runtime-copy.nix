# A copy of a file that exists only on the running system (NixOS's
# `environment.etc."x".source = "/run/secrets/x"; mode = "0400";`): the string source passes
# through as it is, never into the store, and the spec names the store, so the generator
# records a runtime copy instead of reading the file at build time.
let
  defaults = {
    enable = true;
    text = null;
    mode = "symlink";
    uid = 0;
    gid = 0;
    user = "+0";
    group = "+0";
  };
  entry = name: fields: defaults // { target = name; } // fields;
in
(import ../../../nixos/spec.nix).spec {
  etc = {
    "secrets/x" = entry "secrets/x" {
      source = "/run/secrets/x";
      mode = "0400";
      user = "nginx";
    };
    # The same file linked instead of copied: also passed through (a link may dangle).
    "secrets/x-link" = entry "secrets/x-link" { source = "/run/secrets/x"; };
    sudoers = entry "sudoers" {
      source = "/nix/store/0000000000000000000000000000000c-etc-sudoers";
      mode = "0440";
    };
  };
}
