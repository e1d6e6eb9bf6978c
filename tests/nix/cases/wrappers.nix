# `security.wrappers` as NixOS declares it (every option with its default): the fields pass
# through, a null `program` is the attribute name, a disabled wrapper is dropped.
let
  wrapper =
    over:
    {
      enable = true;
      program = null;
      owner = "root";
      group = "root";
      setuid = false;
      setgid = false;
      permissions = "u+rx,g+x,o+x";
      capabilities = "";
    }
    // over;
in
(import ../../../nixos/spec.nix).spec {
  wrappers = {
    mount = wrapper {
      source = "/nix/store/00000000000000000000000000000000-util-linux-bin/bin/mount";
      setuid = true;
    };
    ping = wrapper {
      source = "/nix/store/00000000000000000000000000000000-iputils/bin/ping";
      capabilities = "cap_net_raw+p";
    };
    sg = wrapper {
      source = "/nix/store/00000000000000000000000000000000-shadow/bin/sg";
      program = "newgrp";
      group = "wheel";
      setgid = true;
      permissions = "0511";
    };
    off = wrapper {
      source = "/nix/store/00000000000000000000000000000000-nothing/bin/x";
      enable = false;
    };
  };
}
