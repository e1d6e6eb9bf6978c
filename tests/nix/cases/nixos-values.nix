# Entries the way `config.environment.etc` holds them on NixOS: every field set, defaults
# included; text entries also carry the store file NixOS made from the text, which is what
# NixOS installs (so it is what the spec gets).
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
  # A derivation as the module system hands it over: an attribute set with an outPath.
  fonts = {
    type = "derivation";
    outPath = "/nix/store/0000000000000000000000000000000a-fonts";
  };
in
(import ../../../nixos/spec.nix).spec {
  etc = {
    hosts = entry "hosts" {
      text = "127.0.0.1 localhost\n";
      source = "/nix/store/0000000000000000000000000000000b-etc-hosts";
    };
    sudoers = entry "sudoers" {
      text = "root ALL=(ALL) ALL\n";
      source = "/nix/store/0000000000000000000000000000000c-etc-sudoers";
      mode = "0440";
    };
    "nginx/nginx.conf" = entry "nginx/nginx.conf" {
      source = "/nix/store/0000000000000000000000000000000d-nginx.conf";
      mode = "0640";
      user = "nginx";
      group = "nginx";
    };
    localtime = entry "localtime" {
      source = "/etc/zoneinfo/Europe/Berlin";
      mode = "direct-symlink";
    };
    "fonts/conf.d" = entry "fonts/conf.d" { source = fonts; };
    "xdg/autostart" = entry "xdg/autostart" { source = "${fonts}/*.desktop"; };
    # Renamed: the attribute name is not the target.
    ssh-config = entry "ssh/ssh_config" {
      source = "/nix/store/0000000000000000000000000000000e-ssh_config";
    };
    disabled = entry "disabled" {
      enable = false;
      source = "/nix/store/0000000000000000000000000000000f-never-built";
    };
  };
}
