# A generation built by Nix from builtins alone (no nixpkgs), the way the NixOS module's
# derivation builds one (nixos/generation.nix), so that it runs offline with Debian's nix-bin:
#
#   nix-build tests/nix/generation.nix --arg etcflipGen "$PWD/target/debug/etcflip-gen" \
#     --option sandbox false --option substituters ''
#
# tests/nix.rs builds it: the result is a store path, the same for the same inputs, another for
# another spec, and `etcflip switch` applies it.
{
  # A freshly built etcflip-gen; copied into the store, so the build depends on its bytes.
  etcflipGen,
  # Which option set: "one", or "two" (the same system with changes).
  variant ? "one",
  # Changes the derivation, not what it builds: two separate builds of the same generation.
  salt ? "",
}:
let
  specLib = import ../../nixos/spec.nix;

  gen = builtins.path {
    path = etcflipGen;
    name = "etcflip-gen";
  };

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

  # builtins.toFile may refer to these sources: they are plain store paths, not build outputs.
  spec = builtins.toFile "etcflip-spec.json" (
    builtins.toJSON (specLib.spec {
      etc =
        {
          inherit one two;
        }
        .${variant};
    })
  );
in
derivation {
  name = "etcflip-generation";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [
    "-c"
    ''exec ${gen} build --spec ${spec} --out "$out"''
  ];
  inherit salt;
}
