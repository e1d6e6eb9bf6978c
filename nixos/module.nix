# The NixOS module: /etc made by etcflip instead of setup-etc.pl.
#
#   imports = [ etcflip.nixosModules.default ];   # or ./nixos/module.nix without flakes
#   system.etcflip.enable = true;
#
# When enabled, `config.environment.etc` is turned into an etcflip generation at build time
# (`system.build.etcflip`), and the `etc` activation snippet runs `etcflip switch` on it,
# at boot as on every switch; `dry-activate` runs it with `--dry-run`. See README, "NixOS".
{
  config,
  lib,
  options,
  pkgs,
  ...
}:
let
  cfg = config.system.etcflip;
  specLib = import ./spec.nix;

  # etcflip-gen runs at build time: when the build machine cannot run the target's binaries
  # (cross-compiling), it comes from the build platform's packages.
  generator =
    if pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform then
      cfg.package
    else
      pkgs.buildPackages.callPackage ./package.nix { };

  generation = pkgs.callPackage ./generation.nix {
    etcflip = generator;
    spec = specLib.spec cfg.spec;
  };

  activation = import ./activation.nix {
    etcflip = cfg.package;
    inherit generation;
    tmpfiles = "${config.systemd.package}/bin/systemd-tmpfiles";
    inherit (cfg) onConflict;
  };
in
{
  options.system.etcflip = {
    enable = lib.mkEnableOption ''
      etcflip in place of setup-etc.pl: `environment.etc` becomes an etcflip generation at
      build time, and activation (at boot and on every switch) switches /etc to it
      atomically, never touching files it did not make'';

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage \"\${etcflip}/nixos/package.nix\" { }";
      description = ''
        The etcflip package (both etcflip and etcflip-gen). When cross-compiling, the
        generation is built with etcflip-gen from `pkgs.buildPackages` (this tree's package for
        the build machine), since this package's binaries cannot run there.
      '';
    };

    onConflict = lib.mkOption {
      type = lib.types.enum [
        "abort"
        "backup"
        "overwrite"
      ];
      default = "backup";
      description = ''
        What a switch does with a path it must replace that it did not make (a file you
        created, a copy you edited). `backup` moves it aside to `<path>.etcflip-backup…` and
        goes on, so that activation never stops on it and nothing is lost; `abort` refuses the
        whole switch (activation then fails and /etc stays as it was); `overwrite` replaces
        it, like setup-etc.pl always did.
      '';
    };

    spec = lib.mkOption {
      type = lib.types.attrsOf lib.types.raw;
      default = { };
      internal = true;
      description = ''
        The parts of the etcflip spec, one attribute each, converted by nixos/spec.nix:
        `etc` (set to `environment.etc` by this module). Users and wrappers join as further
        parts of the same spec, hence of the same generation and activation step.
      '';
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        assertions = [
          {
            assertion = !(config.system.etc.overlay.enable or false);
            message = "system.etcflip.enable and system.etc.overlay.enable both manage /etc: enable one of them.";
          }
          {
            assertion = !(config.system.nixos-init.enable or false);
            message = "system.nixos-init.enable needs the /etc overlay and skips activation, so it cannot be used with system.etcflip.enable.";
          }
        ];

        system.etcflip.spec.etc = config.environment.etc;

        system.build.etcflip = generation;

        # The snippet keeps its name `etc` and its place (after users, groups, specialfs): other
        # modules order their snippets after `etc`.
        system.build.etcActivationCommands = lib.mkForce activation;
        system.activationScripts.etc.supportsDryActivation = true;

        environment.systemPackages = [ cfg.package ];
      }

      # The generation, beside the system it belongs to: /run/current-system/etcflip. Current
      # nixpkgs calls the builder's extra commands `system.systemBuilderCommands` and keeps
      # `system.extraSystemBuilderCmds` only as a renamed alias that warns on every evaluation;
      # older nixpkgs has only the old name. `options` holds one attribute per declared option,
      # whatever the definitions, so asking which name exists causes no infinite recursion.
      (
        let
          link = ''
            ln -s ${generation} $out/etcflip
          '';
        in
        if options.system ? systemBuilderCommands then
          { system.systemBuilderCommands = link; }
        else
          { system.extraSystemBuilderCmds = link; }
      )
    ]
  );
}
