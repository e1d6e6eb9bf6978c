//! Migration from an `/etc` that NixOS's `setup-etc.pl` made: no etcflip
//! state, `/etc/static` → an old NixOS etc tree, `/etc/<x>` links whose text is exactly
//! `/etc/static/<x>`, copies and direct links listed in `/etc/.clean`, and user files beside
//! them. The same old tree is also imported with `etcflip-gen --nixos-etc`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{symlink, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use etcflip_e2e::{absent, bin, code, read_in_root, source, spec, text, text_of, Scratch};
use serde_json::{json, Value};

/// Content of the old generation's store files.
const OLD_HOSTS: &str = "127.0.0.1 old\n";
const OLD_SUDOERS: &str = "root ALL=(ALL) ALL\n";
const OLD_LOGIN_DEFS: &str = "UMASK 077\n";
const NGINX_CONF: &str = "worker_processes 1;\n";

/// User files (not managed by NixOS): `(path below /etc, content)`.
const USER_FILES: &[(&str, &str)] = &[
    (
        "passwd",
        "root:x:0:0::/root:/bin/sh\nnginx:x:60:60::/var/empty:/bin/false\n",
    ),
    ("group", "root:x:0:\nnginx:x:60:\n"),
    ("machine-id", "0123456789abcdef0123456789abcdef\n"),
    ("user.conf", "mine\n"),
    // Inside a directory NixOS manages.
    ("ssh/ssh_host_ed25519_key", "secret\n"),
    // setup-etc.pl never walks /etc/nixos.
    ("nixos/configuration.nix", "{ }\n"),
    // The tag file setup-etc.pl touches; programs detect NixOS by it.
    ("NIXOS", ""),
];

/// User links: `(path below /etc, text)`. None is `/etc/static/<its own path>`.
const USER_LINKS: &[(&str, &str)] = &[
    ("mylink", "/usr/share/zoneinfo"),
    // Into /etc/static, but not its own path: setup-etc.pl would remove it by prefix;
    // etcflip only claims exact `/etc/static/<path>` texts.
    ("alias", "/etc/static/hosts"),
    // Relative, into the static tree: not what setup-etc.pl writes.
    ("rel-hosts", "static/hosts"),
];

/// Builds the old NixOS `etc` derivation output (`<root>/store/old-etc/etc`) and returns the
/// derivation directory (`<root>/store/old-etc`). Links point at host paths of store files,
/// which also resolve inside the root (see `Scratch::new`).
fn old_etc_tree(s: &Scratch) -> PathBuf {
    let hosts = s.store("old/hosts", OLD_HOSTS);
    let ssh = s.store("old/ssh_config", "Host *\n");
    s.store("old/units/a.service", "[Service]\n");
    let units = s.root.join("store/old/units");
    let sudoers = s.store("old/sudoers", OLD_SUDOERS);
    let login = s.store("old/login.defs", OLD_LOGIN_DEFS);
    let nginx = s.store("old/nginx.conf", NGINX_CONF);
    let old_only = s.store("old/old-only", "old only\n");
    s.store("old/xdg/autostart.desktop", "[Desktop Entry]\nName=old\n");
    let xdg = s.root.join("store/old/xdg");
    let font = s.store("old/10-a.conf", "<a/>\n");
    let nested = s.store("old/nested-old", "nested old\n");
    let drv = s.root.join("store/old-etc");
    let etc = drv.join("etc");
    let link = |rel: &str, to: &Path| {
        let p = etc.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(to, p).unwrap();
    };
    let sidecars = |rel: &str, mode: &str, user: &str, group: &str| {
        for (ext, v) in [(".mode", mode), (".uid", user), (".gid", group)] {
            std::fs::write(etc.join(format!("{rel}{ext}")), format!("{v}\n")).unwrap();
        }
    };
    link("hosts", &hosts);
    link("ssh/ssh_config", &ssh);
    link("systemd/system", &units);
    link("sudoers", &sudoers);
    sidecars("sudoers", "0440", "+0", "+0");
    link("login.defs", &login);
    sidecars("login.defs", "644", "+0", "+0");
    link("nginx/nginx.conf", &nginx);
    sidecars("nginx/nginx.conf", "0640", "nginx", "nginx");
    link("localtime", Path::new("/etc/zoneinfo/Europe/Berlin"));
    sidecars("localtime", "direct-symlink", "+0", "+0");
    link("old-only", &old_only);
    // A directory entry (one link), and per-file links in directories.
    link("xdg", &xdg);
    link("fonts/conf.d/10-a.conf", &font);
    link("nested/deep/old", &nested);
    drv
}

/// Makes `<root>/etc` the way setup-etc.pl leaves it for the tree at `drv`.
fn legacy_etc(s: &Scratch, drv: &Path) {
    let etc = s.root.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let in_root = format!(
        "/{}",
        drv.join("etc").strip_prefix(&s.root).unwrap().display()
    );
    symlink(&in_root, etc.join("static")).unwrap();
    for rel in [
        "hosts",
        "ssh/ssh_config",
        "systemd/system",
        "old-only",
        "nested/deep/old",
        "xdg",
        "fonts/conf.d/10-a.conf",
    ] {
        let p = etc.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(format!("/etc/static/{rel}"), p).unwrap();
    }
    let copy = |rel: &str, content: &str, mode: u32, owner: u32| {
        let p = etc.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&p, Some(owner), Some(owner)).unwrap();
        }
    };
    copy("sudoers", OLD_SUDOERS, 0o440, 0);
    copy("login.defs", OLD_LOGIN_DEFS, 0o644, 0);
    copy("nginx/nginx.conf", NGINX_CONF, 0o640, 60);
    symlink("/etc/zoneinfo/Europe/Berlin", etc.join("localtime")).unwrap();
    std::fs::write(
        etc.join(".clean"),
        "localtime\nlogin.defs\nnginx/nginx.conf\nsudoers\n",
    )
    .unwrap();
    for (rel, content) in USER_FILES {
        let p = etc.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    for (rel, to) in USER_LINKS {
        symlink(to, etc.join(rel)).unwrap();
    }
}

/// The new generation: a changed text behind an unchanged link, an unchanged copy with a
/// named owner, a changed copy and direct link, an addition; the directory link `xdg` becomes
/// per-file links and the per-file `fonts/conf.d` one directory link; `login.defs` (a `.clean`
/// copy), `old-only` and `nested/deep/old` (links into /etc/static) are gone.
fn new_spec(s: &Scratch) -> Value {
    let units = s.store("new/units/b.service", "[Service]\n");
    s.store("new/fonts/20-new.conf", "<new/>\n");
    spec(&[
        ("hosts", text("hosts", "127.0.0.1 new\n")),
        ("ssh", text("ssh/ssh_config", "Host *\n")),
        ("units", source("systemd/system", units.parent().unwrap())),
        (
            "sudoers",
            json!({"text": "root ALL=(ALL) ALL\n%wheel ALL\n", "mode": "0440"}),
        ),
        (
            "nginx",
            json!({"target": "nginx/nginx.conf", "text": NGINX_CONF, "mode": "0640",
                   "user": "nginx", "group": "nginx"}),
        ),
        (
            "localtime",
            json!({"source": "/etc/zoneinfo/America/New_York", "mode": "direct-symlink"}),
        ),
        ("new-file", text("new-file", "new\n")),
        (
            "xdg",
            text("xdg/autostart.desktop", "[Desktop Entry]\nName=new\n"),
        ),
        (
            "fonts",
            source("fonts/conf.d", &s.root.join("store/new/fonts")),
        ),
    ])
}

/// A legacy root (the old tree, as setup-etc.pl left it) migrated to the new generation:
/// returns the old tree's derivation and the new generation.
fn migrated(s: &Scratch) -> (PathBuf, PathBuf) {
    let drv = old_etc_tree(s);
    legacy_etc(s, &drv);
    let g = s.gen("new", &new_spec(s));
    s.switch(&g, &[]);
    (drv, g)
}

fn assert_user_files_kept(s: &Scratch) {
    for (rel, content) in USER_FILES {
        assert_eq!(
            std::fs::read_to_string(s.etc(rel)).ok().as_deref(),
            Some(*content),
            "user file /etc/{rel}"
        );
    }
    for (rel, to) in USER_LINKS {
        assert_eq!(
            std::fs::read_link(s.etc(rel)).ok(),
            Some(PathBuf::from(to)),
            "user link /etc/{rel}"
        );
    }
}

fn assert_new_state(s: &Scratch) {
    // Stale legacy links and copies are gone, with the directories only they needed.
    for gone in [
        "old-only",
        "login.defs",
        "nested/deep/old",
        "nested/deep",
        "nested",
    ] {
        assert!(absent(&s.etc(gone)), "/etc/{gone} was not removed");
    }
    assert_eq!(
        std::fs::read_link(s.etc("static")).unwrap(),
        Path::new("/gens/new/etc")
    );
    assert_eq!(
        read_in_root(&s.root, "/etc/hosts").as_deref(),
        Some(&b"127.0.0.1 new\n"[..])
    );
    assert_eq!(
        std::fs::read_link(s.etc("hosts")).unwrap(),
        Path::new("/etc/static/hosts")
    );
    assert_eq!(
        read_in_root(&s.root, "/etc/systemd/system/b.service").as_deref(),
        Some(&b"[Service]\n"[..])
    );
    let sudoers = s.etc("sudoers");
    assert_eq!(
        std::fs::read_to_string(&sudoers).unwrap(),
        "root ALL=(ALL) ALL\n%wheel ALL\n"
    );
    let md = sudoers.symlink_metadata().unwrap();
    assert!(md.is_file());
    assert_eq!(md.mode() & 0o7777, 0o440);
    let nginx = s.etc("nginx/nginx.conf").symlink_metadata().unwrap();
    assert_eq!(nginx.mode() & 0o7777, 0o640);
    if nix::unistd::geteuid().is_root() {
        assert_eq!(
            (nginx.uid(), nginx.gid()),
            (60, 60),
            "owner from the root's passwd"
        );
    }
    assert_eq!(
        std::fs::read_link(s.etc("localtime")).unwrap(),
        Path::new("/etc/zoneinfo/America/New_York")
    );
    assert_eq!(
        std::fs::read_link(s.etc("new-file")).unwrap(),
        Path::new("/etc/static/new-file")
    );
    // Directory link → per-file links, per-file links → directory link.
    assert!(s.etc("xdg").symlink_metadata().unwrap().is_dir());
    assert_eq!(
        read_in_root(&s.root, "/etc/xdg/autostart.desktop").as_deref(),
        Some(&b"[Desktop Entry]\nName=new\n"[..])
    );
    assert_eq!(
        std::fs::read_link(s.etc("fonts/conf.d")).unwrap(),
        Path::new("/etc/static/fonts/conf.d")
    );
    assert_eq!(
        read_in_root(&s.root, "/etc/fonts/conf.d/20-new.conf").as_deref(),
        Some(&b"<new/>\n"[..])
    );
    assert_user_files_kept(s);
    let out = s.etcflip(&["verify"]);
    assert_eq!(code(&out), 0, "verify after migration: {}", text_of(&out));
}

fn assert_second_switch_is_a_noop(s: &Scratch, g: &Path) {
    let before = s.listing();
    let applied = s.etc(".etcflip/applied.json");
    let mtime = applied.symlink_metadata().unwrap().mtime_nsec();
    let out = s.switch(g, &[]);
    assert!(out.contains("already up to date"), "{out}");
    assert!(!out.contains("migrated"), "{out}");
    assert_eq!(before, s.listing());
    assert_eq!(mtime, applied.symlink_metadata().unwrap().mtime_nsec());
}

#[test]
fn legacy_root_migrates_to_a_new_generation() {
    let s = Scratch::new("migrate");
    let drv = old_etc_tree(&s);
    legacy_etc(&s, &drv);
    let g = s.gen("new", &new_spec(&s));

    // The plan claims exactly the legacy paths; user files are not in it.
    let out = s.etcflip(&["switch", g.to_str().unwrap(), "--dry-run", "--json"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["migrated"], json!(true), "{v:#}");
    let steps: Vec<(String, String)> = v["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| {
            (
                st["path"].as_str().unwrap().to_owned(),
                st["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("/etc/fonts", "keep"),
        ("/etc/fonts/conf.d", "relink"),
        ("/etc/fonts/conf.d/10-a.conf", "remove"),
        ("/etc/hosts", "keep"),
        ("/etc/localtime", "stage"),
        ("/etc/login.defs", "remove"),
        ("/etc/nested", "remove"),
        ("/etc/nested/deep", "remove"),
        ("/etc/nested/deep/old", "remove"),
        ("/etc/new-file", "create"),
        ("/etc/nginx", "keep"),
        ("/etc/nginx/nginx.conf", "keep"),
        ("/etc/old-only", "remove"),
        ("/etc/ssh", "keep"),
        ("/etc/ssh/ssh_config", "keep"),
        ("/etc/sudoers", "stage"),
        ("/etc/systemd", "keep"),
        ("/etc/systemd/system", "keep"),
        ("/etc/xdg", "swap-in"),
        ("/etc/xdg/autostart.desktop", "build"),
    ]
    .iter()
    .map(|(p, a)| ((*p).to_owned(), (*a).to_owned()))
    .collect();
    assert_eq!(steps, want, "{v:#}");
    assert!(absent(&s.etc(".etcflip")), "the dry run wrote state");

    let out = s.switch(&g, &[]);
    assert!(out.contains("migrated from a setup-etc.pl /etc"), "{out}");
    assert!(out.contains("switched"), "{out}");
    assert_new_state(&s);
    assert_second_switch_is_a_noop(&s, &g);
}

/// `etcflip-gen build --nixos-etc DIR --out GEN`.
fn import(s: &Scratch, name: &str, drv: &Path) -> PathBuf {
    let out_dir = s.root.join("gens").join(name);
    let out = Command::new(bin("etcflip-gen"))
        .args(["build", "--nixos-etc"])
        .arg(drv)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "import: {}", text_of(&out));
    out_dir
}

#[test]
fn nixos_etc_import_reproduces_the_legacy_tree() {
    let s = Scratch::new("migrate-import");
    let drv = old_etc_tree(&s);
    let gi = import(&s, "imported", &drv);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(gi.join("manifest.json")).unwrap()).unwrap();
    let store = |rel: &str| s.root.join("store").join(rel).display().to_string();
    let sha = |t: &str| etcflip::fs::sha256_bytes(t.as_bytes());
    let want = json!({
        "version": 1,
        "overlay": "/etc/static",
        "entries": [
            {"target": "fonts", "kind": "dir", "mode": "0755", "uid": 0, "gid": 0},
            {"target": "fonts/conf.d", "kind": "dir", "mode": "0755", "uid": 0, "gid": 0},
            {"target": "fonts/conf.d/10-a.conf", "kind": "symlink",
             "source": store("old/10-a.conf")},
            {"target": "hosts", "kind": "symlink", "source": store("old/hosts")},
            {"target": "localtime", "kind": "direct-symlink",
             "source": "/etc/zoneinfo/Europe/Berlin"},
            {"target": "login.defs", "kind": "copy", "source": store("old/login.defs"),
             "mode": "0644", "uid": 0, "gid": 0, "sha256": sha(OLD_LOGIN_DEFS)},
            {"target": "nested", "kind": "dir", "mode": "0755", "uid": 0, "gid": 0},
            {"target": "nested/deep", "kind": "dir", "mode": "0755", "uid": 0, "gid": 0},
            {"target": "nested/deep/old", "kind": "symlink", "source": store("old/nested-old")},
            {"target": "nginx", "kind": "dir", "mode": "0755", "uid": 0, "gid": 0},
            {"target": "nginx/nginx.conf", "kind": "copy", "source": store("old/nginx.conf"),
             "mode": "0640", "uid": "nginx", "gid": "nginx", "sha256": sha(NGINX_CONF)},
            {"target": "old-only", "kind": "symlink", "source": store("old/old-only")},
            {"target": "ssh", "kind": "dir", "mode": "0755", "uid": 0, "gid": 0},
            {"target": "ssh/ssh_config", "kind": "symlink", "source": store("old/ssh_config")},
            {"target": "sudoers", "kind": "copy", "source": store("old/sudoers"),
             "mode": "0440", "uid": 0, "gid": 0, "sha256": sha(OLD_SUDOERS)},
            {"target": "systemd", "kind": "dir", "mode": "0755", "uid": 0, "gid": 0},
            {"target": "systemd/system", "kind": "symlink", "source": store("old/units")},
            {"target": "xdg", "kind": "symlink", "source": store("old/xdg")},
        ]
    });
    assert_eq!(manifest, want, "imported manifest:\n{manifest:#}");

    // Switching a setup-etc.pl root to the import of its own tree changes nothing but the
    // flip: every link is already right, every copy already has its content, mode and owner.
    legacy_etc(&s, &drv);
    let before = s.listing();
    let out = s.etcflip(&["switch", gi.to_str().unwrap(), "--dry-run", "--json"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let not_kept: Vec<&Value> = plan["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|st| st["action"] != "keep")
        .collect();
    assert!(not_kept.is_empty(), "{not_kept:#?}");
    let out = s.switch(&gi, &[]);
    assert!(out.contains("migrated"), "{out}");
    assert_eq!(
        before.replace(
            "static -> /store/old-etc/etc",
            "static -> /gens/imported/etc"
        ),
        s.listing()
    );
    assert_eq!(code(&s.etcflip(&["verify"])), 0);
    assert_user_files_kept(&s);

    // From there (etcflip state now, no legacy walk) to the new generation: the same end as
    // migrating straight to it.
    let gen_new = s.gen("new", &new_spec(&s));
    let out = s.switch(&gen_new, &[]);
    assert!(!out.contains("migrated"), "{out}");
    assert_new_state(&s);
    let direct = Scratch::new("migrate-direct");
    let direct_drv = old_etc_tree(&direct);
    legacy_etc(&direct, &direct_drv);
    let gd = direct.gen("new", &new_spec(&direct));
    direct.switch(&gd, &[]);
    assert_eq!(s.listing(), direct.listing());
    assert_second_switch_is_a_noop(&s, &gen_new);
}

#[test]
fn an_interrupted_migration_is_finished_by_the_next_run() {
    // `create`: tmpfiles fails, so the read-back fails before the flip; `remove`: the stale
    // paths cannot be removed after the flip. Either way the journal is written and the state
    // not advanced.
    for (mode, flipped) in [("create", false), ("remove", true)] {
        let s = Scratch::new(&format!("migrate-interrupted-{mode}"));
        let drv = old_etc_tree(&s);
        legacy_etc(&s, &drv);
        let g = s.gen("new", &new_spec(&s));
        let out = if flipped {
            etcflip_e2e::switch_with_failing_unlinkat(&s.root, &g, &[])
        } else {
            Command::new(bin("etcflip"))
                .args(["switch", g.to_str().unwrap(), "--root"])
                .arg(&s.root)
                .env("ETCFLIP_TMPFILES", s.script("tmpfiles-failing", "exit 1"))
                .output()
                .unwrap()
        };
        assert_eq!(code(&out), 1, "{mode}: {}", text_of(&out));
        let want_static = if flipped {
            "/gens/new/etc"
        } else {
            "/store/old-etc/etc"
        };
        assert_eq!(
            std::fs::read_link(s.etc("static")).unwrap(),
            Path::new(want_static),
            "{mode}"
        );
        assert!(s.etc(".etcflip/journal.json").is_file(), "{mode}");
        assert!(absent(&s.etc(".etcflip/applied.json")), "{mode}");
        // The rerun must still know what setup-etc.pl made: same end as an uninterrupted run.
        let out = s.etcflip(&["switch", g.to_str().unwrap()]);
        assert_eq!(
            code(&out),
            0,
            "{mode}: rerun after an interrupted migration: {}",
            text_of(&out)
        );
        assert_new_state(&s);
        assert_second_switch_is_a_noop(&s, &g);
    }
}

/// A name that is not UTF-8 (Latin-1 "café"): legal on Linux, and setup-etc.pl walks past it.
fn latin1_name() -> PathBuf {
    use std::os::unix::ffi::OsStrExt as _;
    PathBuf::from(std::ffi::OsStr::from_bytes(b"caf\xe9.conf"))
}

#[test]
fn user_files_with_non_utf8_names_do_not_stop_the_migration() {
    let s = Scratch::new("migrate-latin1");
    let drv = old_etc_tree(&s);
    legacy_etc(&s, &drv);
    let places = [s.root.join("etc"), s.etc("ssh"), s.etc("nested/deep")];
    for dir in &places {
        std::fs::write(dir.join(latin1_name()), "latin-1\n").unwrap();
    }
    let g = s.gen("new", &new_spec(&s));
    // The directories holding the user file are left, and the plan says so (a name that is
    // not UTF-8 is still something in the directory, not nothing).
    let out = s.etcflip(&["switch", g.to_str().unwrap(), "--dry-run", "--json"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let action = |path: &str| {
        plan["plan"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["path"] == path)
            .map(|st| st["action"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        action("/etc/nested/deep/old").as_deref(),
        Some("remove"),
        "{plan:#}"
    );
    assert_eq!(
        action("/etc/nested/deep").as_deref(),
        Some("leave"),
        "{plan:#}"
    );
    assert_eq!(action("/etc/nested").as_deref(), Some("leave"), "{plan:#}");
    let out = s.etcflip(&["switch", g.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert!(stdout_has(&out, "migrated"), "{}", text_of(&out));
    assert!(!stdout_has(&out, "note:"), "{}", text_of(&out));
    for dir in &places[..2] {
        assert_eq!(
            std::fs::read_to_string(dir.join(latin1_name()))
                .ok()
                .as_deref(),
            Some("latin-1\n"),
            "user file with a non-UTF-8 name in {}",
            dir.display()
        );
    }
    // The stale legacy link beside it goes; the directory holding the user file stays.
    assert!(absent(&s.etc("nested/deep/old")));
    assert_eq!(
        std::fs::read_to_string(s.etc("nested/deep").join(latin1_name()))
            .ok()
            .as_deref(),
        Some("latin-1\n")
    );
    assert!(absent(&s.etc("old-only")));
    assert_user_files_kept(&s);
}

fn stdout_has(out: &std::process::Output, what: &str) -> bool {
    String::from_utf8_lossy(&out.stdout).contains(what)
}

// ---------------------------------------------------------------------------------------------
// Rollback to a generation that runs setup-etc.pl, and forward again

/// What `setup-etc.pl` does to `<root>/etc` for the NixOS etc tree at `drv`:
/// flip `/etc/static`; remove every link into `/etc/static` whose counterpart there is no
/// longer a link; make the tree's links, copies and direct links (removing a real directory
/// in the way when it only holds static links); remove the old `.clean` paths it did not
/// make; write the new `.clean`. A stand-in written from that description: the real script
/// needs a NixOS system.
fn setup_etc_pl(s: &Scratch, drv: &Path) {
    let etc = s.root.join("etc");
    let tree = drv.join("etc");
    let static_in_root = format!("/{}", tree.strip_prefix(&s.root).unwrap().display());
    let tmp = etc.join("static.tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(&static_in_root, &tmp).unwrap();
    std::fs::rename(&tmp, etc.join("static")).unwrap();
    for rel in walk_links(&etc, "") {
        let text = std::fs::read_link(etc.join(&rel)).unwrap();
        let text = text.to_string_lossy();
        if text.starts_with("/etc/static") && !is_link(&tree.join(&rel)) {
            std::fs::remove_file(etc.join(&rel)).unwrap();
        }
    }
    let old_clean = std::fs::read_to_string(etc.join(".clean")).unwrap_or_default();
    let mut made = Vec::new();
    link_pass(&tree, &etc, "", &mut made);
    for rel in old_clean.lines().filter(|l| !made.iter().any(|m| m == l)) {
        let _ = std::fs::remove_file(etc.join(rel));
    }
    made.sort();
    let clean: String = made.iter().flat_map(|m| [m.as_str(), "\n"]).collect();
    std::fs::write(etc.join(".clean"), clean).unwrap();
}

fn is_link(p: &Path) -> bool {
    p.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
}

/// Links below `dir/rel`, not following links; `nixos` and `static` are skipped.
fn walk_links(dir: &Path, rel: &str) -> Vec<String> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir(dir.join(rel)).unwrap() {
        let name = ent.unwrap().file_name().into_string().unwrap();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if r == "nixos" || r == "static" {
            continue;
        }
        let p = dir.join(&r);
        if is_link(&p) {
            out.push(r);
        } else if p.is_dir() {
            out.extend(walk_links(dir, &r));
        }
    }
    out
}

/// setup-etc.pl's link pass over `tree/rel`; pushes the copies and direct links it makes.
fn link_pass(tree: &Path, etc: &Path, rel: &str, made: &mut Vec<String>) {
    for ent in std::fs::read_dir(tree.join(rel)).unwrap() {
        let name = ent.unwrap().file_name().into_string().unwrap();
        if [".mode", ".uid", ".gid"].iter().any(|x| name.ends_with(x)) {
            continue;
        }
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let (src, dst) = (tree.join(&r), etc.join(&r));
        if !is_link(&src) {
            // make_path fails on a link in the way; the script warns and goes on.
            if std::fs::create_dir_all(&dst).is_ok() {
                link_pass(tree, etc, &r, made);
            }
            continue;
        }
        if !is_link(&dst) && dst.is_dir() {
            if !walk_links(etc, &r).is_empty() {
                continue; // "directory contains user files. Symlinking may fail."
            }
            std::fs::remove_dir_all(&dst).unwrap();
        }
        let sidecar = std::fs::read_to_string(tree.join(format!("{r}.mode"))).ok();
        let tmp = etc.join(format!("{r}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        match sidecar.as_deref().map(str::trim) {
            None => symlink(format!("/etc/static/{r}"), &tmp).unwrap(),
            Some("direct-symlink") => symlink(std::fs::read_link(&src).unwrap(), &tmp).unwrap(),
            Some(m) => {
                std::fs::write(&tmp, std::fs::read(&src).unwrap()).unwrap();
                let bits = u32::from_str_radix(m, 8).unwrap();
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(bits)).unwrap();
            }
        }
        if sidecar.is_some() {
            made.push(r.clone());
        }
        std::fs::rename(&tmp, &dst).unwrap();
    }
}

#[test]
fn a_rollback_to_setup_etc_pl_and_forward_again_converges() {
    let s = Scratch::new("rollback");
    let (drv, g) = migrated(&s);
    // etcflip keeps setup-etc.pl's list of copies and direct links, now its own.
    assert_eq!(
        std::fs::read_to_string(s.etc(".clean")).unwrap(),
        "localtime\nnginx/nginx.conf\nsudoers\n"
    );

    // The rollback: setup-etc.pl makes the old generation's /etc again.
    setup_etc_pl(&s, &drv);
    assert_eq!(
        std::fs::read_to_string(s.etc("sudoers")).unwrap(),
        OLD_SUDOERS
    );
    assert_eq!(
        std::fs::read_to_string(s.etc("login.defs")).unwrap(),
        OLD_LOGIN_DEFS
    );
    assert!(
        !is_link(&s.etc("new-file")),
        "its cleanup removes our links it lacks"
    );
    assert!(is_link(&s.etc("xdg")));
    // setup-etc.pl's prefix rule takes the user's /etc/alias (→ /etc/static/hosts) with it;
    // the user makes it again. Everything else of the user's is still there.
    assert!(!is_link(&s.etc("alias")));
    symlink("/etc/static/hosts", s.etc("alias")).unwrap();
    assert_user_files_kept(&s);

    // Forward again: the overlay no longer shows what etcflip recorded, so nothing recorded is
    // trusted (the old sudoers copy would otherwise be a foreign file in the way).
    let out = s.switch(&g, &[]);
    assert!(out.contains("migrated from a setup-etc.pl /etc"), "{out}");
    assert_new_state(&s);
    assert_second_switch_is_a_noop(&s, &g);
}

#[test]
fn a_switch_back_after_a_rollback_that_is_interrupted_is_finished_by_the_rerun() {
    let s = Scratch::new("rollback-interrupted");
    let (drv, g) = migrated(&s);
    setup_etc_pl(&s, &drv);
    symlink("/etc/static/hosts", s.etc("alias")).unwrap();
    // Forward again, stopped after the flip (stale paths cannot be removed): the overlay
    // already shows the new generation, so the rerun cannot tell from it that setup-etc.pl's
    // paths are to be cleaned up; the journal's legacy mark tells it.
    let out = etcflip_e2e::switch_with_failing_unlinkat(&s.root, &g, &[]);
    assert_eq!(code(&out), 1, "{}", text_of(&out));
    assert_eq!(
        std::fs::read_link(s.etc("static")).unwrap(),
        g.join("etc")
            .strip_prefix(&s.root)
            .map(|p| Path::new("/").join(p))
            .unwrap(),
        "stopped after the flip"
    );
    assert!(s.etc(".etcflip/journal.json").is_file());
    assert!(s.etc(".etcflip/legacy").is_file());
    let out = s.switch(&g, &[]);
    assert!(out.contains("switched"), "{out}");
    assert!(absent(&s.etc(".etcflip/legacy")));
    assert_new_state(&s);
    assert_second_switch_is_a_noop(&s, &g);
}

/// A generation directory whose own path ends in `/etc` (`<root>/gens/a/etc`): the recorded
/// generation must be that path, or every later switch would take the overlay for moved and
/// count `/etc/.clean`'s copies as its own, edited or not.
#[test]
fn generation_paths_ending_in_etc_are_recorded_as_they_are() {
    let s = Scratch::new("gen-named-etc");
    let spec_of = |v: &str| {
        spec(&[
            (
                "foo.conf",
                json!({"text": format!("managed {v}\n"), "mode": "0644"}),
            ),
            ("hosts", text("hosts", &format!("127.0.0.1 {v}\n"))),
        ])
    };
    // (`Scratch::gen` writes the spec as `spec-<name>.json`: the name has a directory.)
    for d in ["spec-a", "spec-b", "root/gens/a", "root/gens/b"] {
        std::fs::create_dir_all(s.dir.join(d)).unwrap();
    }
    let a = s.gen("a/etc", &spec_of("a"));
    let b = s.gen("b/etc", &spec_of("b"));
    std::fs::create_dir_all(s.etc("")).unwrap();
    std::fs::write(s.etc(".clean"), "").unwrap();
    s.switch(&a, &[]);
    std::fs::write(s.etc("foo.conf"), "my local edit\n").unwrap();
    let out = s.etcflip(&["switch", b.to_str().unwrap()]);
    assert_eq!(
        code(&out),
        3,
        "an edited copy is a conflict: {}",
        text_of(&out)
    );
    assert_eq!(
        std::fs::read_to_string(s.etc("foo.conf")).unwrap(),
        "my local edit\n"
    );
}

/// What a `keep_clean` killed between its write and its rename leaves is swept by the next
/// run, which holds the lock.
#[test]
fn a_killed_rewrite_of_clean_leaves_nothing_behind() {
    let s = Scratch::new("clean-tmp");
    let (_, g) = migrated(&s);
    std::fs::write(s.etc("..clean.etcflip-tmp"), "half").unwrap();
    let out = s.switch(&g, &[]);
    assert!(out.contains("already up to date"), "{out}");
    assert!(absent(&s.etc("..clean.etcflip-tmp")));
}

/// A lost `/etc/.clean` (the NixOS module recreates it empty) is filled again by the next
/// switch, also one with nothing else to do (a reboot).
#[test]
fn a_lost_clean_is_filled_again_by_a_noop_switch() {
    let s = Scratch::new("clean-lost");
    let (_, g) = migrated(&s);
    std::fs::write(s.etc(".clean"), "").unwrap();
    let out = s.switch(&g, &[]);
    assert!(out.contains("already up to date"), "{out}");
    assert_eq!(
        std::fs::read_to_string(s.etc(".clean")).unwrap(),
        "localtime\nnginx/nginx.conf\nsudoers\n"
    );
}
