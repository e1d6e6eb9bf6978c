# `config.users` as NixOS evaluates it (every option of a `users.users.<name>` value, defaults
# included), converted to the `users-groups.json` NixOS itself writes: only its fields, the
# shell through toShellPath, disabled users dropped, attribute-name order, `linger` left out.
let
  # A `users.users.<name>` value with NixOS's defaults.
  user =
    name: over:
    {
      enable = true;
      inherit name;
      description = "";
      uid = null;
      isSystemUser = false;
      isNormalUser = false;
      group = "";
      extraGroups = [ ];
      home = "/var/empty";
      homeMode = "700";
      cryptHomeLuks = null;
      pamMount = { };
      shell = {
        name = "shadow-4.17";
        shellPath = "/bin/nologin";
      };
      ignoreShellProgramCheck = false;
      subUidRanges = [ ];
      subGidRanges = [ ];
      autoSubUidGidRange = false;
      createHome = false;
      useDefaultShell = false;
      hashedPassword = null;
      password = null;
      hashedPasswordFile = null;
      passwordFile = null;
      initialHashedPassword = null;
      initialPassword = null;
      packages = [ ];
      expires = null;
      linger = null;
      openssh.authorizedKeys = {
        keys = [ ];
        keyFiles = [ ];
      };
    }
    // over;
in
(import ../../../nixos/spec.nix).spec {
  users = {
    inherit (import ../lib.nix) toShellPath;
    mutableUsers = false;
    users = {
      root = user "root" {
        uid = 0;
        description = "System administrator";
        home = "/root";
        group = "root";
        shell = "/nix/store/00000000000000000000000000000000-bash-5.2/bin/bash";
        hashedPasswordFile = "/run/secrets/root";
      };
      nobody = user "nobody" {
        uid = 65534;
        isSystemUser = true;
        description = "Unprivileged account (don't use!)";
        group = "nogroup";
      };
      alice = user "alice" {
        isNormalUser = true;
        group = "users";
        extraGroups = [ "wheel" ];
        home = "/home/alice";
        createHome = true;
        useDefaultShell = true;
        shell = {
          name = "bash-interactive-5.2";
          shellPath = "/bin/bash";
        };
        autoSubUidGidRange = true;
        initialPassword = "hunter2";
        password = "hunter2";
        expires = "2030-01-31";
        linger = true;
      };
      # The attribute name is not the user's name.
      svc = user "service-account" {
        isSystemUser = true;
        group = "service";
        subUidRanges = [
          {
            startUid = 200000;
            count = 10;
          }
        ];
        subGidRanges = [
          {
            startGid = 200000;
            count = 10;
          }
        ];
        shell = null;
      };
      # nixpkgs before 23.11: `passwordFile`, and no `hashedPasswordFile` option at all.
      legacy = removeAttrs (user "legacy" {
        isSystemUser = true;
        group = "nogroup";
        passwordFile = "/run/secrets/legacy";
      }) [ "hashedPasswordFile" ];
      gone = user "gone" {
        enable = false;
        group = "users";
      };
    };
    groups = {
      root = {
        name = "root";
        gid = 0;
        members = [ ];
      };
      wheel = {
        name = "wheel";
        gid = 1;
        members = [ "alice" ];
      };
      users = {
        name = "users";
        gid = 100;
        members = [ ];
      };
      nogroup = {
        name = "nogroup";
        gid = 65534;
        members = [ ];
      };
      service = {
        name = "service";
        gid = null;
        members = [ "alice" ];
      };
    };
  };
}
