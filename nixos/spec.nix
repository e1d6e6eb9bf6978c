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
  # - A text entry keeps only its text: NixOS also sets `source` to a store file made from the
  #   text, and the generator writes the same bytes itself, so the text needs no store path
  #   of its own (and the spec does not depend on one per text entry).
  # - Otherwise `source` is interpolated: a path is copied into the store (as NixOS's own etc
  #   builder does), a derivation becomes its output path, and a plain string (an absolute
  #   path outside the store, e.g. `/etc/zoneinfo/UTC` for a direct-symlink) stays as it is.
  etcEntry =
    name: e:
    let
      text = e.text or null;
      source = e.source or null;
    in
    { target = name; }
    // intersectAttrs passThrough e
    // (
      if text != null then
        { inherit text; }
      else if source != null then
        { source = "${source}"; }
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
  # null are left out; `overlay` (a string) passes through.
  spec =
    parts:
    let
      present = removeAttrs parts (filter (n: parts.${n} == null) (attrNames parts));
    in
    mapAttrs (n: v: if converters ? ${n} && isAttrs v then converters.${n} v else v) present;
in
{
  inherit etc spec;
}
