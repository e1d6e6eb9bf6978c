# NixOS VM test of the etcflip module: `nix flake check` (checks.<system>.vm), or
#   nix build .#checks.x86_64-linux.vm -L
# It needs nixpkgs and KVM, so it does not run in tests/run.sh; see README, "NixOS".
#
# Two machines:
# - `machine` boots with etcflip (boot-time activation on an empty /etc), then switches to the
#   specialisation `next`, which adds, removes and changes entries (a copy's content and mode,
#   a direct-symlink's target, a directory link that becomes per-file links), users (one
#   removed, one added, one changed) and wrappers (one added). A setuid and a capability
#   wrapper run as an unprivileged user.
# - `legacy` boots with setup-etc.pl and update-users-groups.pl, is migrated by switching to
#   its specialisation `etcflip` (users taken over with their ids), rolled back to NixOS's own
#   scripts and switched forward again.
# - `initrd` boots with the systemd initrd, whose `etcflip-boot.service` switches /etc before
#   switch-root (system.etcflip.initrd).
# - `image` boots with a read-only /etc, the generation's image (system.etcflip.image), its
#   users in /var/lib/nixos: one added at run time survives a reboot.
{ module }:
{ lib, ... }:
let
  # A directory link entry: the whole directory is one link in generation one.
  dirV1 =
    pkgs:
    pkgs.runCommandLocal "etcflip-test-dir" { } ''
      mkdir -p $out
      echo a1 > $out/a
      echo b1 > $out/b
    '';

  # Entries both machines start with.
  baseEtc = pkgs: {
    "etcflip-test/kept".text = "kept\n";
    "etcflip-test/changed".text = "v1\n";
    "etcflip-test/gone".text = "gone\n";
    "etcflip-test/secret" = {
      text = "s1\n";
      mode = "0440";
    };
    "etcflip-test/tz" = {
      source = "/etc/zoneinfo/UTC";
      mode = "direct-symlink";
    };
    "etcflip-test/dir".source = dirV1 pkgs;
  };

  # What the specialisation changes.
  nextEtc = {
    "etcflip-test/changed".text = lib.mkForce "v2\n";
    "etcflip-test/gone".enable = false;
    "etcflip-test/added".text = "added\n";
    "etcflip-test/secret" = {
      text = lib.mkForce "s2\n";
      mode = lib.mkForce "0400";
    };
    "etcflip-test/tz".source = lib.mkForce "/etc/zoneinfo/Europe/Berlin";
    "etcflip-test/dir".enable = false;
    "etcflip-test/dir/a".text = "a2\n";
    "etcflip-test/dir/c".text = "c2\n";
  };

  # Users both machines start with: a normal user with a dynamic uid, a system user.
  baseUsers = {
    users.alice = {
      isNormalUser = true;
      extraGroups = [ "wheel" ];
      initialPassword = "alice";
    };
    users.etcflip-svc = {
      isSystemUser = true;
      group = "etcflip-svc";
      description = "v1";
    };
    groups.etcflip-svc = { };
  };

  # What the specialisation changes: alice removed, bob added, the system user changed.
  nextUsers = {
    users.alice.enable = false;
    users.bob = {
      isNormalUser = true;
      extraGroups = [ "wheel" ];
    };
    users.etcflip-svc.description = lib.mkForce "v2";
  };
  # Wrappers both machines have, besides NixOS's own (mount, umount): a setuid one and a
  # capability one, each run as nobody by the test.
  baseWrappers = pkgs: {
    etcflip-id = {
      source = "${pkgs.coreutils}/bin/id";
      owner = "root";
      group = "root";
      setuid = true;
    };
    etcflip-status = {
      source = "${pkgs.coreutils}/bin/cat";
      owner = "root";
      group = "root";
      capabilities = "cap_net_raw+ep";
    };
  };

  # What the specialisation adds.
  nextWrappers = pkgs: {
    etcflip-added = {
      source = "${pkgs.coreutils}/bin/true";
      owner = "root";
      group = "root";
    };
  };
in
{
  name = "etcflip";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [ module ];
      system.etcflip.enable = true;
      environment.etc = baseEtc pkgs;
      users = baseUsers;
      security.wrappers = baseWrappers pkgs;
      specialisation.next.configuration = {
        environment.etc = nextEtc;
        users = nextUsers;
        security.wrappers = nextWrappers pkgs;
      };
    };

  nodes.legacy =
    { pkgs, ... }:
    {
      imports = [ module ];
      environment.etc = baseEtc pkgs;
      users = baseUsers;
      security.wrappers = baseWrappers pkgs;
      specialisation.etcflip.configuration = {
        system.etcflip.enable = true;
        environment.etc = nextEtc;
        users = nextUsers;
      };
    };

  nodes.initrd =
    { pkgs, ... }:
    {
      imports = [ module ];
      boot.initrd.systemd.enable = true;
      system.etcflip.enable = true;
      environment.etc = baseEtc pkgs;
      users = baseUsers;
      security.wrappers = baseWrappers pkgs;
    };

  nodes.image =
    { pkgs, ... }:
    {
      imports = [ module ];
      boot.initrd.systemd.enable = true;
      system.etcflip = {
        enable = true;
        image.enable = true;
      };
      environment.etc = baseEtc pkgs;
      users = baseUsers;
      security.wrappers = baseWrappers pkgs;
    };

  testScript =
    { nodes, ... }:
    let
      top = nodes.machine.system.build.toplevel;
      legacyTop = nodes.legacy.system.build.toplevel;
    in
    ''
      def is_link(m, path, text):
          m.succeed(f"test -L {path}")
          got = m.succeed(f"readlink {path}").strip()
          assert got == text, f"{path} links to {got!r}, want {text!r}"

      def has(m, path, content):
          got = m.succeed(f"cat {path}")
          assert got == content, f"{path} holds {got!r}, want {content!r}"

      def is_copy(m, path, content, mode):
          m.succeed(f"test -f {path} && test ! -L {path}")
          has(m, path, content)
          got = m.succeed(f"stat -c %a:%U:%G {path}").strip()
          assert got == f"{mode}:root:root", f"{path} is {got}, want {mode}:root:root"

      def no_leftovers(m):
          # etcflip's scratch and backup names all contain ".etcflip-".
          left = m.succeed("find /etc -xdev -name '*.etcflip-*' -print").strip()
          assert left == "", f"left behind: {left}"

      def fingerprint(m):
          # Inode and mtime of every etcflip-made path (the wrappers too), and of the recorded
          # state: a no-op re-switch changes none of them.
          return m.succeed(
              "find /etc/etcflip-test /etc/static /etc/.etcflip/applied.json"
              " /etc/passwd /etc/group /etc/shadow /etc/subuid /etc/subgid /var/lib/nixos"
              " /run/wrappers -xdev"
              " -printf '%p %y %i %T@ %l\\n' | sort"
          )

      def generation_one(m):
          is_link(m, "/etc/etcflip-test/kept", "/etc/static/etcflip-test/kept")
          has(m, "/etc/etcflip-test/kept", "kept\n")
          has(m, "/etc/etcflip-test/changed", "v1\n")
          has(m, "/etc/etcflip-test/gone", "gone\n")
          is_copy(m, "/etc/etcflip-test/secret", "s1\n", "440")
          is_link(m, "/etc/etcflip-test/tz", "/etc/zoneinfo/UTC")
          is_link(m, "/etc/etcflip-test/dir", "/etc/static/etcflip-test/dir")
          has(m, "/etc/etcflip-test/dir/a", "a1\n")
          has(m, "/etc/etcflip-test/dir/b", "b1\n")

      def generation_two(m):
          has(m, "/etc/etcflip-test/kept", "kept\n")
          is_link(m, "/etc/etcflip-test/changed", "/etc/static/etcflip-test/changed")
          has(m, "/etc/etcflip-test/changed", "v2\n")
          m.fail("test -e /etc/etcflip-test/gone || test -L /etc/etcflip-test/gone")
          has(m, "/etc/etcflip-test/added", "added\n")
          is_copy(m, "/etc/etcflip-test/secret", "s2\n", "400")
          is_link(m, "/etc/etcflip-test/tz", "/etc/zoneinfo/Europe/Berlin")
          # The directory link became a real directory of per-file links; b is gone.
          m.succeed("test -d /etc/etcflip-test/dir && test ! -L /etc/etcflip-test/dir")
          is_link(m, "/etc/etcflip-test/dir/a", "/etc/static/etcflip-test/dir/a")
          has(m, "/etc/etcflip-test/dir/a", "a2\n")
          has(m, "/etc/etcflip-test/dir/c", "c2\n")
          m.fail("test -e /etc/etcflip-test/dir/b")

      def entry(m, name):
          return m.succeed(f"getent passwd {name}").strip().split(":")

      def ledger(m):
          return json.loads(m.succeed("cat /var/lib/nixos/uid-map"))

      def users_one(m):
          alice = entry(m, "alice")
          assert alice[5] == "/home/alice", alice
          m.succeed("test $(stat -c %U:%G:%a /home/alice) = alice:users:700")
          m.succeed("id -nG alice | grep -qw wheel")
          assert entry(m, "etcflip-svc")[4] == "v1"
          m.fail("getent passwd bob")
          assert ledger(m)["alice"] == int(alice[2]), ledger(m)
          return int(alice[2])

      def users_two(m, alice_uid):
          m.fail("getent passwd alice")
          bob = entry(m, "bob")
          assert int(bob[2]) != alice_uid, f"bob got alice's uid {alice_uid}"
          m.succeed("id -nG bob | grep -qw wheel")
          assert entry(m, "etcflip-svc")[4] == "v2"
          # A removed user's uid stays reserved in NixOS's own ledger.
          assert ledger(m)["alice"] == alice_uid, ledger(m)
          m.succeed("pwck -r -q && grpck -r")

      def as_nobody(m, command):
          return m.succeed(f"setpriv --reuid=65534 --regid=65534 --clear-groups -- {command}")

      def wrappers_work(m, added):
          # Made by `etcflip wrappers` in suid-sgid-wrappers.service, from the generation.
          m.succeed("systemctl show -p Result suid-sgid-wrappers | grep -qx Result=success")
          bin = m.succeed("readlink /run/wrappers/bin").strip()
          assert bin.startswith("/run/wrappers/wrappers.etcflip-"), bin
          dirs = m.succeed("ls /run/wrappers").split()
          assert dirs == ["bin", bin.split("/")[-1]], f"one wrappers directory: {dirs}"
          m.succeed("test $(stat -c %a:%U:%G /run/wrappers/bin/etcflip-id) = 4511:root:root")
          m.succeed("test -u /run/wrappers/bin/mount")
          assert as_nobody(m, "/run/wrappers/bin/etcflip-id -u").strip() == "0"
          status = as_nobody(m, "/run/wrappers/bin/etcflip-status /proc/self/status")
          assert "CapAmb:\t0000000000002000" in status, status
          # The environment the loader would honour is gone (the wrapper scrubs it).
          env = as_nobody(m, "env LD_LIBRARY_PATH=/x MALLOC_CHECK_=3 /run/wrappers/bin/etcflip-status /proc/self/environ")
          assert "LD_LIBRARY_PATH" not in env and "MALLOC_CHECK_" not in env, env
          if added:
              m.succeed("test -x /run/wrappers/bin/etcflip-added")
          else:
              m.fail("test -e /run/wrappers/bin/etcflip-added")

      def switch_to(m, toplevel):
          m.succeed(f"{toplevel}/bin/switch-to-configuration test >&2")

      def applied_is_current(m):
          # The overlay shows the generation of the running system, and etcflip agrees.
          gen = m.succeed("readlink -f /run/current-system/etcflip").strip()
          is_link(m, "/etc/static", f"{gen}/etc")
          m.succeed("etcflip verify >&2")
          m.succeed("test -e /etc/NIXOS")
          no_leftovers(m)

      import json

      start_all()

      with subtest("boot: the declared entries and users are in place"):
          machine.wait_for_unit("multi-user.target")
          generation_one(machine)
          applied_is_current(machine)
          wrappers_work(machine, added=False)
          alice_uid = users_one(machine)
          # A user's files: one at the top, one inside a directory etcflip manages.
          machine.succeed("echo mine > /etc/user-notes")
          machine.succeed("echo mine > /etc/etcflip-test/user-file")

      with subtest("switch to a specialisation that adds, removes and changes entries and users"):
          switch_to(machine, "${top}/specialisation/next")
          generation_two(machine)
          applied_is_current(machine)
          wrappers_work(machine, added=True)
          users_two(machine, alice_uid)
          has(machine, "/etc/user-notes", "mine\n")
          has(machine, "/etc/etcflip-test/user-file", "mine\n")

      with subtest("a re-switch changes nothing"):
          before = fingerprint(machine)
          switch_to(machine, "${top}/specialisation/next")
          out = machine.succeed("etcflip switch /run/current-system/etcflip")
          assert "already up to date" in out, out
          assert fingerprint(machine) == before, "the re-switch changed /etc"

      with subtest("dry-activate prints the plan and changes nothing"):
          before = fingerprint(machine)
          out = machine.succeed("${top}/bin/switch-to-configuration dry-activate 2>&1")
          assert "dry run" in out, out
          assert "users: would" in out, out
          assert fingerprint(machine) == before, "dry-activate changed /etc or the users"

      with subtest("and back to the first generation: alice returns with her uid"):
          switch_to(machine, "${top}")
          generation_one(machine)
          applied_is_current(machine)
          wrappers_work(machine, added=False)
          assert users_one(machine) == alice_uid
          has(machine, "/etc/etcflip-test/user-file", "mine\n")

      def legacy_to_etcflip(alice_uid):
          switch_to(legacy, "${legacyTop}/specialisation/etcflip")
          generation_two(legacy)
          applied_is_current(legacy)
          # NixOS's own wrappers directory was replaced by etcflip's, and removed.
          wrappers_work(legacy, added=False)
          has(legacy, "/etc/user-notes", "mine\n")
          users_two(legacy, alice_uid)

      with subtest("legacy: NixOS's scripts at boot, migrated by a switch"):
          legacy.wait_for_unit("multi-user.target")
          generation_one(legacy)
          legacy.succeed("test -e /etc/.clean && test ! -e /etc/.etcflip")
          legacy.succeed("echo mine > /etc/user-notes")
          legacy_alice = users_one(legacy)
          legacy_to_etcflip(legacy_alice)

      with subtest("systemd initrd: /etc is switched before switch-root"):
          initrd.wait_for_unit("multi-user.target")
          out = initrd.succeed("journalctl -b -o cat -u etcflip-boot.service")
          assert "switched" in out, out
          generation_one(initrd)
          applied_is_current(initrd)
          wrappers_work(initrd, added=False)
          users_one(initrd)

      def image_booted(m):
          m.wait_for_unit("multi-user.target")
          m.succeed("findmnt -no OPTIONS /etc | tr , '\\n' | grep -qx ro")
          m.fail("touch /etc/etcflip-write-test")
          gen = m.succeed("readlink -f /run/current-system/etcflip").strip()
          is_link(m, "/run/etcflip/static", f"{gen}/etc")
          is_link(m, "/etc/etcflip-test/kept", "/run/etcflip/static/etcflip-test/kept")
          has(m, "/etc/etcflip-test/kept", "kept\n")
          is_copy(m, "/etc/etcflip-test/secret", "s1\n", "440")
          is_link(m, "/etc/etcflip-test/tz", "/etc/zoneinfo/UTC")
          is_link(m, "/etc/passwd", "/var/lib/nixos/passwd")
          m.succeed("test -e /etc/NIXOS")
          # systemd mounts the machine's id over the image's empty machine-id.
          m.succeed("test -s /etc/machine-id")
          wrappers_work(m, added=False)
          return users_one(m)

      with subtest("image: a read-only /etc, the users mutable in /var/lib/nixos"):
          image_alice = image_booted(image)
          image.succeed("echo 'carol:x:1500:100::/var/empty:/bin/sh' >> /var/lib/nixos/passwd")
          image.succeed("echo 'carol:!:1::::::' >> /var/lib/nixos/shadow")
          image.shutdown()
          image.start()
          assert image_booted(image) == image_alice
          image.succeed("getent passwd carol")

      with subtest("legacy: rollback to NixOS's scripts, then forward again"):
          switch_to(legacy, "${legacyTop}")
          generation_one(legacy)
          # update-users-groups.pl reads etcflip's ledgers: alice back with her uid, bob gone.
          assert users_one(legacy) == legacy_alice
          legacy.succeed("pwck -r -q && grpck -r")
          legacy_to_etcflip(legacy_alice)
    '';
}
