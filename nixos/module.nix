# The NixOS module: /etc made by etcflip instead of setup-etc.pl.
#
#   imports = [ etcflip.nixosModules.default ];   # or ./nixos/module.nix without flakes
#   system.etcflip.enable = true;
#
# When enabled, `config.environment.etc`, `config.users` and `config.security.wrappers` are
# turned into one etcflip generation at build time (`system.build.etcflip`), and one activation
# snippet runs `etcflip switch` on it, at boot as on every switch; `dry-activate` runs it with
# `--dry-run`. That snippet is `users` (in place of update-users-groups.pl), or `etc` when users
# stay with userborn or systemd-sysusers. The wrappers of the same generation are made by
# `etcflip wrappers` in `suid-sgid-wrappers.service`, which keeps its place, once
# `/run/wrappers` is mounted. With the systemd initrd, an initrd unit switches /etc before
# switch-root (`system.etcflip.initrd`), which is what boots with `system.nixos-init.enable`;
# `system.etcflip.image.enable` makes /etc a read-only image of the generation
# (`system.build.etcflipImage`). See README, "NixOS".
{
  config,
  lib,
  options,
  pkgs,
  utils,
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
    inherit (cfg) onConflict users;
    wrappers = false;
    image = cfg.image.enable;
  };

  # The read-only /etc image of the generation, built by `etcflip image` at build time.
  image = pkgs.callPackage ./image.nix {
    etcflip = generator;
    inherit generation;
    tmpfiles = "${pkgs.buildPackages.systemd}/bin/systemd-tmpfiles";
    squashfsTools = pkgs.buildPackages.squashfsTools;
  };

  # The initrd's own systemd-tmpfiles, and util-linux for the image's mounts.
  initrdTmpfiles = "${config.boot.initrd.systemd.package}/bin/systemd-tmpfiles";
  initrdScript = import ./initrd.nix {
    etcflip = cfg.package;
    tmpfiles = initrdTmpfiles;
    utilLinux = pkgs.util-linux;
    image = cfg.image.enable;
    passwordFilesLocation = if cfg.users then cfg.image.passwordFilesLocation else null;
  };

  # The two other managers of the user database NixOS offers: with either, users stay theirs.
  otherUserManagers = lib.filter (o: o.enabled) [
    {
      name = "services.userborn.enable";
      enabled = config.services.userborn.enable or false;
    }
    {
      name = "systemd.sysusers.enable";
      enabled = config.systemd.sysusers.enable or false;
    }
  ];
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

    users = lib.mkOption {
      type = lib.types.bool;
      default = otherUserManagers == [ ];
      defaultText = lib.literalExpression "!config.services.userborn.enable && !config.systemd.sysusers.enable";
      description = ''
        Whether etcflip also writes the user database (`users.users`, `users.groups`:
        passwd, group, shadow, subuid, subgid and the id ledgers in /var/lib/nixos) in place
        of update-users-groups.pl, in the same switch as /etc: the `users` activation snippet
        then runs that one switch, and the `etc` snippet is empty. Off when userborn or
        systemd-sysusers manages the users (they run as services, after activation); etcflip
        then switches /etc alone, in the `etc` snippet, and never touches the user files.
      '';
    };

    initrd = lib.mkOption {
      type = lib.types.bool;
      default = config.boot.initrd.systemd.enable or false;
      defaultText = lib.literalExpression "config.boot.initrd.systemd.enable";
      description = ''
        Whether the systemd initrd switches /etc, before switch-root: its unit
        `etcflip-boot.service` runs `etcflip boot <generation> --root /sysroot --no-wrappers`
        after initrd-find-nixos-closure.service and before initrd-nixos-activation.service,
        so that /etc is complete before any of the system runs (activation's own switch then
        has nothing left to do). Required by `system.nixos-init.enable`, which runs no
        activation script at boot, and by `system.etcflip.image.enable`.
      '';
    };

    image = {
      enable = lib.mkEnableOption ''
        a read-only /etc: the generation's image (`system.build.etcflipImage`, made by
        `etcflip image` at build time) is mounted read-only on /etc in the initrd, its overlay
        link lives in /run, and a new generation takes effect at the next boot. With
        `system.etcflip.users`, the user database stays writable in
        `system.etcflip.image.passwordFilesLocation`'';

      passwordFilesLocation = lib.mkOption {
        type = lib.types.str;
        default = "/var/lib/nixos";
        description = ''
          Where passwd, group, shadow, subuid and subgid live on a read-only /etc (as
          userborn's option of that name): the image's /etc links to them, and
          `etcflip boot` writes them at every boot, keeping what was added at run time with
          `users.mutableUsers`.
        '';
      };
    };

    spec = lib.mkOption {
      type = lib.types.attrsOf lib.types.raw;
      default = { };
      internal = true;
      description = ''
        The parts of the etcflip spec, one attribute each, converted by nixos/spec.nix:
        `etc` (set to `environment.etc` by this module) and `users` (set to `config.users`
        when `system.etcflip.users` is on). Wrappers join as a further part of the same
        spec, hence of the same generation and activation step.
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
            assertion = !(config.system.nixos-init.enable or false) || cfg.initrd;
            message = "system.nixos-init.enable runs no activation script at boot: etcflip then switches /etc in the systemd initrd, so leave system.etcflip.initrd on (it needs boot.initrd.systemd.enable).";
          }
          {
            assertion = !cfg.users || otherUserManagers == [ ];
            message = "system.etcflip.users writes the user database, and so does ${
              lib.concatMapStringsSep " and " (o: o.name) otherUserManagers
            }: set system.etcflip.users = false to keep the users with it (etcflip then switches /etc alone), or disable it.";
          }
          {
            assertion = config.security.wrapperDir or "/run/wrappers/bin" == "/run/wrappers/bin";
            message = "system.etcflip.enable makes the wrappers in /run/wrappers/bin: leave security.wrapperDir at its default.";
          }
          {
            assertion = !cfg.initrd || (config.boot.initrd.systemd.enable or false);
            message = "system.etcflip.initrd switches /etc in the systemd initrd: it needs boot.initrd.systemd.enable.";
          }
          {
            assertion = !cfg.image.enable || cfg.initrd;
            message = "system.etcflip.image.enable mounts the image on /etc in the systemd initrd: it needs system.etcflip.initrd (and boot.initrd.systemd.enable).";
          }
        ];

        system.etcflip.spec.etc = config.environment.etc;

        system.build.etcflip = generation;

        # The snippet keeps its name `etc` and its place (after users, groups, specialfs): other
        # modules order their snippets after `etc`. With the users, /etc is switched earlier,
        # in the same switch as the users (below), so the `etc` snippet has nothing left to do.
        system.build.etcActivationCommands = lib.mkForce (
          if cfg.users then "# etcflip: /etc was switched with the users, in the `users` snippet\n" else activation
        );
        system.activationScripts.etc.supportsDryActivation = true;

        environment.systemPackages = [ cfg.package ];
      }

      # The users in the same generation and switch as /etc. The switch runs as the `users`
      # snippet, so that what other modules order after `users` finds the users (and what they
      # order before it, such as secrets for hashedPasswordFile, runs before); `etc` follows
      # `users`, so what is ordered after `etc` finds /etc. Only the text is replaced: the
      # `deps` other modules give `users` stay. `specialfs` is added because `etc` had it.
      (lib.mkIf cfg.users {
        system.etcflip.spec.users = {
          inherit (config.users) mutableUsers users groups;
          inherit (utils) toShellPath;
        }
        // (
          if cfg.image.enable then { inherit (cfg.image) passwordFilesLocation; } else { }
        );
        system.activationScripts.users = {
          deps = [ "specialfs" ];
          text = lib.mkForce activation;
          supportsDryActivation = true;
        };
      })

      # The wrappers from the same generation. NixOS's unit keeps its name, its ordering (before
      # sysinit.target, after the /run/wrappers mount and the store) and its restart on every
      # switch whose generation changed (its script names the generation); only what it runs
      # is etcflip's. Activation's switch leaves /run/wrappers to it (`--no-wrappers`): at boot
      # it runs before /run/wrappers is mounted.
      (lib.mkIf (config.security.enableWrappers or true) {
        system.etcflip.spec.wrappers = config.security.wrappers;
        # With a read-only /etc, the booted system's: a switch's new generation, wrappers
        # included, takes effect at the next boot (and the script, unchanged, restarts nothing).
        systemd.services.suid-sgid-wrappers.script = lib.mkForce ''
          ${cfg.package}/bin/etcflip wrappers ${
            if cfg.image.enable then "/run/booted-system/etcflip" else generation
          }
        '';
      })

      # /etc switched in the systemd initrd, before switch-root: the system being booted is
      # the one initrd-find-nixos-closure.service found, its generation the `etcflip` link
      # beside it (below). Activation, in the initrd or after it, then finds /etc switched.
      (lib.mkIf cfg.initrd {
        boot.initrd.systemd.storePaths = [
          "${cfg.package}/bin/etcflip"
          initrdTmpfiles
        ]
        ++ (
          if cfg.image.enable then
            map (b: "${pkgs.util-linux}/bin/${b}") [
              "mount"
              "mountpoint"
              "unshare"
            ]
          else
            [ ]
        );
        boot.initrd.systemd.services.etcflip-boot = {
          description = "Switch /etc to the system's etcflip generation";
          # Wanted, not required: a boot that fails here (a password file or a runtime copy's
          # source that appears only later, in /run/secrets) is logged and left to
          # activation, which runs after what provides them, not sent to the emergency shell.
          wantedBy = [ "initrd.target" ];
          requires = [ "initrd-find-nixos-closure.service" ];
          after = [
            "initrd-find-nixos-closure.service"
            "initrd-fs.target"
          ];
          before = [
            "initrd-nixos-activation.service"
            "initrd.target"
            "shutdown.target"
          ];
          conflicts = [ "shutdown.target" ];
          unitConfig = {
            DefaultDependencies = false;
            RequiresMountsFor = [
              "/sysroot/nix/store"
              "/sysroot/var/lib/nixos"
            ]
            ++ (
              if cfg.image.enable && cfg.users then
                [ "/sysroot${cfg.image.passwordFilesLocation}" ]
              else
                [ ]
            );
          };
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
          };
          script = initrdScript;
        };
      })

      # A read-only /etc: the image holds the link farm, the overlay link lives in /run, the
      # users (with etcflip) in the writable place; the image carries NixOS's tag file, which
      # activation cannot write there.
      (lib.mkIf cfg.image.enable {
        # What the initrd needs to mount the image.
        boot.initrd.availableKernelModules = [
          "loop"
          "squashfs"
        ];
        system.etcflip.spec.overlay = "/run/etcflip/static";
        system.build.etcflipImage = image;
        environment.etc.NIXOS.text = "";
      })

      # The generation, beside the system it belongs to: /run/current-system/etcflip. Current
      # nixpkgs calls the builder's extra commands `system.systemBuilderCommands` and keeps
      # `system.extraSystemBuilderCmds` only as a renamed alias that warns on every evaluation;
      # older nixpkgs has only the old name. `options` holds one attribute per declared option,
      # whatever the definitions, so asking which name exists causes no infinite recursion.
      (
        let
          link = ''
            ln -s ${generation} $out/etcflip
          ''
          + (if cfg.image.enable then "ln -s ${image} $out/etcflip-image\n" else "");
        in
        if options.system ? systemBuilderCommands then
          { system.systemBuilderCommands = link; }
        else
          { system.extraSystemBuilderCmds = link; }
      )
    ]
  );
}
