#!/usr/bin/env python3
"""Regenerate examples/desktop: gen1.json, gen2.json and the fake store/.

Usage (from anywhere):  python3 examples/desktop/make-example.py

Deterministic: no randomness, no timestamps.  Store object names are
`<32-char hash>-<name>`, the hash derived from the name and the content, so an
object whose content is the same in both generations keeps its path, and an
edited one gets a new path, as in a real Nix store.

Everything under store/ is rewritten from scratch on every run.  All file
contents below are made-up but plausible examples; none is a copy of a real
distribution file.
"""

import copy
import glob
import hashlib
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STORE_DIR = os.path.join(HERE, "store")
NIX32 = "0123456789abcdfghijklmnpqrsvwxyz"


# ---------------------------------------------------------------------------
# Hash-like names and the fake store
# ---------------------------------------------------------------------------

def nixhash(*parts):
    """32 characters of Nix base32 from the first 160 bits of a sha256."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
        h.update(b"\0")
    n = int.from_bytes(h.digest()[:20], "big")
    return "".join(NIX32[(n >> (5 * i)) & 31] for i in range(31, -1, -1))


def nix(pkg):
    """A fake absolute /nix/store path for a package, used inside contents."""
    return "/nix/store/%s-%s" % (nixhash("pkg", pkg), pkg)


class Link:
    """A symlink inside a store directory object."""

    def __init__(self, target):
        self.target = target


class Exec:
    """An executable file inside the store."""

    def __init__(self, text):
        self.text = text


def _fingerprint(obj):
    if isinstance(obj, dict):
        out = []
        for rel in sorted(obj):
            out.append(rel + "\0" + _fingerprint(obj[rel]))
        return "dir(" + "\1".join(out) + ")"
    if isinstance(obj, Link):
        return "link:" + obj.target
    if isinstance(obj, Exec):
        return "exec:" + obj.text
    if isinstance(obj, bytes):
        return "bytes:" + obj.hex()
    return "file:" + obj


STORE = {}  # "store/<hash>-<name>" -> object (str | bytes | Exec | dict)


def store(name, obj):
    """Register a store object; return its relative path `store/<hash>-<name>`."""
    path = "store/%s-%s" % (nixhash("store", name, _fingerprint(obj)), name)
    STORE[path] = obj
    return path


def _write_leaf(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(obj, Link):
        os.symlink(obj.target, path)
        return
    data = obj if isinstance(obj, bytes) else (obj.text if isinstance(obj, Exec) else obj)
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o755 if isinstance(obj, Exec) else 0o644)


def write_store():
    if os.path.isdir(STORE_DIR):
        shutil.rmtree(STORE_DIR)
    os.makedirs(STORE_DIR)
    for rel in sorted(STORE):
        obj = STORE[rel]
        dest = os.path.join(HERE, rel)
        if isinstance(obj, dict):
            os.makedirs(dest)
            for sub in sorted(obj):
                _write_leaf(os.path.join(dest, sub), obj[sub])
        else:
            _write_leaf(dest, obj)


# ---------------------------------------------------------------------------
# Spec entries, exactly the fields of NixOS's environment.etc.<name>
# ---------------------------------------------------------------------------

def entry(target, source=None, text=None, mode="symlink", enable=True,
          uid=0, gid=0, user=None, group=None):
    return {
        "enable": enable,
        "target": target,
        "source": source,
        "text": text,
        "mode": mode,
        "uid": uid,
        "gid": gid,
        "user": user if user is not None else "+%d" % uid,
        "group": group if group is not None else "+%d" % gid,
    }


# ---------------------------------------------------------------------------
# Content helpers (written for this example)
# ---------------------------------------------------------------------------

PAM = nix("linux-pam-1.6.1")
SYSTEMD = nix("systemd-256.8")


def pam_service(auth, account=None, password=None, session=None):
    """A NixOS-flavoured PAM file: one rule per line, absolute module paths."""
    def mod(m):
        return m if m.startswith("/") else "%s/lib/security/%s" % (PAM, m)

    account = account if account is not None else [("required", "pam_unix.so", "")]
    password = password if password is not None else [
        ("sufficient", "pam_unix.so", "nullok yescrypt")]
    session = session if session is not None else [
        ("required", "pam_env.so", "conffile=/etc/pam/environment readenv=0"),
        ("required", "pam_unix.so", "")]
    out = []
    for title, kind, rules in (("Account management.", "account", account),
                               ("Authentication management.", "auth", auth),
                               ("Password management.", "password", password),
                               ("Session management.", "session", session)):
        if not rules:
            continue
        out.append("# " + title)
        for control, module, args in rules:
            out.append(" ".join(x for x in (kind, control, mod(module), args) if x))
        out.append("")
    return "\n".join(out)


UNIX_AUTH = [("sufficient", "pam_unix.so", "likeauth try_first_pass"),
             ("required", "pam_deny.so", "")]
ROOTOK_AUTH = [("sufficient", "pam_rootok.so", "")] + UNIX_AUTH


def unit(desc, exec_start=None, after=(), wants=(), wanted_by=(), kind="service",
         extra=(), install_extra=()):
    lines = ["[Unit]", "Description=" + desc]
    if after:
        lines.append("After=" + " ".join(after))
    if wants:
        lines.append("Wants=" + " ".join(wants))
    lines.append("")
    if kind == "service":
        lines.append("[Service]")
        lines.append('Environment="PATH=%s/bin:%s/bin"' % (nix("coreutils-9.5"), SYSTEMD))
        if exec_start:
            lines.append("ExecStart=" + exec_start)
        lines.extend(extra)
        lines.append("")
    elif kind in ("socket", "timer"):
        lines.append("[%s]" % kind.capitalize())
        lines.extend(extra)
        lines.append("")
    if wanted_by or install_extra:
        lines.append("[Install]")
        if wanted_by:
            lines.append("WantedBy=" + " ".join(wanted_by))
        lines.extend(install_extra)
        lines.append("")
    return "\n".join(lines)


def fontconfig(desc, body):
    return ('<?xml version="1.0"?>\n'
            '<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n'
            "<fontconfig>\n"
            "  <description>%s</description>\n%s</fontconfig>\n" % (desc, body))


def desktop_entry(name, exec_, comment, extra=""):
    return ("[Desktop Entry]\nType=Application\nName=%s\nComment=%s\nExec=%s\n"
            "X-GNOME-Autostart-enabled=true\n%s" % (name, comment, exec_, extra))


def dbus_policy(service, group=None):
    allow_group = ('  <policy group="%s">\n    <allow send_destination="%s"/>\n  </policy>\n'
                   % (group, service)) if group else ""
    return ('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"\n'
            ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
            "<busconfig>\n"
            '  <policy user="root">\n    <allow own="%s"/>\n    <allow send_destination="%s"/>\n  </policy>\n'
            '%s'
            '  <policy context="default">\n    <deny send_destination="%s"/>\n  </policy>\n'
            "</busconfig>\n" % (service, service, allow_group, service))


def tzif(abbr, utoff, rule):
    """A minimal valid TZif version-2 file: one local time type plus a POSIX TZ footer."""
    chars = abbr.encode() + b"\0"
    header = b"TZif2" + b"\0" * 15 + struct.pack(">6l", 0, 0, 0, 0, 1, len(chars))
    data = struct.pack(">lBB", utoff, 0, 0) + chars
    return header + data + header + data + b"\n" + rule.encode() + b"\n"


def fake_pem(label, n_lines=6):
    """A PEM-looking block of deterministic filler (not a real certificate)."""
    import base64
    raw = b"".join(hashlib.sha256(("%s/%d" % (label, i)).encode()).digest()
                   for i in range(n_lines * 2))
    b64 = base64.b64encode(raw).decode()
    lines = [b64[i:i + 64] for i in range(0, 64 * n_lines, 64)]
    return "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % "\n".join(lines)


# ---------------------------------------------------------------------------
# The system, generation by generation
# ---------------------------------------------------------------------------

SYSTEM_UNITS = {
    # name: (description, exec/None, after, wanted_by, kind, extra)
    "accounts-daemon.service": ("Accounts Service", nix("accountsservice-23.13.9") + "/libexec/accounts-daemon", ["dbus.service"], ["graphical.target"], "service", ["Type=dbus", "BusName=org.freedesktop.Accounts"]),
    "avahi-daemon.service": ("Avahi mDNS/DNS-SD Stack", nix("avahi-0.8") + "/sbin/avahi-daemon --syslog", ["avahi-daemon.socket"], ["multi-user.target"], "service", ["Type=dbus", "BusName=org.freedesktop.Avahi"]),
    "avahi-daemon.socket": ("Avahi mDNS/DNS-SD Stack Activation Socket", None, [], ["sockets.target"], "socket", ["ListenStream=/run/avahi-daemon/socket"]),
    "bluetooth.service": ("Bluetooth service", nix("bluez-5.78") + "/libexec/bluetooth/bluetoothd -f /etc/bluetooth/main.conf", ["dbus.service"], ["bluetooth.target"], "service", ["Type=dbus", "BusName=org.bluez"]),
    "dbus.service": ("D-Bus System Message Bus", nix("dbus-1.14.10") + "/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only", ["dbus.socket"], [], "service", ["ExecReload=" + nix("dbus-1.14.10") + "/bin/busctl call org.freedesktop.DBus / org.freedesktop.DBus ReloadConfig"]),
    "dbus.socket": ("D-Bus System Message Bus Socket", None, [], ["sockets.target"], "socket", ["ListenStream=/run/dbus/system_bus_socket"]),
    "display-manager.service": ("Display Manager", nix("lightdm-1.32.0") + "/sbin/lightdm", ["systemd-user-sessions.service", "acpid.service"], ["graphical.target"], "service", ["Restart=always", "RestartSec=200ms"]),
    "firewall.service": ("Firewall", nix("firewall-start") + "/bin/firewall-start", ["systemd-modules-load.service"], ["multi-user.target"], "service", ["Type=oneshot", "RemainAfterExit=yes", "ExecStop=" + nix("firewall-stop") + "/bin/firewall-stop"]),
    "fstrim.service": ("Discard unused blocks on filesystems", nix("util-linux-2.39.4-bin") + "/bin/fstrim --listed-in /etc/fstab:/proc/self/mountinfo --verbose --quiet-unsupported", [], [], "service", ["Type=oneshot"]),
    "fstrim.timer": ("Discard unused blocks once a week", None, [], ["timers.target"], "timer", ["OnCalendar=weekly", "AccuracySec=1h", "Persistent=true"]),
    "fwupd.service": ("Firmware update daemon", nix("fwupd-1.9.26") + "/libexec/fwupd/fwupd", ["dbus.service"], [], "service", ["Type=dbus", "BusName=org.freedesktop.fwupd"]),
    "getty@.service": ("Getty on %I", nix("util-linux-2.39.4-bin") + "/sbin/agetty --login-program " + nix("shadow-4.16.0") + "/bin/login --noclear --keep-baud %I 115200,38400,9600 $TERM", ["systemd-user-sessions.service"], [], "service", ["Type=idle", "Restart=always", "UtmpIdentifier=%I"]),
    "graphical.target": ("Graphical Interface", None, ["multi-user.target", "display-manager.service"], [], "target", []),
    "logrotate.service": ("Logrotate Service", nix("logrotate-3.22.0") + "/sbin/logrotate /etc/logrotate.conf", [], [], "service", ["Type=oneshot"]),
    "logrotate.timer": ("Rotate log files hourly", None, [], ["timers.target"], "timer", ["OnCalendar=hourly", "AccuracySec=1m"]),
    "multi-user.target": ("Multi-User System", None, ["basic.target", "rescue.service", "rescue.target"], [], "target", []),
    "network-local-commands.service": ("Extra networking commands", nix("unit-script-network-local-commands-start") + "/bin/network-local-commands-start", ["network-pre.target"], ["network.target"], "service", ["Type=oneshot", "RemainAfterExit=true"]),
    "network-setup.service": ("Networking Setup", nix("unit-script-network-setup-start") + "/bin/network-setup-start", ["network-pre.target"], ["network.target"], "service", ["Type=oneshot", "RemainAfterExit=true"]),
    "NetworkManager-wait-online.service": ("Network Manager Wait Online", nix("networkmanager-1.48.10") + "/bin/nm-online -s -q", ["NetworkManager.service"], ["network-online.target"], "service", ["Type=oneshot", "RemainAfterExit=yes"]),
    "NetworkManager.service": ("Network Manager", nix("networkmanager-1.48.10") + "/sbin/NetworkManager --no-daemon", ["network-pre.target", "dbus.service"], ["multi-user.target"], "service", ["Type=dbus", "BusName=org.freedesktop.NetworkManager", "Restart=on-failure"]),
    "nix-daemon.service": ("Nix Daemon", nix("nix-2.24.10") + "/bin/nix-daemon --daemon", ["nix-daemon.socket"], ["multi-user.target"], "service", ["KillMode=process", "LimitNOFILE=1048576", "TasksMax=1048576", "Delegate=yes"]),
    "nix-daemon.socket": ("Nix Daemon Socket", None, [], ["sockets.target"], "socket", ["ListenStream=/nix/var/nix/daemon-socket/socket"]),
    "nix-gc.service": ("Nix Garbage Collector", nix("nix-2.24.10") + "/bin/nix-collect-garbage --delete-older-than 30d", [], [], "service", ["Type=oneshot"]),
    "nix-gc.timer": ("Run the Nix garbage collector weekly", None, [], ["timers.target"], "timer", ["OnCalendar=weekly", "Persistent=true", "RandomizedDelaySec=45min"]),
    "nix-optimise.service": ("Nix Store Optimiser", nix("nix-2.24.10") + "/bin/nix-store --optimise", ["nix-gc.service"], [], "service", ["Type=oneshot"]),
    "nix-optimise.timer": ("Optimise the Nix store nightly", None, [], ["timers.target"], "timer", ["OnCalendar=03:45", "Persistent=true"]),
    "nscd.service": ("Name Service Cache Daemon (nsncd)", nix("nsncd-1.4.1") + "/bin/nsncd", ["network.target"], ["multi-user.target"], "service", ["Type=notify", "DynamicUser=true", "RuntimeDirectory=nscd"]),
    "polkit.service": ("Authorization Manager", nix("polkit-124-out") + "/lib/polkit-1/polkitd --no-debug", ["dbus.service"], [], "service", ["Type=dbus", "BusName=org.freedesktop.PolicyKit1"]),
    "post-resume.service": ("Post-Resume Actions", nix("unit-script-post-resume-start") + "/bin/post-resume-start", ["suspend.target", "hibernate.target", "hybrid-sleep.target"], ["suspend.target", "hibernate.target", "hybrid-sleep.target"], "service", ["Type=oneshot"]),
    "pre-sleep.service": ("Pre-Sleep Actions", nix("unit-script-pre-sleep-start") + "/bin/pre-sleep-start", [], ["sleep.target"], "service", ["Type=oneshot"]),
    "reload-systemd-vconsole-setup.service": ("Reset console on configuration changes", SYSTEMD + "/bin/systemctl restart systemd-vconsole-setup", [], ["multi-user.target"], "service", ["Type=oneshot", "RemainAfterExit=true"]),
    "rtkit-daemon.service": ("RealtimeKit Scheduling Policy Service", nix("rtkit-0.13") + "/libexec/rtkit-daemon", [], ["graphical.target"], "service", ["Type=dbus", "BusName=org.freedesktop.RealtimeKit1"]),
    "save-hwclock.service": ("Save Hardware Clock", nix("util-linux-2.39.4-bin") + "/sbin/hwclock --systohc --utc", [], ["shutdown.target"], "service", ["Type=oneshot", "DefaultDependencies=no"]),
    "sshd.service": ("SSH Daemon", nix("openssh-9.8p1") + "/bin/sshd -D -f /etc/ssh/sshd_config", ["network.target"], ["multi-user.target"], "service", ["Restart=always", "KillMode=process", "Type=simple"]),
    "suid-sgid-wrappers.service": ("Create SUID/SGID Wrappers", nix("unit-script-suid-sgid-wrappers-start") + "/bin/suid-sgid-wrappers-start", ["run-wrappers.mount"], ["sysinit.target"], "service", ["Type=oneshot", "RemainAfterExit=yes"]),
    "systemd-backlight@.service": ("Load/Save Screen Backlight Brightness of %i", SYSTEMD + "/lib/systemd/systemd-backlight load %i", ["systemd-remount-fs.service"], [], "service", ["Type=oneshot", "RemainAfterExit=yes", "ExecStop=" + SYSTEMD + "/lib/systemd/systemd-backlight save %i"]),
    "systemd-timesyncd.service": ("Network Time Synchronization", SYSTEMD + "/lib/systemd/systemd-timesyncd", ["systemd-sysusers.service"], ["sysinit.target"], "service", ["Type=notify", "User=systemd-timesync", "WatchdogSec=3min"]),
    "thermald.service": ("Thermal Daemon Service", nix("thermald-2.5.8") + "/sbin/thermald --no-daemon --dbus-enable --adaptive", [], ["multi-user.target"], "service", ["Type=dbus", "BusName=org.freedesktop.thermald"]),
    "udisks2.service": ("Disk Manager", nix("udisks-2.10.1") + "/libexec/udisks2/udisksd", [], ["graphical.target"], "service", ["Type=dbus", "BusName=org.freedesktop.UDisks2"]),
    "upower.service": ("Daemon for power management", nix("upower-1.90.4") + "/libexec/upowerd", [], ["graphical.target"], "service", ["Type=dbus", "BusName=org.freedesktop.UPower"]),
    "wpa_supplicant.service": ("WPA supplicant", nix("wpa_supplicant-2.11") + "/bin/wpa_supplicant -u", ["dbus.service"], [], "service", ["Type=dbus", "BusName=fi.w1.wpa_supplicant1"]),
}

WANTS = {
    "multi-user.target.wants": ["NetworkManager.service", "avahi-daemon.service", "firewall.service",
                                "nix-daemon.service", "nscd.service", "reload-systemd-vconsole-setup.service",
                                "sshd.service", "thermald.service"],
    "sockets.target.wants": ["avahi-daemon.socket", "dbus.socket", "nix-daemon.socket"],
    "timers.target.wants": ["fstrim.timer", "logrotate.timer", "nix-gc.timer", "nix-optimise.timer"],
    "graphical.target.wants": ["accounts-daemon.service", "display-manager.service", "rtkit-daemon.service",
                               "udisks2.service", "upower.service"],
}

# gen2: systemd/system stops being one directory link; these become per-file entries.
PER_FILE_UNITS = ["avahi-daemon.service", "bluetooth.service", "dbus.service", "dbus.socket",
                  "display-manager.service", "firewall.service", "fstrim.timer", "getty@.service",
                  "NetworkManager.service", "nix-daemon.service", "nix-daemon.socket", "nix-gc.timer",
                  "nscd.service", "polkit.service", "sshd.service"]


def unit_text(name, gen):
    desc, exe, after, wanted_by, kind, extra = SYSTEM_UNITS[name]
    if name == "sshd.service" and gen == 2:
        # openssh bump in gen2
        exe = exe.replace("openssh-9.8p1", "openssh-9.9p1")
        extra = extra + ["ExecStartPre=" + nix("openssh-9.9p1") + "/bin/sshd -t -f /etc/ssh/sshd_config"]
    if name.endswith(".target"):
        kind = "target"
    return unit(desc, exe, after=after, wanted_by=wanted_by, kind=kind, extra=extra)


def system_units_dir():
    obj = {name: unit_text(name, 1) for name in SYSTEM_UNITS}
    for wants_dir, names in WANTS.items():
        for n in names:
            obj["%s/%s" % (wants_dir, n)] = Link("../" + n)
    return store("system-units", obj)


def user_units_dir(gen):
    obj = {
        "dunst.service": unit("Dunst notification daemon", nix("dunst-1.11.0") + "/bin/dunst",
                              after=["graphical-session.target"], wanted_by=["graphical-session.target"],
                              extra=["Type=dbus", "BusName=org.freedesktop.Notifications"]),
        "gpg-agent.service": unit("GnuPG cryptographic agent and passphrase cache",
                                  nix("gnupg-2.4.5") + "/bin/gpg-agent --supervised",
                                  extra=["ExecReload=" + nix("gnupg-2.4.5") + "/bin/gpgconf --reload gpg-agent"]),
        "gpg-agent.socket": unit("GnuPG cryptographic agent and passphrase cache", kind="socket",
                                 wanted_by=["sockets.target"],
                                 extra=["ListenStream=%t/gnupg/S.gpg-agent", "FileDescriptorName=std",
                                        "SocketMode=0600", "DirectoryMode=0700"]),
        "pipewire.service": unit("PipeWire Multimedia Service", nix("pipewire-1.2.5") + "/bin/pipewire",
                                 after=["pipewire.socket"], wants=["wireplumber.service"],
                                 extra=["Type=simple", "Restart=on-failure", "Slice=session.slice"]),
        "pipewire.socket": unit("PipeWire Multimedia System Sockets", kind="socket", wanted_by=["sockets.target"],
                                extra=["ListenStream=%t/pipewire-0", "ListenStream=%t/pipewire-0-manager"]),
        "wireplumber.service": unit("Multimedia Service Session Manager", nix("wireplumber-0.5.6") + "/bin/wireplumber",
                                    after=["pipewire.service"], wanted_by=["pipewire.service"],
                                    extra=["Type=simple", "Restart=on-failure"]),
        "xdg-desktop-portal.service": unit("Portal service", nix("xdg-desktop-portal-1.18.4") + "/libexec/xdg-desktop-portal",
                                           after=["graphical-session.target"],
                                           extra=["Type=dbus", "BusName=org.freedesktop.portal.Desktop"]),
        "sockets.target.wants/gpg-agent.socket": Link("../gpg-agent.socket"),
        "sockets.target.wants/pipewire.socket": Link("../pipewire.socket"),
        "pipewire.service.wants/wireplumber.service": Link("../wireplumber.service"),
    }
    if gen == 2:
        obj["syncthing.service"] = unit("Syncthing - open source continuous file synchronization",
                                        nix("syncthing-1.27.12") + "/bin/syncthing serve --no-browser --no-restart --logflags=0",
                                        after=["network.target"], wanted_by=["default.target"],
                                        extra=["Restart=on-failure", "SuccessExitStatus=3 4",
                                               "RestartForceExitStatus=3 4"])
        obj["default.target.wants/syncthing.service"] = Link("../syncthing.service")
    return store("user-units", obj)


PAM_SERVICES = {
    "chage": dict(auth=ROOTOK_AUTH),
    "chfn": dict(auth=ROOTOK_AUTH),
    "chgpasswd": dict(auth=ROOTOK_AUTH),
    "chpasswd": dict(auth=ROOTOK_AUTH),
    "chsh": dict(auth=ROOTOK_AUTH),
    "groupadd": dict(auth=ROOTOK_AUTH),
    "groupdel": dict(auth=ROOTOK_AUTH),
    "groupmems": dict(auth=ROOTOK_AUTH),
    "groupmod": dict(auth=ROOTOK_AUTH),
    "i3lock": dict(auth=UNIX_AUTH, session=[]),
    "lightdm": dict(
        auth=[("substack", "login", "")],
        session=[("required", "pam_env.so", "conffile=/etc/pam/environment readenv=0"),
                 ("required", "pam_unix.so", ""),
                 ("required", "pam_loginuid.so", ""),
                 ("optional", SYSTEMD + "/lib/security/pam_systemd.so", ""),
                 ("optional", nix("gnome-keyring-46.2") + "/lib/security/pam_gnome_keyring.so", "auto_start")]),
    "lightdm-autologin": dict(
        auth=[("requisite", "pam_nologin.so", ""),
              ("required", "pam_succeed_if.so", "uid >= 1000 quiet"),
              ("required", "pam_permit.so", "")],
        session=[("required", "pam_unix.so", ""),
                 ("optional", SYSTEMD + "/lib/security/pam_systemd.so", "")]),
    "lightdm-greeter": dict(
        auth=[("required", "pam_succeed_if.so", "audit quiet_success user = lightdm"),
              ("optional", "pam_permit.so", "")],
        session=[("required", "pam_unix.so", ""),
                 ("optional", SYSTEMD + "/lib/security/pam_systemd.so", "")]),
    "login": dict(
        auth=[("required", "pam_faillock.so", "preauth"),
              ("sufficient", "pam_unix.so", "likeauth nullok try_first_pass"),
              ("required", "pam_deny.so", "")],
        session=[("required", "pam_env.so", "conffile=/etc/pam/environment readenv=0"),
                 ("required", "pam_unix.so", ""),
                 ("required", "pam_loginuid.so", ""),
                 ("optional", "pam_lastlog.so", "silent"),
                 ("optional", SYSTEMD + "/lib/security/pam_systemd.so", ""),
                 ("required", "pam_limits.so", "conf=/etc/security/limits.conf")]),
    "other": dict(
        auth=[("required", "pam_warn.so", ""), ("required", "pam_deny.so", "")],
        account=[("required", "pam_warn.so", ""), ("required", "pam_deny.so", "")],
        password=[("required", "pam_warn.so", ""), ("required", "pam_deny.so", "")],
        session=[("required", "pam_warn.so", ""), ("required", "pam_deny.so", "")]),
    "passwd": dict(auth=UNIX_AUTH,
                   password=[("requisite", "pam_pwquality.so", "retry=3"),
                             ("sufficient", "pam_unix.so", "nullok yescrypt use_authtok")]),
    "polkit-1": dict(auth=UNIX_AUTH),
    "runuser": dict(auth=[("sufficient", "pam_rootok.so", "")], password=[]),
    "runuser-l": dict(auth=[("sufficient", "pam_rootok.so", "")], password=[]),
    "sshd": dict(
        auth=[("sufficient", "pam_unix.so", "likeauth try_first_pass"), ("required", "pam_deny.so", "")],
        session=[("required", "pam_env.so", "conffile=/etc/pam/environment readenv=0"),
                 ("required", "pam_unix.so", ""),
                 ("required", "pam_loginuid.so", ""),
                 ("optional", "pam_keyinit.so", "force revoke"),
                 ("optional", SYSTEMD + "/lib/security/pam_systemd.so", ""),
                 ("optional", "pam_motd.so", "motd=/etc/motd")]),
    "su": dict(auth=ROOTOK_AUTH,
               session=[("required", "pam_env.so", "conffile=/etc/pam/environment readenv=0"),
                        ("required", "pam_unix.so", ""),
                        ("optional", "pam_xauth.so", "systemuser=99 xauthpath=" + nix("xauth-1.1.3") + "/bin/xauth")]),
    "sudo": dict(auth=UNIX_AUTH, password=[]),
    "systemd-user": dict(
        auth=[("required", "pam_deny.so", "")],
        session=[("required", "pam_env.so", "conffile=/etc/pam/environment readenv=0"),
                 ("required", "pam_unix.so", ""),
                 ("required", "pam_loginuid.so", ""),
                 ("optional", "pam_keyinit.so", "force revoke"),
                 ("optional", SYSTEMD + "/lib/security/pam_systemd.so", "")]),
    "useradd": dict(auth=ROOTOK_AUTH),
    "userdel": dict(auth=ROOTOK_AUTH),
    "usermod": dict(auth=ROOTOK_AUTH),
    "vlock": dict(auth=UNIX_AUTH, session=[]),
}

U2F = (nix("pam_u2f-1.3.0") + "/lib/security/pam_u2f.so", "authfile=/etc/u2f_mappings cue")


def pam_text(svc, gen):
    spec = copy.deepcopy(PAM_SERVICES[svc])
    if gen == 2 and svc in ("login", "sudo"):
        # gen2 turns on security.pam.u2f for login and sudo
        spec["auth"].insert(0, ("sufficient", U2F[0], U2F[1]))
    return pam_service(**spec)


FONT_CONFD = {
    "10-hinting-slight.conf": ("Set hintslight to hintstyle", '  <match target="pattern">\n    <edit name="hintstyle" mode="append"><const>hintslight</const></edit>\n  </match>\n'),
    "10-scale-bitmap-fonts.conf": ("Bitmap scaling", '  <match target="font">\n    <test name="scalable" compare="eq"><bool>false</bool></test>\n    <edit name="pixelsizefixupfactor" mode="assign"><double>1.0</double></edit>\n  </match>\n'),
    "10-sub-pixel-rgb.conf": ("Enable sub-pixel rendering with the RGB stripes layout", '  <match target="pattern">\n    <edit name="rgba" mode="append"><const>rgb</const></edit>\n  </match>\n'),
    "11-lcdfilter-default.conf": ("Use lcddefault as default for LCD filter", '  <match target="pattern">\n    <edit mode="append" name="lcdfilter"><const>lcddefault</const></edit>\n  </match>\n'),
    "30-metric-aliases.conf": ("Set substitutions for metric-compatible fonts", '  <alias binding="same">\n    <family>Arial</family>\n    <accept><family>Liberation Sans</family></accept>\n  </alias>\n'),
    "45-latin.conf": ("Set families for Latin fonts", '  <alias>\n    <family>DejaVu Sans</family>\n    <default><family>sans-serif</family></default>\n  </alias>\n'),
    "49-sansserif.conf": ("Add sans-serif to the family when no generic name", '  <match target="pattern">\n    <test qual="all" name="family" compare="not_eq"><string>sans-serif</string></test>\n    <edit name="family" mode="append_last"><string>sans-serif</string></edit>\n  </match>\n'),
    "50-user.conf": ("Load per-user customization files", '  <include ignore_missing="yes" prefix="xdg">fontconfig/conf.d</include>\n  <include ignore_missing="yes" prefix="xdg">fontconfig/fonts.conf</include>\n'),
    "52-nixos-default-fonts.conf": ("NixOS default font families", '  <alias binding="same">\n    <family>monospace</family>\n    <prefer><family>DejaVu Sans Mono</family></prefer>\n  </alias>\n  <alias binding="same">\n    <family>emoji</family>\n    <prefer><family>Noto Color Emoji</family></prefer>\n  </alias>\n'),
    "90-synthetic.conf": ("Synthesize oblique and bold faces", '  <match target="font">\n    <test name="slant" compare="eq"><const>roman</const></test>\n    <edit name="matrix" mode="assign"><times><name>matrix</name><matrix><double>1</double><double>0.2</double><double>0</double><double>1</double></matrix></times></edit>\n  </match>\n'),
}


def fontconfig_conf_dir():
    obj = {"conf.d/" + n: fontconfig(d, b) for n, (d, b) in FONT_CONFD.items()}
    # Not matched by the *.conf glob; shows that the glob filters.
    obj["conf.d/README"] = "Files in this directory are linked into /etc/fonts/conf.d by name.\n"
    return store("fontconfig-conf", obj)


def systemd_pkg():
    """Pieces of the systemd package that /etc links to (tmpfiles.d, sysctl.d)."""
    tmp = {
        "home.conf": "Q /home 0755 - - -\nq /srv 0755 - - -\n",
        "journal-nocow.conf": "# Turn off copy-on-write for journal files on btrfs.\nh /var/log/journal - - - - +C\nh /var/log/journal/%m - - - - +C\n",
        "legacy.conf": "d /run/lock 0755 root root -\nL /var/lock - - - - ../run/lock\n",
        "portables.conf": "Q /var/lib/portables 0700\nd /run/portables 0755\n",
        "static-nodes-permissions.conf": "z /dev/snd/seq 0660 - audio -\nz /dev/snd/timer 0660 - audio -\nz /dev/loop-control 0660 - disk -\nz /dev/net/tun 0666 - - -\n",
        "systemd-nologin.conf": "F! /run/nologin 0644 - - - \"System is booting up. Unprivileged users are not permitted to log in yet.\"\n",
        "systemd-tmp.conf": "x /tmp/systemd-private-%b-*\nX /tmp/systemd-private-%b-*/tmp\nx /var/tmp/systemd-private-%b-*\nX /var/tmp/systemd-private-%b-*/tmp\n",
        "systemd.conf": "d /run/user 0755 root root -\nF! /run/utmp 0664 root utmp -\nd /run/systemd/ask-password 0755 root root -\nd /var/log/journal 2755 root systemd-journal - -\n",
        "tmp.conf": "q /tmp 1777 root root 10d\nq /var/tmp 1777 root root 30d\n",
        "var.conf": "q /var 0755 - - -\nL /var/run - - - - ../run\nd /var/log 0755 - - -\nf /var/log/wtmp 0664 root utmp -\nd /var/cache 0755 - - -\nd /var/lib 0755 - - -\n",
        "x11.conf": "D! /tmp/.X11-unix 1777 root root 10d\nD! /tmp/.ICE-unix 1777 root root 10d\nr! /tmp/.X[0-9]*-lock\n",
    }
    sysctl = {
        "50-coredump.conf": "kernel.core_pattern=|" + SYSTEMD + "/lib/systemd/systemd-coredump %P %u %g %s %t %c %h\nkernel.core_pipe_limit=16\n",
        "50-default.conf": "kernel.sysrq = 16\nkernel.core_uses_pid = 1\nnet.ipv4.conf.default.rp_filter = 2\nnet.ipv4.conf.*.rp_filter = 2\nfs.protected_hardlinks = 1\nfs.protected_symlinks = 1\nfs.protected_regular = 1\nfs.protected_fifos = 1\n",
    }
    obj = {"example/tmpfiles.d/" + k: v for k, v in tmp.items()}
    obj.update({"example/sysctl.d/" + k: v for k, v in sysctl.items()})
    obj["example/modprobe.d/systemd.conf"] = "# Load several virtual netdevices without creating extra instances.\noptions bonding max_bonds=0\noptions dummy numdummies=0\noptions ifb numifbs=0\n"
    return store("systemd-256.8", obj), tmp, sysctl


def iana_etc():
    return store("iana-etc-20240318", {
        "etc/protocols": "# Internet protocols (excerpt)\nip\t0\tIP\nicmp\t1\tICMP\nigmp\t2\tIGMP\ntcp\t6\tTCP\nudp\t17\tUDP\nipv6\t41\tIPv6\ngre\t47\tGRE\nesp\t50\tIPSEC-ESP\nipv6-icmp\t58\tIPv6-ICMP\nsctp\t132\tSCTP\n",
        "etc/services": "# Network services (excerpt)\nssh\t\t22/tcp\nsmtp\t\t25/tcp\ndomain\t\t53/tcp\ndomain\t\t53/udp\nhttp\t\t80/tcp\t\twww\nntp\t\t123/udp\nhttps\t\t443/tcp\nipp\t\t631/tcp\nmdns\t\t5353/udp\n",
    })


def ca_bundle(gen):
    if gen == 1:
        name, certs = "nss-cacert-3.104", ["Example Root CA 1", "Example Root CA 2", "Example Global Root G3"]
    else:
        name, certs = "nss-cacert-3.107", ["Example Root CA 2", "Example Global Root G3", "Example Root CA 4 (ECC)"]
    text = "## Bundle of CA root certificates (example, not real certificates)\n\n"
    for c in certs:
        text += "%s\n%s\n%s\n" % (c, "=" * len(c), fake_pem(c))
    return store(name, {"etc/ssl/certs/ca-bundle.crt": text})


def moduli():
    lines = ["# Time Type Tests Tries Size Generator Modulus"]
    for i, size in enumerate((2047, 2047, 3071, 3071, 4095)):
        hexdigits = "".join(hashlib.sha256(("moduli/%d/%d" % (i, j)).encode()).hexdigest()
                            for j in range(size // 256 + 1))[: (size + 1) // 4]
        hexdigits = ("F" + hexdigits[1:-1] + "B").upper()
        lines.append("202401040%d%02d%02d 2 6 100 %d %d %s" % (3 + i, 7 * i + 11, 13 * i % 60, size,
                                                          2 if i % 2 else 5, hexdigits))
    return "\n".join(lines) + "\n"


def sshd_config(gen):
    lines = [
        "UsePAM yes",
        "Banner none",
        "AddressFamily any",
        "Port 22",
        "X11Forwarding no",
        "Subsystem sftp " + nix("openssh-9.8p1") + "/libexec/sftp-server",
        "AuthorizedKeysFile %h/.ssh/authorized_keys /etc/ssh/authorized_keys.d/%u",
        "HostKey /etc/ssh/ssh_host_ed25519_key",
        "HostKey /etc/ssh/ssh_host_rsa_key",
        "KbdInteractiveAuthentication yes",
        "PasswordAuthentication yes",
        "PermitRootLogin prohibit-password",
        "PrintMotd no",
        "StrictModes yes",
        "UseDns no",
        "KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org",
        "Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com",
        "Macs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com",
    ]
    if gen == 2:
        lines = [l.replace("openssh-9.8p1", "openssh-9.9p1") for l in lines]
        lines = [l.replace("PasswordAuthentication yes", "PasswordAuthentication no")
                  .replace("KbdInteractiveAuthentication yes", "KbdInteractiveAuthentication no")
                 for l in lines]
        lines.append("AllowUsers alice")
    return "\n".join(lines) + "\n"


def nix_conf(gen):
    text = ("# WARNING: this file is generated from the nix.* options in\n"
            "# your NixOS configuration, typically\n"
            "# /etc/nixos/configuration.nix.  Do not edit it!\n"
            "allowed-users = *\n"
            "auto-optimise-store = false\n"
            "builders = @/etc/nix/machines\n"
            "cores = 0\n"
            "max-jobs = auto\n"
            "require-sigs = true\n"
            "sandbox = true\n"
            "substituters = https://cache.nixos.org/\n"
            "system-features = nixos-test benchmark big-parallel kvm\n"
            "trusted-public-keys = cache.nixos.org-1:" + nixhash("cache-key")[:43] + "=\n"
            "trusted-substituters = \n"
            "trusted-users = root alice\n")
    if gen == 2:
        text = text.replace("auto-optimise-store = false", "auto-optimise-store = true")
        text += "experimental-features = nix-command flakes\n"
    return text


def registry_json(gen):
    rev = nixhash("nixpkgs-rev", str(gen))
    reg = {
        "flakes": [
            {"exact": True,
             "from": {"id": "nixpkgs", "type": "indirect"},
             "to": {"lastModified": 1727348695 if gen == 1 else 1731139594,
                    "narHash": "sha256-" + nixhash("narhash", str(gen)) + "=",
                    "owner": "NixOS", "repo": "nixpkgs", "rev": (rev + rev)[:40],
                    "type": "github"}},
        ],
        "version": 2,
    }
    return json.dumps(reg, indent=2, sort_keys=True) + "\n"


def dbus_system_conf(gen):
    limit = '  <limit name="max_connections_per_user">512</limit>\n' if gen == 2 else ""
    return ('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"\n'
            ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
            "<busconfig>\n"
            "  <type>system</type>\n"
            "  <user>messagebus</user>\n"
            "  <fork/>\n"
            "  <auth>EXTERNAL</auth>\n"
            "  <listen>unix:path=/run/dbus/system_bus_socket</listen>\n"
            "  <servicehelper>/run/wrappers/bin/dbus-daemon-launch-helper</servicehelper>\n"
            "  <includedir>/etc/dbus-1/system.d</includedir>\n"
            "  <includedir>%s/share/dbus-1/system.d</includedir>\n"
            "%s"
            "</busconfig>\n" % (nix("system-path"), limit))


def dbus_session_conf():
    return ('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"\n'
            ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
            "<busconfig>\n"
            "  <type>session</type>\n"
            "  <keep_umask/>\n"
            "  <listen>unix:tmpdir=/tmp</listen>\n"
            "  <auth>EXTERNAL</auth>\n"
            "  <standard_session_servicedirs/>\n"
            "  <includedir>%s/share/dbus-1/session.d</includedir>\n"
            "</busconfig>\n" % nix("system-path"))


def fonts_conf(gen):
    ver = "2.15.0" if gen == 1 else "2.15.0-nixos2"
    return fontconfig("NixOS system font configuration (fontconfig %s)" % ver,
                      "  <dir>/run/current-system/sw/share/X11/fonts</dir>\n"
                      "  <dir prefix=\"xdg\">fonts</dir>\n"
                      "  <cachedir>/var/cache/fontconfig</cachedir>\n"
                      "  <include ignore_missing=\"yes\">/etc/fonts/conf.d</include>\n"
                      + ("  <config><rescan><int>30</int></rescan></config>\n" if gen == 2 else ""))


def timesync_dispatcher(gen):
    body = ('#!%s/bin/sh\n'
            '# Start or stop systemd-timesyncd as interfaces come and go.\n'
            'case "$2" in\n'
            '  up|vpn-up) %s/bin/systemctl start systemd-timesyncd.service ;;\n'
            '  down) %s/bin/systemctl stop systemd-timesyncd.service ;;\n'
            'esac\n' % (nix("bash-5.2p32"), SYSTEMD, SYSTEMD))
    if gen == 2:
        body = body.replace("  down)", "  connectivity-change) %s/bin/systemctl try-restart systemd-timesyncd.service ;;\n  down)" % SYSTEMD)
    return store("nm-dispatcher-02-timesync", Exec(body))


OS_RELEASE = {
    1: ("24.05", "24.05.6185.a1b2c3d", "uakari"),
    2: ("24.11", "24.11.717.e4f5a6b", "vicuna"),
}


def build(gen):
    etc = {}

    def add(attr, **kw):
        assert attr not in etc, attr
        kw.setdefault("target", attr)
        etc[attr] = entry(**kw)

    def txt(attr, text, **kw):
        add(attr, text=text, **kw)

    def src(attr, source, **kw):
        add(attr, source=source, **kw)

    # -- PAM: one store file per service, as writeText would make them -------
    for svc in sorted(PAM_SERVICES):
        src("pam.d/" + svc, store("etc-pam.d-" + svc, pam_text(svc, gen)))

    # -- ssh ------------------------------------------------------------------
    src("ssh/ssh_config", store("etc-ssh_config",
        "AddressFamily any\nHost *\n  ForwardX11 no\n  GSSAPIAuthentication no\n"
        "  HashKnownHosts no\n  ServerAliveInterval 60\n"
        "GlobalKnownHostsFile /etc/ssh/ssh_known_hosts\n"))
    src("ssh/sshd_config", store("etc-sshd_config", sshd_config(gen)))
    src("ssh/moduli", store("openssh-moduli", moduli()))
    # attribute name differs from the target
    txt("ssh-known-hosts",
        "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + nixhash("gh-hostkey")[:43] + "\n"
        "nas.home.arpa,192.168.178.20 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + nixhash("nas-hostkey")[:43] + "\n",
        target="ssh/ssh_known_hosts")

    # -- nix ------------------------------------------------------------------
    src("nix/nix.conf", store("nix.conf", nix_conf(gen)))
    src("nix/registry.json", store("registry.json", registry_json(gen)))
    # the one copy with a non-root group: nixbld (gid 30000) may read it
    txt("nix/machines",
        "ssh-ng://builder@nas.home.arpa x86_64-linux,aarch64-linux /etc/nix/builder_ed25519 4 2 big-parallel,kvm - -\n",
        mode="0640", gid=30000, group="+30000")

    # -- systemd --------------------------------------------------------------
    if gen == 1:
        src("systemd/system", system_units_dir())
    else:
        for name in PER_FILE_UNITS:
            src("systemd/system/" + name, store("unit-" + name, {name: unit_text(name, 2)}))
        # a wants link becomes its own entry pointing at the unit file itself
        src("systemd/system/multi-user.target.wants/sshd.service",
            store("unit-sshd.service", {"sshd.service": unit_text("sshd.service", 2)}) + "/sshd.service")
        # the per-file entries point at the file inside each unit store dir
        for name in PER_FILE_UNITS:
            etc["systemd/system/" + name]["source"] += "/" + name
    src("systemd/user", user_units_dir(gen))
    logind = ("[Login]\nKillUserProcesses=no\nHandlePowerKey=poweroff\nHandlePowerKeyLongPress=ignore\n"
              "HandleRebootKey=reboot\nHandleSuspendKey=suspend\nHandleHibernateKey=hibernate\n"
              "HandleLidSwitch=suspend\nHandleLidSwitchExternalPower=suspend\nHandleLidSwitchDocked=ignore\n")
    if gen == 2:
        logind = logind.replace("HandleLidSwitchExternalPower=suspend", "HandleLidSwitchExternalPower=lock")
        logind += "IdleAction=suspend\nIdleActionSec=30min\n"
    txt("systemd/logind.conf", logind)
    journald = "[Journal]\nStorage=persistent\nRateLimitInterval=30s\nRateLimitBurst=10000\n"
    journald += "SystemMaxUse=1G\n" if gen == 1 else "SystemMaxUse=2G\nMaxRetentionSec=3month\n"
    txt("systemd/journald.conf", journald)
    txt("systemd/system.conf", "[Manager]\nManagerEnvironment=\"LOCALE_ARCHIVE=/run/current-system/sw/lib/locale/locale-archive\"\nDefaultTimeoutStopSec=30s\nRebootWatchdogSec=10min\n")
    txt("systemd/user.conf", "[Manager]\nDefaultTimeoutStopSec=15s\n")
    txt("systemd/sleep.conf", "[Sleep]\nHibernateDelaySec=2h\nAllowSuspendThenHibernate=yes\n")
    txt("systemd/coredump.conf", "[Coredump]\nStorage=external\nMaxUse=512M\n")
    txt("systemd/timesyncd.conf", "[Time]\nNTP=0.nixos.pool.ntp.org 1.nixos.pool.ntp.org 2.nixos.pool.ntp.org 3.nixos.pool.ntp.org\n")
    txt("systemd/oomd.conf", "[OOM]\nDefaultMemoryPressureDurationSec=20s\n")

    # -- files that must be real files or direct links ------------------------
    sudoers = ("# Generated from the security.sudo options.  Do not edit.\n"
               "Defaults env_keep+=SSH_AUTH_SOCK\n"
               "Defaults lecture = never\n"
               "root     ALL=(ALL:ALL) SETENV: ALL\n"
               "%wheel   ALL=(ALL:ALL) SETENV: ALL\n")
    if gen == 2:
        sudoers = sudoers.replace("Defaults lecture = never\n",
                                  "Defaults lecture = never\nDefaults timestamp_timeout=5\n")
        sudoers += "alice    ALL=(root) NOPASSWD: /run/current-system/sw/bin/systemctl restart NetworkManager\n"
    txt("sudoers", sudoers, mode="0440")
    zone = "Europe/Berlin" if gen == 1 else "America/New_York"
    src("localtime", "/etc/zoneinfo/" + zone, mode="direct-symlink")
    src("mtab", "/proc/mounts", mode="direct-symlink")
    src("zoneinfo", store("tzdata-2024b", {
        "share/zoneinfo/America/New_York": tzif("EST", -18000, "EST5EDT,M3.2.0,M11.1.0"),
        "share/zoneinfo/Europe/Berlin": tzif("CET", 3600, "CET-1CEST,M3.5.0,M10.5.0/3"),
        "share/zoneinfo/UTC": tzif("UTC", 0, "UTC0"),
        "share/zoneinfo/Etc/UTC": Link("../UTC"),
    }) + "/share/zoneinfo")

    # -- fonts: one file plus a glob ------------------------------------------
    src("fonts/fonts.conf", store("fonts.conf", fonts_conf(gen)))
    src("fonts/conf.d", fontconfig_conf_dir() + "/conf.d/*.conf")

    # -- top-level text files -------------------------------------------------
    version, full, codename = OS_RELEASE[gen]
    hosts = "127.0.0.1 localhost\n::1 localhost\n127.0.0.2 kestrel.home.arpa kestrel\n"
    if gen == 2:
        hosts += "192.168.178.20 nas.home.arpa nas\n"
    # gen2: hosts becomes a real file (symlink -> copy)
    txt("hosts", hosts, mode="symlink" if gen == 1 else "0644")
    txt("hostname", "kestrel\n")
    txt("issue", "\n\x1b[1;32m<<< Welcome to NixOS %s (\\m) - \\l >>>\x1b[0m\n\n" % full
        + ("" if gen == 1 else "Run 'nixos-help' for the NixOS manual.\n\n"))
    txt("nsswitch.conf", "passwd:    files systemd\ngroup:     files [success=merge] systemd\nshadow:    files\n"
        "sudoers:   files\n\nhosts:     mymachines files mdns_minimal [NOTFOUND=return] dns mdns myhostname\n"
        "networks:  files\n\nethers:    files\nservices:  files\nprotocols: files\nrpc:       files\n")
    txt("os-release", 'ANSI_COLOR="1;34"\nBUG_REPORT_URL="https://github.com/NixOS/nixpkgs/issues"\n'
        'BUILD_ID="%s"\nDOCUMENTATION_URL="https://nixos.org/learn.html"\nHOME_URL="https://nixos.org/"\n'
        'ID=nixos\nLOGO="nix-snowflake"\nNAME=NixOS\nPRETTY_NAME="NixOS %s (%s)"\n'
        'VERSION="%s (%s)"\nVERSION_CODENAME=%s\nVERSION_ID="%s"\n'
        % (full, version, codename.capitalize(), version, codename.capitalize(), codename, version))
    txt("lsb-release", 'LSB_VERSION="%s (%s)"\nDISTRIB_ID=nixos\nDISTRIB_RELEASE="%s"\n'
        'DISTRIB_CODENAME=%s\nDISTRIB_DESCRIPTION="NixOS %s (%s)"\n'
        % (full, codename.capitalize(), version, codename, version, codename.capitalize()))
    profile = ("# /etc/profile: DO NOT EDIT -- this file has been generated automatically.\n"
               "if [ -n \"$__ETC_PROFILE_DONE\" ]; then return; fi\n__ETC_PROFILE_DONE=1\n"
               "__NIXOS_SET_ENVIRONMENT_DONE=1\n"
               ". /etc/set-environment 2>/dev/null || true\n"
               "if [ -n \"${BASH_VERSION:-}\" ]; then . /etc/bashrc; fi\n")
    if gen == 2:
        profile += "umask 027\n"
    txt("profile", profile)
    txt("bashrc", "# /etc/bashrc: DO NOT EDIT -- this file has been generated automatically.\n"
        "[ -n \"$PS1\" ] || return\nif [ -n \"$__ETC_BASHRC_SOURCED\" ]; then return; fi\n__ETC_BASHRC_SOURCED=1\n"
        "shopt -s checkwinsize histappend\nHISTCONTROL=erasedups:ignorespace\n"
        "PS1='\\n\\[\\033[1;32m\\][\\u@\\h:\\w]\\$\\[\\033[0m\\] '\n")
    txt("bash_logout", "# /etc/bash_logout: executed by bash(1) when a login shell exits.\n"
        "if [ \"$SHLVL\" = 1 ]; then clear; fi\n")
    txt("inputrc", "set bell-style none\nset completion-ignore-case on\nset mark-symlinked-directories on\n"
        "\"\\e[A\": history-search-backward\n\"\\e[B\": history-search-forward\n")
    txt("resolvconf.conf", "resolv_conf=/etc/resolv.conf\nresolv_conf_local_only=NO\n"
        "name_servers_append='9.9.9.9 2620:fe::fe'\nprivate_interfaces='*'\n")
    txt("environment", "EDITOR=nano\nPAGER=less\n")
    # gen1: a plain copy that becomes a symlink in gen2 (copy -> symlink)
    txt("login.defs", "DEFAULT_HOME yes\nENCRYPT_METHOD YESCRYPT\nGID_MIN 1000\nGID_MAX 29999\n"
        "SYS_GID_MIN 400\nSYS_GID_MAX 999\nTTYGROUP tty\nTTYPERM 0620\nUMASK 077\n"
        "UID_MIN 1000\nUID_MAX 29999\nSYS_UID_MIN 400\nSYS_UID_MAX 999\n",
        mode="0644" if gen == 1 else "symlink")
    txt("shells", "/run/current-system/sw/bin/bash\n/run/current-system/sw/bin/sh\n"
        "/run/current-system/sw/bin/zsh\n" + nix("bash-interactive-5.2p32") + "/bin/bash\n"
        + nix("bash-interactive-5.2p32") + "/bin/sh\n" + nix("zsh-5.9") + "/bin/zsh\n")
    txt("locale.conf", "LANG=en_US.UTF-8\nLC_TIME=de_DE.UTF-8\nLC_PAPER=de_DE.UTF-8\nLC_MEASUREMENT=de_DE.UTF-8\n")
    txt("vconsole.conf", "KEYMAP=de-latin1\nFONT=ter-v24n\n")
    txt("machine-info", "PRETTY_HOSTNAME=\"Kestrel\"\nCHASSIS=laptop\nDEPLOYMENT=production\n")
    txt("fstab", "# This is a generated file.  Do not edit!\n#\n"
        "# Filesystems.\n/dev/disk/by-uuid/3c1f0d2e-5b7a-4e0d-9a51-8e2f6c4b7d10 / ext4 defaults,noatime 0 1\n"
        "/dev/disk/by-uuid/1A2B-3C4D /boot vfat fmask=0077,dmask=0077 0 2\n\n"
        "# Swap devices.\n/dev/disk/by-partlabel/swap none swap defaults 0 0\n")
    txt("host.conf", "multi on\n")
    txt("nanorc", "set nowrap\nset tabsize 4\nset autoindent\ninclude \"" + nix("nano-8.1") + "/share/nano/*.nanorc\"\n")
    txt("man_db.conf", "MANDB_MAP /run/current-system/sw/share/man /var/cache/man/nixos\n"
        "MANPATH_MAP /run/current-system/sw/bin /run/current-system/sw/share/man\n")
    txt("fuse.conf", "user_allow_other\nmount_max = 1000\n")
    txt("gitconfig", "[init]\n\tdefaultBranch = main\n[safe]\n\tdirectory = /etc/nixos\n")
    txt("zshenv", "# /etc/zshenv: DO NOT EDIT -- this file has been generated automatically.\n"
        "if [ -n \"${__ETC_ZSHENV_SOURCED-}\" ]; then return; fi\n__ETC_ZSHENV_SOURCED=1\n"
        ". /etc/set-environment 2>/dev/null || true\n")
    txt("zshrc", "# /etc/zshrc: DO NOT EDIT -- this file has been generated automatically.\n"
        "if [ -n \"$__ETC_ZSHRC_SOURCED\" -o -n \"$NOSYSZSHRC\" ]; then return; fi\n__ETC_ZSHRC_SOURCED=1\n"
        "HISTSIZE=5000\nSAVEHIST=5000\nsetopt HIST_IGNORE_DUPS SHARE_HISTORY\nautoload -U compinit && compinit\n")
    txt("zprofile", "# /etc/zprofile: DO NOT EDIT -- this file has been generated automatically.\n"
        "if [ -n \"$__ETC_ZPROFILE_SOURCED\" ]; then return; fi\n__ETC_ZPROFILE_SOURCED=1\n")
    txt("zinputrc", "bindkey -e\nbindkey '^[[H' beginning-of-line\nbindkey '^[[F' end-of-line\n")
    txt("e2fsck.conf", "[options]\nbroken_system_clock = true\n")
    txt("nscd.conf", "server-user nscd\nenable-cache passwd yes\npositive-time-to-live passwd 0\n"
        "enable-cache group yes\npositive-time-to-live group 0\nenable-cache hosts yes\n"
        "positive-time-to-live hosts 600\nnegative-time-to-live hosts 5\n")
    txt("default/useradd", "GROUP=100\nHOME=/home\nSHELL=/run/current-system/sw/bin/bash\n")
    txt("mdadm.conf", "PROGRAM " + nix("mdadm-4.3") + "/bin/true\n")
    txt("pam/environment", "LOCALE_ARCHIVE DEFAULT=\"/run/current-system/sw/lib/locale/locale-archive\"\n"
        "PATH DEFAULT=\"${HOME}/.nix-profile/bin:/run/current-system/sw/bin\"\n"
        "XDG_CONFIG_DIRS DEFAULT=\"/etc/xdg:/run/current-system/sw/etc/xdg\"\n")
    txt("netgroup", "")
    txt("motd", "Unauthorized access is prohibited.\n", enable=False)  # the disabled entry
    iana = iana_etc()
    src("protocols", iana + "/etc/protocols")
    src("services", iana + "/etc/services")
    src("rpc", store("glibc-2.39-52-rpc", "portmapper\t100000\tportmap sunrpc rpcbind\nrstatd\t\t100001\trstat rup perfmeter\n"
                     "nfs\t\t100003\tnfsprog\nmountd\t\t100005\tmount showmount\nnlockmgr\t100021\n"))
    src("ethertypes", store("netbase-6.4-ethertypes", "IPv4\t0800\tip ip4\nARP\t0806\tether-arp\n"
                            "VLAN\t8100\t8021q\nIPv6\t86DD\tip6\nLLDP\t88CC\tlldp\n"))
    src("mime.types", store("mailcap-2.1.54-mime.types",
                            "# MIME type\t\t\tExtensions\napplication/json\t\tjson\napplication/pdf\t\t\tpdf\n"
                            "image/png\t\t\tpng\nimage/svg+xml\t\t\tsvg svgz\ntext/html\t\t\thtml htm\n"
                            "text/plain\t\t\ttxt text conf\n"))

    # -- X11: the whole tree disappears in gen2 --------------------------------
    if gen == 1:
        txt("X11/xorg.conf.d/00-keyboard.conf", 'Section "InputClass"\n  Identifier "Keyboard catchall"\n'
            '  MatchIsKeyboard "on"\n  Option "XkbModel" "pc104"\n  Option "XkbLayout" "de"\n'
            '  Option "XkbOptions" "caps:escape"\nEndSection\n')
        txt("X11/xorg.conf.d/10-libinput.conf", 'Section "InputClass"\n  Identifier "libinput pointer catchall"\n'
            '  MatchIsPointer "on"\n  MatchDevicePath "/dev/input/event*"\n  Driver "libinput"\n'
            '  Option "AccelProfile" "adaptive"\nEndSection\n')
        txt("X11/xorg.conf.d/20-intel.conf", 'Section "Device"\n  Identifier "Intel Graphics"\n'
            '  Driver "modesetting"\n  Option "TearFree" "true"\nEndSection\n')
        txt("X11/xorg.conf.d/30-touchpad.conf", 'Section "InputClass"\n  Identifier "touchpad"\n'
            '  MatchIsTouchpad "on"\n  Driver "libinput"\n  Option "Tapping" "on"\n'
            '  Option "NaturalScrolling" "true"\n  Option "DisableWhileTyping" "on"\nEndSection\n')
        txt("X11/xorg.conf.d/40-monitors.conf", 'Section "Monitor"\n  Identifier "eDP-1"\n'
            '  Option "Primary" "true"\n  Option "DPMS" "true"\nEndSection\n'
            'Section "Monitor"\n  Identifier "DP-2"\n  Option "RightOf" "eDP-1"\nEndSection\n')

    # -- xdg ------------------------------------------------------------------
    txt("xdg/autostart/My App.desktop", desktop_entry("My App", "myapp --tray", "Start My App minimised to the tray"))
    txt("xdg/autostart/nm-applet.desktop", desktop_entry("NetworkManager Applet", "nm-applet --indicator", "Manage network connections"))
    if gen == 1:
        txt("xdg/autostart/blueman.desktop", desktop_entry("Blueman Applet", "blueman-applet", "Blueman Bluetooth Manager"))
    txt("xdg/autostart/xdg-user-dirs.desktop", desktop_entry("User folders update", "xdg-user-dirs-update", "Update common folders names to match current locale", "OnlyShowIn=GNOME;LXQt;XFCE;i3;\n"))
    txt("xdg/autostart/gnome-keyring-secrets.desktop", desktop_entry("Secret Storage Service", nix("gnome-keyring-46.2") + "/bin/gnome-keyring-daemon --start --components=secrets", "GNOME Keyring: Secret Service", "X-GNOME-AutoRestart=false\nNoDisplay=true\n"))
    txt("xdg/autostart/redshift-gtk.desktop", desktop_entry("Redshift", "redshift-gtk -l 52.5:13.4", "Color temperature adjustment"))
    if gen == 2:
        txt("xdg/autostart/syncthing.desktop", desktop_entry("Syncthing Tray", "syncthingtray --wait", "Tray icon for Syncthing"))
    mime = ("[Default Applications]\ntext/html=firefox.desktop\nx-scheme-handler/http=firefox.desktop\n"
            "x-scheme-handler/https=firefox.desktop\napplication/pdf=org.pwmt.zathura.desktop\n")
    if gen == 2:
        mime += "image/png=imv.desktop\nimage/jpeg=imv.desktop\ninode/directory=thunar.desktop\n"
    txt("xdg/mimeapps.list", mime)
    txt("xdg/user-dirs.defaults", "DESKTOP=Desktop\nDOWNLOAD=Downloads\nDOCUMENTS=Documents\nMUSIC=Music\n"
        "PICTURES=Pictures\nVIDEOS=Videos\n")
    txt("xdg/user-dirs.conf", "enabled=True\nfilename_encoding=UTF-8\n")
    txt("xdg/menus/applications.menu", '<!DOCTYPE Menu PUBLIC "-//freedesktop//DTD Menu 1.0//EN"\n'
        ' "http://www.freedesktop.org/standards/menu-spec/1.0/menu.dtd">\n'
        "<Menu>\n  <Name>Applications</Name>\n  <DefaultAppDirs/>\n  <DefaultDirectoryDirs/>\n"
        "  <Include><All/></Include>\n</Menu>\n")
    txt("xdg/xdg-desktop-portal/portals.conf", "[preferred]\ndefault=gtk\norg.freedesktop.impl.portal.Secret=gnome-keyring\n")
    txt("xdg/gtk-3.0/settings.ini", "[Settings]\ngtk-theme-name=Adwaita-dark\ngtk-icon-theme-name=Papirus-Dark\n"
        "gtk-font-name=Inter 10\ngtk-application-prefer-dark-theme=1\n")
    txt("xdg/gtk-4.0/settings.ini", "[Settings]\ngtk-icon-theme-name=Papirus-Dark\ngtk-font-name=Inter 10\n"
        "gtk-application-prefer-dark-theme=1\n")
    txt("xdg/picom.conf", "backend = \"glx\";\nvsync = true;\nshadow = false;\nfading = true;\n"
        "fade-delta = 4;\nunredir-if-possible = true;\n")
    txt("xdg/dunst/dunstrc", "[global]\n    font = Inter 10\n    origin = top-right\n    offset = 12x36\n"
        "    frame_width = 1\n[urgency_critical]\n    timeout = 0\n")
    txt("xdg/i3status/config", "general {\n  colors = true\n  interval = 5\n}\norder += \"wireless _first_\"\n"
        "order += \"battery all\"\norder += \"tztime local\"\ntztime local {\n  format = \"%Y-%m-%d %H:%M\"\n}\n")
    txt("xdg/QtProject/qtlogging.ini", "[Rules]\n*.debug=false\nqt.qpa.xcb.warning=false\n")

    # -- dbus -----------------------------------------------------------------
    src("dbus-1/system.conf", store("dbus-system.conf", dbus_system_conf(gen)))
    src("dbus-1/session.conf", store("dbus-session.conf", dbus_session_conf()))
    for svc, grp in (("avahi-dbus.conf", None), ("org.bluez.conf", "wheel"),
                     ("org.freedesktop.Accounts.conf", None),
                     ("org.freedesktop.NetworkManager.conf", "networkmanager"),
                     ("org.freedesktop.RealtimeKit1.conf", None), ("org.freedesktop.UDisks2.conf", None),
                     ("org.freedesktop.UPower.conf", None), ("wpa_supplicant.conf", "wheel")):
        bus_name = {"avahi-dbus.conf": "org.freedesktop.Avahi",
                    "wpa_supplicant.conf": "fi.w1.wpa_supplicant1"}.get(svc, svc[:-len(".conf")])
        txt("dbus-1/system.d/" + svc, dbus_policy(bus_name, grp))

    # -- NetworkManager -------------------------------------------------------
    nm = ("[connection]\nethernet.cloned-mac-address=preserve\nwifi.cloned-mac-address=preserve\n"
          "wifi.powersave=2\n\n[device]\nwifi.scan-rand-mac-address=yes\nwifi.backend=wpa_supplicant\n\n"
          "[keyfile]\nunmanaged-devices=interface-name:virbr*\n\n[logging]\naudit=false\nlevel=WARN\n\n"
          "[main]\ndhcp=internal\ndns=default\nplugins=keyfile\nrc-manager=resolvconf\n")
    if gen == 2:
        nm = nm.replace("unmanaged-devices=interface-name:virbr*",
                        "unmanaged-devices=interface-name:virbr*;interface-name:podman*;interface-name:veth*")
    txt("NetworkManager/NetworkManager.conf", nm)
    txt("NetworkManager/conf.d/dns.conf", "[global-dns-domain-*]\nservers=9.9.9.9,149.112.112.112\n")
    txt("NetworkManager/conf.d/wifi-powersave.conf", "[connection]\nwifi.powersave=3\n")
    src("NetworkManager/dispatcher.d/02-timesync", timesync_dispatcher(gen), mode="0544")
    txt("NetworkManager/dispatcher.d/99-vpn-dns", "#!" + nix("bash-5.2p32") + "/bin/sh\n"
        "# Flush the nscd hosts cache whenever a VPN changes DNS.\n"
        "[ \"$2\" = vpn-up ] || [ \"$2\" = vpn-down ] || exit 0\n"
        "exec " + SYSTEMD + "/bin/systemctl try-reload-or-restart nscd.service\n", mode="0544")

    # -- udev -----------------------------------------------------------------
    txt("udev/udev.conf", "udev_log=err\nevent_timeout=180\n")
    rules = {
        "50-udisks.rules": 'SUBSYSTEM=="block", ENV{ID_FS_TYPE}=="crypto_LUKS", ENV{UDISKS_IGNORE}="0"\n',
        "60-ioschedulers.rules": 'ACTION=="add|change", KERNEL=="nvme[0-9]n[0-9]", ATTR{queue/scheduler}="none"\n'
                                 'ACTION=="add|change", KERNEL=="sd[a-z]", ATTR{queue/rotational}=="1", ATTR{queue/scheduler}="bfq"\n',
        "60-steam-input.rules": 'KERNEL=="uinput", SUBSYSTEM=="misc", TAG+="uaccess", OPTIONS+="static_node=uinput"\n'
                                'KERNEL=="hidraw*", ATTRS{idVendor}=="28de", MODE="0660", TAG+="uaccess"\n',
        "69-probe-rs.rules": 'ATTRS{idVendor}=="0483", ATTRS{idProduct}=="374b", MODE="0660", TAG+="uaccess"\n'
                             'ATTRS{idVendor}=="1366", ATTRS{idProduct}=="0105", MODE="0660", TAG+="uaccess"\n',
        "70-yubikey.rules": 'ACTION=="remove", ENV{ID_BUS}=="usb", ENV{ID_MODEL_ID}=="0407", ENV{ID_VENDOR_ID}=="1050", '
                            'RUN+="' + SYSTEMD + '/bin/loginctl lock-sessions"\n',
        "90-backlight.rules": 'ACTION=="add", SUBSYSTEM=="backlight", RUN+="' + nix("coreutils-9.5") + '/bin/chgrp video $sys$devpath/brightness", '
                              'RUN+="' + nix("coreutils-9.5") + '/bin/chmod g+w $sys$devpath/brightness"\n',
        "99-local.rules": 'SUBSYSTEM=="usb", ATTRS{idVendor}=="1209", ATTRS{idProduct}=="5bf0", GROUP="plugdev", MODE="0660"\n',
        "99-usb-serial.rules": 'SUBSYSTEM=="tty", ATTRS{idVendor}=="10c4", ATTRS{idProduct}=="ea60", SYMLINK+="ttyCP2102", GROUP="dialout"\n',
    }
    if gen == 2:
        del rules["69-probe-rs.rules"]
        rules["70-u2f.rules"] = ('ACTION!="add|change", GOTO="u2f_end"\n'
                                 'KERNEL=="hidraw*", SUBSYSTEM=="hidraw", ATTRS{idVendor}=="1050", TAG+="uaccess"\n'
                                 'LABEL="u2f_end"\n')
        rules["99-local.rules"] += 'SUBSYSTEM=="net", ACTION=="add", ATTR{address}=="3c:7c:3f:1e:22:90", NAME="lan0"\n'
    for name in sorted(rules):
        txt("udev/rules.d/" + name, rules[name])
    txt("udev/hwdb.d/60-keyboard.hwdb", "evdev:atkbd:dmi:bvn*:bvr*:bd*:svnExample*:pn*\n KEYBOARD_KEY_3a=esc\n")
    txt("udev/hwdb.d/61-trackpoint.hwdb", "evdev:name:TPPS/2 Elan TrackPoint:*\n POINTINGSTICK_SENSITIVITY=200\n")

    # -- kernel modules and sysctl ---------------------------------------------
    sd, sd_tmp, sd_sysctl = systemd_pkg()
    txt("modprobe.d/nixos.conf", "blacklist nouveau\noptions kvm_intel nested=1\n")
    src("modprobe.d/ubuntu.conf", store("kmod-blacklist-ubuntu-30+20230601", {
        "modprobe.conf": "# Modules that are known to misbehave or are rarely wanted.\nblacklist evbug\n"
                         "blacklist usbmouse\nblacklist usbkbd\nblacklist eepro100\nblacklist de4x5\n"
                         "blacklist pcspkr\nblacklist snd_pcsp\n"}) + "/modprobe.conf")
    src("modprobe.d/systemd.conf", sd + "/example/modprobe.d/systemd.conf")
    txt("modprobe.d/blacklist-pcspkr.conf", "blacklist pcspkr\n")
    txt("modprobe.d/iwlwifi.conf", "options iwlwifi power_save=1\noptions iwlmvm power_scheme=3\n")
    txt("modprobe.d/snd-hda-intel.conf", "options snd_hda_intel power_save=1\n")
    txt("modprobe.d/kvm.conf", "options kvm ignore_msrs=1 report_ignored_msrs=0\n")
    txt("modules-load.d/nixos.conf", "kvm-intel\nbtusb\nuinput\n")
    sysctl = "net.core.default_qdisc = fq\nnet.ipv4.tcp_congestion_control = bbr\nkernel.kptr_restrict = 1\n"
    if gen == 2:
        sysctl += "kernel.unprivileged_userns_clone = 1\nuser.max_user_namespaces = 28633\n"
    txt("sysctl.d/60-nixos.conf", sysctl)
    for name in sorted(sd_sysctl):
        src("sysctl.d/" + name, sd + "/example/sysctl.d/" + name)
    txt("sysctl.d/70-inotify.conf", "fs.inotify.max_user_watches = 524288\nfs.inotify.max_user_instances = 1024\n")
    txt("sysctl.d/99-desktop.conf", "vm.swappiness = 10\nvm.dirty_ratio = 10\nvm.dirty_background_ratio = 5\n")

    # -- tmpfiles.d -----------------------------------------------------------
    tmp00 = ("d /nix/var 0755 root root - -\nL+ /nix/var/nix/gcroots/booted-system 0755 root root - /run/booted-system\n"
             "d /run/lock 0755 root root - -\nd /var/db 0755 root root - -\nL /var/lock - - - - ../run/lock\n")
    if gen == 2:
        tmp00 += "d /var/lib/syncthing 0700 alice users - -\n"
    txt("tmpfiles.d/00-nixos.conf", tmp00)
    for name in sorted(sd_tmp):
        src("tmpfiles.d/" + name, sd + "/example/tmpfiles.d/" + name)
    src("tmpfiles.d/nix-daemon.conf", store("nix-2.24.10-tmpfiles", "d /nix/var/nix/daemon-socket 0755 root root - -\n"))
    txt("tmpfiles.d/NetworkManager.conf", "d /var/lib/NetworkManager-fortisslvpn 0700 root root -\n"
        "d /var/lib/misc 0755 root root -\n")
    if gen == 2:
        txt("tmpfiles.d/podman.conf", "d /run/podman 0700 root root\nD! /var/lib/containers/storage/tmp 0700 root root\n"
            "D! /run/containers 0700 root root\n")

    # -- desktop services -----------------------------------------------------
    txt("polkit-1/rules.d/10-nixos.rules", 'polkit.addAdminRule(function(action, subject) {\n  return ["unix-group:wheel"];\n});\n\n'
        'polkit.addRule(function(action, subject) {\n  if (action.id == "org.freedesktop.udisks2.filesystem-mount" &&\n'
        '      subject.isInGroup("users")) {\n    return polkit.Result.YES;\n  }\n});\n')
    txt("avahi/avahi-daemon.conf", "[server]\nuse-ipv4=yes\nuse-ipv6=yes\nallow-interfaces=wlan0,lan0\n\n"
        "[wide-area]\nenable-wide-area=yes\n\n[publish]\ndisable-publishing=no\npublish-workstation=yes\n")
    txt("avahi/services/ssh.service", '<?xml version="1.0" standalone="no"?>\n'
        '<!DOCTYPE service-group SYSTEM "avahi-service.dtd">\n<service-group>\n'
        '  <name replace-wildcards="yes">%h</name>\n  <service>\n    <type>_ssh._tcp</type>\n'
        '    <port>22</port>\n  </service>\n</service-group>\n')
    txt("bluetooth/main.conf", "[General]\nControllerMode=dual\nExperimental=true\n\n[Policy]\nAutoEnable=true\n")
    if gen == 1:
        txt("bluetooth/input.conf", "[General]\nUserspaceHID=true\nIdleTimeout=30\n")
    txt("lightdm/lightdm.conf", "[LightDM]\ngreeter-user = lightdm\ngreeters-directory = " + nix("lightdm-gtk-greeter-xgreeters") + "\n"
        "sessions-directory = " + nix("desktops") + "/share/xsessions\n\n[Seat:*]\nxserver-command = "
        + nix("xorg-server-21.1.14") + "/bin/X -nolisten tcp\ngreeter-session = lightdm-gtk-greeter\nuser-session = none+i3\n")
    txt("lightdm/lightdm-gtk-greeter.conf", "[greeter]\ntheme-name = Adwaita-dark\nicon-theme-name = Papirus-Dark\n"
        "font-name = Inter 11\nclock-format = %H:%M\nindicators = ~host;~spacer;~clock;~spacer;~session;~power\n")
    txt("lightdm/users.conf", "[UserList]\nminimum-uid=1000\nhidden-users=nixbld\nhidden-shells=/run/current-system/sw/bin/nologin\n")
    txt("i3/config", "set $mod Mod4\nfont pango:Inter 10\nbindsym $mod+Return exec alacritty\n"
        "bindsym $mod+d exec rofi -show drun\nbindsym $mod+Shift+q kill\nbar {\n  status_command i3status\n}\n")
    txt("geoclue/geoclue.conf", "[agent]\nwhitelist=geoclue-demo-agent;gnome-shell;io.elementary.desktop.agent-geoclue2\n\n"
        "[wifi]\nenable=true\nurl=https://location.services.example.org/v1/geolocate\n\n[redshift]\nallowed=true\nsystem=false\nusers=\n")
    txt("fwupd/fwupd.conf", "[fwupd]\nDisabledPlugins=test;test_ble;invalid\nOnlyTrusted=true\nUpdateMotd=false\n")
    txt("fwupd/remotes.d/lvfs.conf", "[fwupd Remote]\nEnabled=true\nTitle=Linux Vendor Firmware Service\n"
        "MetadataURI=https://cdn.fwupd.org/downloads/firmware.xml.gz\nApprovalRequired=false\n")
    txt("libinput/local-overrides.quirks", "[Kestrel Touchpad]\nMatchUdevType=touchpad\nMatchName=*ELAN*\n"
        "AttrPalmPressureThreshold=150\n")
    src("lvm/lvm.conf", store("lvm2-2.03.26-lvm.conf", "config {\n\tcheckpoint = 0\n}\ndevices {\n\tobtain_device_list_from_udev = 1\n"
                             "\tmulticapabilities = 0\n}\nglobal {\n\tuse_lvmetad = 0\n\tsystem_id_source = \"none\"\n}\n"))
    txt("iproute2/rt_tables", "255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n100\tvpn\n")
    txt("iproute2/rt_protos", "0\tunspec\n1\tredirect\n2\tkernel\n3\tboot\n4\tstatic\n")
    txt("pipewire/pipewire.conf.d/10-clock.conf", "context.properties = {\n  default.clock.rate = 48000\n"
        "  default.clock.allowed-rates = [ 44100 48000 96000 ]\n  default.clock.quantum = 512\n}\n")
    txt("pipewire/pipewire-pulse.conf.d/10-latency.conf", "pulse.properties = {\n  pulse.min.req = 256/48000\n"
        "  pulse.default.req = 512/48000\n  pulse.min.quantum = 256/48000\n}\n")
    txt("wireplumber/wireplumber.conf.d/51-bluez.conf", "monitor.bluez.properties = {\n  bluez5.enable-sbc-xq = true\n"
        "  bluez5.enable-msbc = true\n  bluez5.roles = [ a2dp_sink a2dp_source hsp_hs hfp_hf hfp_ag ]\n}\n")
    txt("udisks2/udisks2.conf", "[udisks2]\nmodules=*\nmodules_load_preference=ondemand\n\n[defaults]\nencryption=luks2\n")
    txt("UPower/UPower.conf", "[UPower]\nUsePercentageForPolicy=true\nPercentageLow=15\nPercentageCritical=5\n"
        "PercentageAction=3\nCriticalPowerAction=HybridSleep\n")
    txt("dconf/profile/user", "user-db:user\nfile-db:" + nix("dconf-system-db") + "/db/local\n")
    txt("firefox/policies/policies.json", json.dumps({"policies": {
        "DisableTelemetry": True, "DisablePocket": True, "DNSOverHTTPS": {"Enabled": False},
        "ExtensionSettings": {"uBlock0@raymondhill.net": {"installation_mode": "force_installed",
                              "install_url": "https://addons.mozilla.org/firefox/downloads/latest/ublock-origin/latest.xpi"}}}},
        indent=2, sort_keys=True) + "\n")
    txt("chromium/policies/managed/default.json", json.dumps({
        "DefaultSearchProviderEnabled": True, "DefaultSearchProviderName": "DuckDuckGo",
        "DefaultSearchProviderSearchURL": "https://duckduckgo.com/?q={searchTerms}",
        "PasswordManagerEnabled": False}, indent=2, sort_keys=True) + "\n")
    ca = ca_bundle(gen) + "/etc/ssl/certs/ca-bundle.crt"
    src("ssl/certs/ca-certificates.crt", ca)
    src("ssl/certs/ca-bundle.crt", ca)
    src("pki/tls/certs/ca-bundle.crt", ca)

    # -- gen2 additions: podman (a new nested dir) and u2f ----------------------
    if gen == 2:
        txt("containers/policy.json", json.dumps({"default": [{"type": "insecureAcceptAnything"}],
                                                  "transports": {"docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}}},
                                                 indent=2, sort_keys=True) + "\n")
        txt("containers/registries.conf", "[registries]\n[registries.block]\nregistries = []\n\n"
            "[registries.insecure]\nregistries = []\n\n[registries.search]\nregistries = [\"docker.io\", \"quay.io\"]\n")
        txt("containers/storage.conf", "[storage]\ndriver = \"overlay\"\ngraphroot = \"/var/lib/containers/storage\"\n"
            "runroot = \"/run/containers/storage\"\n")
        txt("containers/registries.conf.d/00-shortnames.conf", "[aliases]\n\"alpine\" = \"docker.io/library/alpine\"\n"
            "\"debian\" = \"docker.io/library/debian\"\n\"fedora\" = \"registry.fedoraproject.org/fedora\"\n"
            "\"nixos/nix\" = \"docker.io/nixos/nix\"\n")
        txt("u2f_mappings", "alice:" + nixhash("u2f-keyhandle") * 2 + ",es256,+presence\n")

    return {"etc": etc}


# ---------------------------------------------------------------------------
# Self-check and summary
# ---------------------------------------------------------------------------

def expand(etc):
    """(target, kind, attr) for every enabled entry, globs expanded, dir links as one."""
    out = []
    for attr in sorted(etc):
        e = etc[attr]
        if not e["enable"]:
            continue
        s, mode = e["source"], e["mode"]
        if s is not None and "*" in s:
            matches = sorted(glob.glob(os.path.join(HERE, s)))
            assert matches, "glob matches nothing: " + s
            for m in matches:
                out.append((e["target"] + "/" + os.path.basename(m), "glob-symlink", attr))
            continue
        if mode == "direct-symlink":
            kind = "direct-symlink"
        elif mode != "symlink":
            kind = "copy"
        elif s is not None and os.path.isdir(os.path.join(HERE, s)):
            kind = "dir-symlink"
        else:
            kind = "symlink"
        if s is not None and not s.startswith("/"):
            assert os.path.exists(os.path.join(HERE, s)), "missing store source: " + s
        assert (s is None) != (e["text"] is None), "exactly one of source/text: " + attr
        out.append((e["target"], kind, attr))
    targets = [t for t, _, _ in out]
    assert len(targets) == len(set(targets)), "duplicate targets"
    tset = set(targets)
    for t in targets:
        parts = t.split("/")
        for i in range(1, len(parts)):
            assert "/".join(parts[:i]) not in tset, "file and directory at one path: " + t
    return out


def summary(label, etc):
    exp = expand(etc)
    kinds = {}
    for _, k, attr in exp:
        kinds[k] = kinds.get(k, 0) + 1
    n_text = sum(1 for _, _, attr in exp if etc[attr]["text"] is not None)
    print("%s: %d attrs (%d disabled), %d entries after glob expansion; text=%d; %s" % (
        label, len(etc), sum(1 for e in etc.values() if not e["enable"]), len(exp), n_text,
        ", ".join("%s=%d" % kv for kv in sorted(kinds.items()))))
    return exp


def dump(path, obj):
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def main():
    gens = {1: build(1), 2: build(2)}
    write_store()
    for g, spec in gens.items():
        dump(os.path.join(HERE, "gen%d.json" % g), spec)
    e1 = {t: a for t, _, a in summary("gen1", gens[1]["etc"])}
    e2 = {t: a for t, _, a in summary("gen2", gens[2]["etc"])}
    removed = sorted(set(e1) - set(e2))
    added = sorted(set(e2) - set(e1))
    print("removed targets (%d): %s" % (len(removed), " ".join(removed)))
    print("added targets (%d): %s" % (len(added), " ".join(added)))
    changed = []
    for attr in sorted(set(gens[1]["etc"]) & set(gens[2]["etc"])):
        a, b = gens[1]["etc"][attr], gens[2]["etc"][attr]
        if a != b:
            what = [k for k in sorted(a) if a[k] != b[k]]
            changed.append("%s(%s)" % (attr, ",".join(what)))
    print("changed attrs (%d): %s" % (len(changed), " ".join(changed)))
    print("store objects: %d" % len(STORE))


if __name__ == "__main__":
    sys.exit(main())
