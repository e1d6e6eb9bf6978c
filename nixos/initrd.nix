# The systemd initrd's etcflip step (system.etcflip.initrd): the script of the initrd unit
# `etcflip-boot.service`, which runs before initrd-nixos-activation.service and switch-root.
# Builtins only, so that tests/nix.rs runs it for real on a scratch sysroot.
#
# It finds the system being booted from the link initrd-find-nixos-closure.service leaves at
# /nixos-closure, and that system's generation from its `etcflip` link, then runs
# `etcflip boot GEN --root /sysroot --no-wrappers` (the wrappers come later, from
# suid-sgid-wrappers.service, once /run/wrappers is mounted). With `image`, /etc is the
# system's `etcflip-image`: mounted read-only under the initrd's /run (which switch-root moves
# to the system's /run) and its etc bound read-only on /sysroot/etc; boot then writes the
# overlay link into the initrd's /run, through a bind of it on /sysroot/run that only its own
# mount namespace sees.
{
  # A package with bin/etcflip.
  etcflip,
  # The systemd-tmpfiles binary.
  tmpfiles,
  # A package with bin/mount, bin/mountpoint and bin/unshare (util-linux).
  utilLinux,
  # Whether /etc is the read-only image.
  image ? false,
  # With the image, where the user database lives (system.etcflip.image.passwordFilesLocation),
  # or null when etcflip does not manage the users (then the writable /etc needs no switch).
  passwordFilesLocation ? null,
}:
let
  quote = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] "${s}" + "'";
  bin = name: quote "${utilLinux}/bin/${name}";
  boot = quote "${etcflip}/bin/etcflip";
in
''
  set -eu
  # Where the root is mounted, and the link to the system being booted (a test sets these).
  sysroot=''${ETCFLIP_SYSROOT:-/sysroot}
  closure=$(readlink "''${ETCFLIP_CLOSURE:-/nixos-closure}")
  # Store paths inside the root.
  gen=$(readlink "$sysroot$closure/etcflip")
  export ETCFLIP_TMPFILES=${quote tmpfiles}
''
+ (
  if image then
    ''
      img=$(readlink "$sysroot$closure/etcflip-image")
      mkdir -p /run/etcflip/image "$sysroot/etc" "$sysroot/run"
    ''
    + (
      if passwordFilesLocation == null then
        ""
      else
        ''
          # The first boot into an image, or one after a time without it: the writable
          # /etc it is about to hide still holds the user files (a regular file there is the
          # newest). That /etc is switched to this generation first, which moves them (run-time
          # users too) to their place and links them there (applier/src/users/place.rs): the
          # image's boot then finds them, and so does a rollback, which sees that /etc again.
          if [ -f "$sysroot/etc/passwd" ] && [ ! -L "$sysroot/etc/passwd" ] &&
            ! ${bin "mountpoint"} -q "$sysroot/etc"; then
            ${boot} boot "$sysroot$gen" --root "$sysroot" --no-wrappers
          fi
        ''
    )
    + ''

      ${bin "mountpoint"} -q /run/etcflip/image ||
        ${bin "mount"} -t squashfs -o ro,loop "$sysroot$img/etc.squashfs" /run/etcflip/image
      if ! ${bin "mountpoint"} -q "$sysroot/etc"; then
        ${bin "mount"} --bind /run/etcflip/image/etc "$sysroot/etc"
        ${bin "mount"} -o remount,ro,bind "$sysroot/etc"
      fi
      # (A test in a bare chroot, whose / is no mount point, passes "unchanged".)
      exec ${bin "unshare"} -m --propagation "''${ETCFLIP_UNSHARE_PROPAGATION:-private}" sh -eu -c \
        '"$4" --rbind /run "$1/run" && exec "$2" boot "$1$3" --root "$1" --no-wrappers' \
        sh "$sysroot" ${boot} "$gen" ${bin "mount"}
    ''
  else
    ''
      exec ${boot} boot "$sysroot$gen" --root "$sysroot" --no-wrappers
    ''
)
