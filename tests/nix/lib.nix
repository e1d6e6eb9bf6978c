# Stand-ins for the few nixpkgs `lib` and `utils` functions the NixOS side calls, so that
# tests/nix.rs evaluates nixos/module.nix's definitions and nixos/spec.nix without nixpkgs:
# `mkIf`/`mkMerge` keep their arguments visible, `mkForce` is the value itself.
let
  lib = {
    mkIf = condition: content: { inherit condition content; };
    mkMerge = contents: { inherit contents; };
    mkForce = x: x;
    inherit (builtins) filter;
    concatMapStringsSep = sep: f: l: builtins.concatStringsSep sep (map f l);

    # nixpkgs' `utils.toShellPath`: a shell package becomes its path in the system profile, a
    # path stays as it is.
    toShellPath =
      shell:
      if builtins.isAttrs shell && shell ? shellPath then
        "/run/current-system/sw${shell.shellPath}"
      else
        shell;

    # nixpkgs' `runCommandLocal` from builtins alone: a derivation whose builder is /bin/sh
    # running the script. `salt` changes the derivation, not what it builds.
    runCommandLocal =
      salt: name: env: script:
      derivation (
        {
          inherit name salt;
          system = builtins.currentSystem;
          builder = "/bin/sh";
          args = [
            "-c"
            script
          ];
        }
        // env
      );

    # nixos/module.nix's definitions for a `config` holding only what they read, with these
    # stand-ins; `callPackage` gives the generation a fixed store path.
    module =
      config:
      import ../../nixos/module.nix {
        inherit lib config;
        options.system.systemBuilderCommands = { };
        pkgs.callPackage = _: _: "/nix/store/00000000000000000000000000000000-etcflip-generation";
        pkgs.util-linux = "/util-linux";
        utils.toShellPath = s: s;
      };
  };
in
lib
