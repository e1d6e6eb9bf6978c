# Stand-ins for the few nixpkgs `lib` functions nixos/module.nix calls in its definitions, so
# that tests/nix.rs evaluates those definitions without nixpkgs: `mkIf`/`mkMerge` keep their
# arguments visible, `mkForce` is the value itself.
{
  mkIf = condition: content: { inherit condition content; };
  mkMerge = contents: { inherit contents; };
  mkForce = x: x;
  inherit (builtins) filter;
  concatMapStringsSep = sep: f: l: builtins.concatStringsSep sep (map f l);
}
