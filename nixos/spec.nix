# From NixOS options to an etcflip spec (the JSON `etcflip-gen build --spec` reads).
#
# Pure: builtins only (no nixpkgs, no lib), so it is evaluated and tested without nixpkgs
# (tests/nix.rs) and the NixOS module, the flake and the builtins-only test build all share it.
#
# The spec has one part per thing etcflip manages: `etc` today; `users` and `wrappers` join as
# further parts (one more converter below), never as a second mechanism.
let
  inherit (builtins)
    attrNames
    filter
    intersectAttrs
    isAttrs
    mapAttrs
    removeAttrs
    storeDir
    ;

  # Fields of an `environment.etc` entry that pass through as they are.
  passThrough = {
    target = null;
    mode = null;
    uid = null;
    gid = null;
    user = null;
    group = null;
  };

  # One `environment.etc.<name>` value as the spec wants it.
  #
  # - `source`, when set, is what NixOS installs, also for a text entry (NixOS sets it to a
  #   store file made from the text, and a `source = mkForce …` over a module's text wins):
  #   so it is sent, interpolated (a path is copied into the store, as NixOS's etc builder
  #   does; a derivation becomes its output path; a plain string, such as `/etc/zoneinfo/UTC`
  #   for a direct-symlink or `/run/secrets/x` for a copy, stays as it is: it names a file of
  #   the running system, which may not exist at build time), and the text is not.
  # - `text` is sent only when there is no source (option sets written by hand, tests): the
  #   generator then writes it into the generation itself.
  etcEntry =
    name: e:
    let
      text = e.text or null;
      source = e.source or null;
    in
    { target = name; }
    // intersectAttrs passThrough e
    // (
      if source != null then
        { source = "${source}"; }
      else if text != null then
        { inherit text; }
      else
        { }
    );

  # `config.environment.etc` → the spec's `etc`. Disabled entries are dropped here, so that
  # their sources are not even built.
  etc =
    entries:
    let
      disabled = filter (n: !(entries.${n}.enable or true)) (attrNames entries);
    in
    mapAttrs etcEntry (removeAttrs entries disabled);

  # The converter of each part; a part without one is passed through as it is.
  converters = {
    inherit etc;
  };

  # The whole spec from its parts, e.g. `{ etc = config.environment.etc; }`. Parts that are
  # null are left out; `overlay` (a string) passes through. `store` is this Nix's store
  # directory (a part named `store` wins): a copy whose source is a string outside it, such as
  # `/run/secrets/x`, is then copied at switch time, as setup-etc.pl copies it at activation,
  # instead of failing the build because the file is not there.
  spec =
    parts:
    let
      present = removeAttrs parts (filter (n: parts.${n} == null) (attrNames parts));
    in
    {
      store = storeDir;
    }
    // mapAttrs (n: v: if converters ? ${n} && isAttrs v then converters.${n} v else v) present;
in
{
  inherit etc spec;
}
