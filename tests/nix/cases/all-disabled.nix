# Disabled entries are dropped before anything else, even ones that would be invalid.
(import ../../../nixos/spec.nix).spec {
  etc = {
    a = {
      enable = false;
      source = "/nix/store/0000000000000000000000000000000a-a";
    };
    b = {
      enable = false;
    };
    c.text = "kept\n";
  };
}
