# From NixOS options to an etcflip spec (the JSON `etcflip-gen build --spec` reads).
#
# Pure: builtins only (no nixpkgs, no lib), so it is evaluated and tested without nixpkgs
# (tests/nix.rs) and the NixOS module, the flake and the builtins-only test build all share it.
#
# The spec has one part per thing etcflip manages: `etc`, `users` and `wrappers`, each with its
# converter below.
let
  inherit (builtins)
    attrNames
    filter
    intersectAttrs
    isAttrs
    isList
    map
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

  # The fields of a `users.users.<name>` value that NixOS's own `users-groups.json` carries
  # (nixos/modules/config/users-groups.nix in nixpkgs; `shell` is added converted). `linger`
  # is not among them: current nixpkgs keeps lingering in its `linger-users` service.
  userFields = {
    name = null;
    uid = null;
    group = null;
    description = null;
    home = null;
    homeMode = null;
    createHome = null;
    isSystemUser = null;
    password = null;
    hashedPasswordFile = null;
    hashedPassword = null;
    autoSubUidGidRange = null;
    subUidRanges = null;
    subGidRanges = null;
    initialPassword = null;
    initialHashedPassword = null;
    expires = null;
  };

  # `config.users` → the spec's `users`: exactly the `users-groups.json` NixOS would write for
  # update-users-groups.pl. Disabled users are dropped; users and groups come in attribute-name
  # order, as NixOS lists them. `toShellPath` is nixpkgs' `utils.toShellPath`, which the
  # module passes. A part that already is that JSON (its `users` a list) passes through.
  users =
    part:
    if isList (part.users or null) then
      part
    else
      let
        inherit (part) toShellPath;
        declared = part.users or { };
        enabled = filter (n: declared.${n}.enable or true) (attrNames declared);
        groups = part.groups or { };
      in
      {
        mutableUsers = part.mutableUsers or true;
        users = map (
          n:
          intersectAttrs userFields declared.${n}
          // {
            shell = toShellPath (declared.${n}.shell or null);
            # nixpkgs before 23.11 has only the old name.
            hashedPasswordFile = declared.${n}.hashedPasswordFile or (declared.${n}.passwordFile or null);
          }
        ) enabled;
        groups = map (n: {
          inherit (groups.${n}) name gid members;
        }) (attrNames groups);
      }
      # Where the files live when not in /etc (the module sets it for a read-only /etc).
      // (if part ? passwordFilesLocation then { inherit (part) passwordFilesLocation; } else { });

  # The fields of a `security.wrappers.<name>` value that pass through as they are.
  wrapperFields = {
    owner = null;
    group = null;
    setuid = null;
    setgid = null;
    permissions = null;
    capabilities = null;
  };

  # `config.security.wrappers` → the spec's `wrappers`: NixOS's own fields, for the wrappers
  # it would make (disabled ones are dropped here). `source` is interpolated, so a package's
  # file becomes its store path; a `program` that is null means the attribute name, as it does
  # to NixOS.
  wrappers =
    declared:
    let
      disabled = filter (n: !(declared.${n}.enable or true)) (attrNames declared);
      one =
        name: w:
        intersectAttrs wrapperFields w
        // {
          source = "${w.source}";
          program = if (w.program or null) == null then name else w.program;
        };
    in
    mapAttrs one (removeAttrs declared disabled);

  # The converter of each part; a part without one is passed through as it is.
  converters = {
    inherit etc users wrappers;
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
  inherit etc users wrappers spec;
}
