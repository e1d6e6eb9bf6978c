# A generation built by Nix from builtins alone (no nixpkgs): the NixOS module's own build step
# (nixos/generation.nix) with builtins stand-ins for the nixpkgs builders it uses, so that it
# runs offline with Debian's nix-bin:
#
#   mkdir -p /tmp/pkg/bin && cp target/debug/etcflip-gen /tmp/pkg/bin/
#   NIX_CONF_DIR=$PWD/tests/nix/conf NIX_USER_CONF_FILES= \
#     nix-build tests/nix/generation.nix --arg etcflipPackage /tmp/pkg
#
# tests/nix.rs builds it: the result is a store path, the same for the same inputs, another for
# another spec, and `etcflip switch` applies it.
{
  # A directory with the freshly built binaries in bin/; copied into the store, so the build
  # depends on their bytes.
  etcflipPackage,
  # Which option set: "one", or "two" (the same system with changes).
  variant ? "one",
  # Changes the derivation, not what it builds: two separate builds of the same generation.
  salt ? "",
  # Whether the generation also holds users (`config.users`-shaped option sets, converted as
  # the NixOS module converts them).
  withUsers ? false,
  # Whether it also holds a setuid wrapper of `id` (this machine's, copied into the store).
  withWrappers ? false,
  # Whether it is for a read-only image, as the module makes it with
  # system.etcflip.image.enable: the overlay in /run, the users (with withUsers) in
  # /var/lib/nixos.
  forImage ? false,
}:
let
  specLib = import ../../nixos/spec.nix;

  etcflip = builtins.path {
    path = etcflipPackage;
    name = "etcflip";
  };

  # Stand-ins for the two nixpkgs builders nixos/generation.nix uses, from builtins alone:
  # a derivation whose builder is /bin/sh running the script, and builtins.toFile (which may
  # refer to the sources below: they are plain store paths, not build outputs).
  runCommandLocal = (import ./lib.nix).runCommandLocal salt;
  writeText = builtins.toFile;

  # `environment.etc`-style option sets. Every source is a store path: paths are copied into
  # the store by the conversion.
  one = {
    motd.text = "Welcome to etcflip\n";
    issue.source = ./fixtures/issue;
    "fonts/conf.d".source = ./fixtures/fonts;
    "fonts/by-glob".source = "${./fixtures/fonts}/*.conf";
    sudoers = {
      text = "root ALL=(ALL) ALL\n";
      mode = "0440";
    };
    localtime = {
      source = ./fixtures/zone;
      mode = "direct-symlink";
    };
  };
  two = builtins.removeAttrs one [ "sudoers" ] // {
    motd.text = "Welcome to etcflip, again\n";
    added.text = "added\n";
  };

  # A `users.users.<name>` value: the fields the conversion reads, with NixOS's defaults.
  account =
    over:
    {
      enable = true;
      description = "";
      uid = null;
      isSystemUser = false;
      group = "";
      home = "/var/empty";
      homeMode = "700";
      createHome = false;
      password = null;
      hashedPassword = null;
      hashedPasswordFile = null;
      initialPassword = null;
      initialHashedPassword = null;
      expires = null;
      autoSubUidGidRange = false;
      subUidRanges = [ ];
      subGidRanges = [ ];
      shell = {
        shellPath = "/bin/nologin";
      };
      extraGroups = [ ];
    }
    // over;
  group = name: gid: members: { inherit name gid members; };

  # `config.users` for generation one: root, a dynamic normal user and a dynamic system user.
  usersOne = {
    inherit (import ./lib.nix) toShellPath;
    mutableUsers = true;
    users = {
      root = account {
        name = "root";
        uid = 0;
        group = "root";
        home = "/root";
        shell = "/bin/sh";
        hashedPassword = "!";
      };
      alice = account {
        name = "alice";
        group = "users";
        home = "/home/alice";
        createHome = true;
        initialPassword = "alice";
        autoSubUidGidRange = true;
        shell = {
          shellPath = "/bin/bash";
        };
      };
      daemon = account {
        name = "etcflip-daemon";
        isSystemUser = true;
        group = "etcflip-daemon";
        description = "one";
      };
    };
    groups = {
      root = group "root" 0 [ ];
      users = group "users" 100 [ ];
      wheel = group "wheel" 1 [ "alice" ];
      etcflip-daemon = group "etcflip-daemon" null [ ];
    };
  };
  # Generation two: alice removed, bob added, the daemon's description changed.
  usersTwo = usersOne // {
    users = builtins.removeAttrs usersOne.users [ "alice" ] // {
      bob = account {
        name = "bob";
        group = "users";
        home = "/home/bob";
        createHome = true;
      };
      daemon = usersOne.users.daemon // {
        description = "two";
      };
    };
    groups = usersOne.groups // {
      wheel = group "wheel" 1 [ "bob" ];
    };
  };
  # What the users' names resolve through in a root whose /etc is only this generation.
  nsswitch."nsswitch.conf".text = "passwd: files\ngroup: files\nshadow: files\n";
  # `security.wrappers`, with NixOS's defaults.
  wrappers.etcflip-id = {
    source = builtins.path {
      path = /usr/bin/id;
      name = "id";
    };
    program = null;
    owner = "root";
    group = "root";
    setuid = true;
    setgid = false;
    permissions = "u+rx,g+x,o+x";
    capabilities = "";
  };
  # What system.etcflip.image.enable adds to the parts (nixos/module.nix).
  imageParts =
    parts:
    parts
    // {
      overlay = "/run/etcflip/static";
    }
    // (
      if parts ? users then
        { users = parts.users // { passwordFilesLocation = "/var/lib/nixos"; }; }
      else
        { }
    );
in
# The module's own build step, run with the stand-ins.
import ../../nixos/generation.nix {
  inherit runCommandLocal writeText etcflip;
  spec = specLib.spec (
    (if forImage then imageParts else x: x) (
    if withWrappers then
      {
        etc = one;
        inherit wrappers;
      }
    else if withUsers then
      {
        etc = { one = one // nsswitch; two = two // nsswitch; }.${variant};
        users = { one = usersOne; two = usersTwo; }.${variant};
      }
    else
      {
        etc =
          {
            inherit one two;
          }
          .${variant};
      }
    )
  );
}
