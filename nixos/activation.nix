# The activation snippet that runs `etcflip switch`: builtins only, so that tests/nix.rs runs it
# for real (in a private mount namespace with a scratch /etc).
#
# With `users`, the generation also holds the users, and this is the `users` snippet: it
# replaces update-users-groups.pl and setup-etc.pl in one switch. Without, it is the `etc`
# snippet and replaces setup-etc.pl alone.
{
  # A package with bin/etcflip.
  etcflip,
  # The generation to switch to.
  generation,
  # The systemd-tmpfiles binary (the activation script's PATH has no systemd).
  tmpfiles,
  # What to do with paths etcflip did not make: "abort", "backup" or "overwrite".
  onConflict,
  # Whether the generation holds the users (this is then the `users` snippet).
  users ? false,
  # Whether this switch also makes /run/wrappers (the module leaves them to
  # suid-sgid-wrappers.service, which runs `etcflip wrappers` once /run/wrappers is mounted).
  wrappers ? true,
  # Whether /etc is the generation's read-only image (system.etcflip.image): then this runs
  # `etcflip boot`, which finds the image holding the generation and writes only outside /etc
  # (the overlay link in /run, the users in their writable place). A new generation takes
  # effect at the next boot.
  image ? false,
}:
let
  quote = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] "${s}" + "'";
  switch =
    extra:
    builtins.concatStringsSep " " (
      [
        "ETCFLIP_TMPFILES=${quote tmpfiles}"
        (quote "${etcflip}/bin/etcflip")
        "switch"
        (quote generation)
        "--on-conflict"
        (quote onConflict)
      ]
      ++ (if wrappers then [ ] else [ "--no-wrappers" ])
      ++ extra
    );
  # As NixOS's own `users` snippet does before update-users-groups.pl.
  homes = if users then "install -m 0700 -d /root\n  install -m 0755 -d /home\n  " else "";
  boot = builtins.concatStringsSep " " [
    "ETCFLIP_TMPFILES=${quote tmpfiles}"
    (quote "${etcflip}/bin/etcflip")
    "boot"
    (quote generation)
    "--no-wrappers"
  ];
in
if image then
  ''
    # etcflip (system.etcflip.image): /etc is the read-only image of ${generation}
    if [ "''${NIXOS_ACTION-}" = dry-activate ] || [ "''${0##*/}" = dry-activate ]; then
      echo "etcflip: /etc is a read-only image: a new generation takes effect at the next boot"
    else
      # Exit 3 on a read-only /etc: it is another generation's image (a switch without a
      # reboot); etcflip said so and wrote nothing, and the new one takes effect at the next
      # boot. Any other failure, or a refusal on a writable /etc, is one: the last command of
      # the group fails, which the activation's ERR trap sees (a negated or non-final test
      # would hide it).
      ${homes}${boot} || {
        rc=$?
        if [ "$rc" -eq 3 ] && [ ! -w /etc ]; then rc=0; fi
        [ "$rc" -eq 0 ]
      }
    fi
  ''
else
''
  # etcflip (system.etcflip.enable): ${if users then "users, groups and /etc" else "/etc"} from ${generation}
  # A dry run when switch-to-configuration says so, and also whenever this runs as the
  # system's `dry-activate` script (which holds this snippet): run by hand, that script gets
  # no NIXOS_ACTION, and it must still change nothing.
  if [ "''${NIXOS_ACTION-}" = dry-activate ] || [ "''${0##*/}" = dry-activate ]; then
    ${switch [ "--dry-run" ]}
  else
    ${homes}# setup-etc.pl's list of its copies: etcflip keeps it current once it exists, so that a
    # rollback to a generation without etcflip removes exactly what etcflip made.
    [ -e /etc/.clean ] || : > /etc/.clean
    ${switch [ ]}
    # Programs detect NixOS by this tag file (setup-etc.pl made it on every run).
    [ -e /etc/NIXOS ] || : > /etc/NIXOS
  fi
''
