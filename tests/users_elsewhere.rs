//! A user database outside `/etc` (the users part's `passwordFilesLocation`): `/etc`'s files
//! link to it, so that the users stay mutable on a read-only `/etc` (issue 12), and a root
//! moves there from `/etc` without losing what was added at run time.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use etcflip_e2e::{bin, code, text_of, Scratch};

/// Root and a user with an allocated uid, mutable, the files in `/var/lib/nixos`; with
/// `wrapped`, a setuid wrapper owned by that user (its owner resolves through the link).
fn spec(location: Option<&str>, wrapped: Option<&Path>) -> Value {
    let mut s = json!({
        "etc": {"motd": {"text": "hello\n"}},
        "users": {"mutableUsers": true,
            "users": [
                {"name": "root", "uid": 0, "group": "root", "home": "/root", "isSystemUser": true,
                 "hashedPassword": "!", "shell": "/bin/sh"},
                {"name": "alice", "group": "users", "home": "/var/empty", "shell": "/bin/sh",
                 "hashedPassword": "!"}],
            "groups": [{"name": "root", "gid": 0, "members": []},
                       {"name": "users", "gid": 100, "members": []}]}
    });
    if let Some(l) = location {
        s["users"]["passwordFilesLocation"] = json!(l);
    }
    if let Some(show) = wrapped {
        s["overlay"] = json!("/run/etcflip/static");
        s["wrappers"] = json!({"show": {"source": show, "owner": "alice", "group": "users",
                                        "setuid": true}});
    }
    s
}

/// `etcflip image GEN --root TREE [--squashfs IMG]`, as nobody when `nobody`.
fn image(gen: &Path, tree: &Path, img: Option<&Path>, nobody: bool) -> std::process::Output {
    etcflip_e2e::etcflip_image((gen, tree), img, nobody, &[])
}

#[test]
fn a_read_only_image_keeps_its_users_mutable_in_var_lib_nixos() {
    let s = Scratch::new("users-elsewhere-image");
    let show = etcflip_e2e::show_program(&s.dir, &s.dir.join("bin"));
    let gen = s.gen("a", &spec(Some("/var/lib/nixos"), Some(&show)));
    let store_gen = s.dir.join("gen");
    std::fs::rename(&gen, &store_gen).unwrap();
    // Nobody builds in a directory of its own, as a Nix build user would.
    let work = etcflip_e2e::nobodys_work(&s, &[&store_gen]);
    let (tree, img) = (work.join("tree"), work.join("etc.sqfs"));
    let out = image(&store_gen, &tree, Some(&img), true);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    // The image's /etc links the five files to the writable place.
    for name in ["passwd", "group", "shadow", "subuid", "subgid"] {
        let link = std::fs::read_link(tree.join("etc").join(name)).unwrap();
        assert_eq!(link, Path::new("/var/lib/nixos").join(name));
    }
    // A root whose /etc is the image, read-only, whose /run is empty and whose /var/lib/nixos
    // is empty and writable; booted twice, with a user added at run time in between.
    let root = s.dir.join("sysroot");
    std::fs::create_dir_all(root.join("var")).unwrap();
    let mounted = etcflip_e2e::image_as_etc(&img, &root);
    let (r, etcflip, g) = (root.display(), bin("etcflip"), store_gen.display());
    let etcflip = etcflip.display();
    let script = format!(
        "{mounted} && mount -t tmpfs tmpfs {r}/var && {etcflip} boot {g} --root {r} && \
         echo '--- passwd' && readlink {r}/etc/passwd && cat {r}/var/lib/nixos/passwd && stat -c '%a %n' {r}/var/lib/nixos/shadow && \
         stat -c '%u %a' {r}$(readlink {r}/run/wrappers/bin)/show && \
         echo 'bob:x:1500:100::/var/empty:/bin/sh' >> {r}/var/lib/nixos/passwd && \
         echo 'bob:!:1::::::' >> {r}/var/lib/nixos/shadow && \
         {etcflip} boot {g} --root {r} && echo '--- again' && cat {r}/var/lib/nixos/passwd && \
         {etcflip} boot {g} --root {r}",
    );
    let out = etcflip_e2e::in_private_namespace(&script);
    let t = text_of(&out);
    assert_eq!(code(&out), 0, "{t}");
    let (first, again) = t.split_once("--- again").unwrap();
    for want in [
        "users: create user alice (allocate uid 1000)",
        "/var/lib/nixos/passwd\n",
        "alice:x:1000:100::/var/empty:/bin/sh\n",
        "640 ",
        "1000 4511\n",
        "booted: /etc already holds this generation; nothing written below it",
    ] {
        assert!(first.contains(want), "{want:?} not in:\n{first}");
    }
    // The user added at run time is kept (mutableUsers), alice keeps her uid.
    for want in ["alice:x:1000:100:", "bob:x:1500:100:"] {
        assert!(again.contains(want), "{want:?} not in:\n{again}");
    }
    // The third boot finds the database as the second left it.
    assert!(!again.contains("users: create"), "{again}");
}

/// The passwd lines of `root`'s database at `/var/lib/nixos`.
fn passwd_at(root: &Path) -> String {
    std::fs::read_to_string(root.join("var/lib/nixos/passwd")).unwrap()
}

/// A root switched to the generation with the files in /etc (returned first; the one with
/// them in /var/lib/nixos second), then bob added at run time to its /etc/passwd.
fn switched_with_bob(name: &str) -> (Scratch, std::path::PathBuf, std::path::PathBuf) {
    let s = Scratch::new(name);
    let a = s.gen("a", &spec(None, None));
    let b = s.gen("b", &spec(Some("/var/lib/nixos"), None));
    s.switch(&a, &[]);
    let mut passwd = std::fs::read_to_string(s.etc("passwd")).unwrap();
    passwd.push_str("bob:x:1500:100::/var/empty:/bin/sh\n");
    std::fs::write(s.etc("passwd"), passwd).unwrap();
    (s, a, b)
}

#[test]
fn a_root_moves_its_users_out_of_etc_keeping_those_added_at_run_time() {
    let (s, a, b) = switched_with_bob("users-elsewhere-move");
    // A shadow only root may read: so it stays where it goes.
    std::fs::set_permissions(s.etc("shadow"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = s.switch(&b, &[]);
    assert!(
        out.contains("users: link /etc/passwd to /var/lib/nixos/passwd"),
        "{out}"
    );
    for name in ["passwd", "group", "shadow", "subuid", "subgid"] {
        let link = std::fs::read_link(s.etc(name)).unwrap();
        assert_eq!(link, Path::new("/var/lib/nixos").join(name), "{name}");
    }
    let mode = std::fs::metadata(s.root.join("var/lib/nixos/shadow"))
        .unwrap()
        .permissions();
    assert_eq!(mode.mode() & 0o7777, 0o600);
    let moved = passwd_at(&s.root);
    for want in ["alice:x:1000:100:", "bob:x:1500:100:"] {
        assert!(moved.contains(want), "{want:?} not in:\n{moved}");
    }
    // A tool that wrote /etc/passwd over the link (useradd on a writable /etc): its file is
    // the newest, merged into the place, and the link comes back.
    let mut written = moved.clone();
    written.push_str("carol:x:1600:100::/var/empty:/bin/sh\n");
    std::fs::remove_file(s.etc("passwd")).unwrap();
    std::fs::write(s.etc("passwd"), written).unwrap();
    s.switch(&b, &[]);
    assert_eq!(
        std::fs::read_link(s.etc("passwd")).unwrap(),
        Path::new("/var/lib/nixos/passwd")
    );
    assert!(passwd_at(&s.root).contains("carol:x:1600:100:"));
    // Nothing more to do: a re-switch changes nothing.
    let again = s.switch(&b, &[]);
    assert!(!again.contains("users:"), "{again}");
    // And back: the links etcflip made become the files they showed, whole.
    let out = s.switch(&a, &[]);
    assert!(
        out.contains("users: replace the link /etc/passwd with its file"),
        "{out}"
    );
    for name in ["passwd", "group", "shadow", "subuid", "subgid"] {
        let meta = std::fs::symlink_metadata(s.etc(name)).unwrap();
        assert!(meta.is_file(), "{name}");
    }
    let back = std::fs::read_to_string(s.etc("passwd")).unwrap();
    for want in ["alice:x:1000:100:", "bob:x:1500:100:", "carol:x:1600:100:"] {
        assert!(back.contains(want), "{want:?} not in:\n{back}");
    }
    let mode = std::fs::metadata(s.etc("shadow")).unwrap().permissions();
    assert_eq!(mode.mode() & 0o7777, 0o600);
    assert!(!s.switch(&a, &[]).contains("users:"));
    // Out again, over the place's old files: the moved files' modes, not the old ones'.
    std::fs::set_permissions(s.etc("shadow"), std::fs::Permissions::from_mode(0o400)).unwrap();
    s.switch(&b, &[]);
    let mode = std::fs::metadata(s.root.join("var/lib/nixos/shadow")).unwrap();
    assert_eq!(mode.permissions().mode() & 0o7777, 0o400);
}

#[test]
fn what_stands_where_a_link_goes_is_refused_before_anything_is_written() {
    let s = Scratch::new("users-elsewhere-clash");
    let b = s.gen("b", &spec(Some("/var/lib/nixos"), None));
    std::fs::create_dir_all(s.root.join("persist")).unwrap();
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    std::fs::write(s.root.join("persist/group"), "root:x:0:\n").unwrap();
    std::os::unix::fs::symlink("/persist/group", s.etc("group")).unwrap();
    let out = s.switch_out(&b, &[]);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    let t = text_of(&out);
    assert!(
        t.contains("group should link to /var/lib/nixos/group (passwordFilesLocation), but a link elsewhere stands there"),
        "{t}"
    );
    assert!(!s.root.join("var/lib/nixos/passwd").exists());
    assert!(!s.etc("passwd").exists());
}

/// A switch moving the users out of `/etc`, killed (SIGKILL, that process alone) at each
/// `symlinkat` and each `renameat` in turn: the next switch, to the same generation or back to
/// the one before, finishes or undoes it, and nothing added at run time is lost.
#[test]
fn a_move_killed_at_any_link_or_rename_is_finished_by_the_next_switch() {
    // (the syscall killed, whether the next switch goes back, whether the killed one did)
    let cases = [
        ("symlinkat", false, false),
        ("renameat", false, false),
        ("symlinkat", true, false),
        ("renameat", true, true),
    ];
    for (syscall, back, killed_back) in cases {
        for n in 1.. {
            let (s, a, b) = switched_with_bob("users-elsewhere-kill");
            let killed = if killed_back {
                s.switch(&b, &[]);
                etcflip_e2e::switch_killed_at(&s, &a, &[], syscall, n)
            } else {
                etcflip_e2e::switch_killed_at(&s, &b, &[], syscall, n)
            };
            if !killed {
                break; // the switch got through: every point was tried
            }
            let (to, file) = if back {
                (&a, s.etc("passwd"))
            } else {
                (&b, s.root.join("var/lib/nixos/passwd"))
            };
            let out = s.switch_out(to, &[]);
            let t = text_of(&out);
            assert_eq!(code(&out), 0, "{syscall} #{n}, back {back}: {t}");
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(text.contains("bob:x:1500:"), "{syscall} #{n}: {text}");
            assert!(!t.contains("etcflip-tmp"), "{t}");
        }
    }
}

/// With the users outside `/etc`, an image's copy owned by a user whose uid the machine
/// allocates at boot could belong to another account there: the image is refused (exit 2),
/// naming it, and builds once the uid is declared.
#[test]
fn an_image_refuses_copies_owned_by_users_the_machine_allocates() {
    let s = Scratch::new("users-elsewhere-owners");
    let mut sp = spec(Some("/var/lib/nixos"), None);
    sp["etc"]["alice.key"] = json!({"text": "k\n", "mode": "0600", "user": "alice"});
    sp["etc"]["shared"] = json!({"text": "s\n", "mode": "0640", "group": "staff"});
    sp["users"]["groups"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "staff", "members": []}));
    let gen = s.gen("a", &sp);
    let out = image(&gen, &s.dir.join("tree"), None, false);
    assert_eq!(code(&out), 2, "{}", text_of(&out));
    for want in [
        "/etc/alice.key: its user alice has no static id",
        "/etc/shared: its group staff has no static id",
    ] {
        assert!(text_of(&out).contains(want), "{want:?}: {}", text_of(&out));
    }
    assert!(!s.dir.join("tree").exists(), "nothing built");
    sp["users"]["users"][1]["uid"] = json!(1000);
    sp["users"]["groups"][2]["gid"] = json!(500);
    let fixed = s.gen("b", &sp);
    let out = image(&fixed, &s.dir.join("tree2"), None, false);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
}

/// A boot on the image whose users clash with the machine's (a declared uid another account
/// holds there) fails (exit 1: on a read-only /etc, 3 says "another generation's image"),
/// the place's files left as they were.
#[test]
fn a_boot_whose_users_clash_fails_and_writes_none() {
    let s = Scratch::new("users-elsewhere-clash-boot");
    let mut sp = spec(Some("/var/lib/nixos"), None);
    sp["users"]["users"][1]["uid"] = json!(1000);
    let gen = s.gen("a", &sp);
    let (store_gen, img) = stored_image(&s, &gen);
    let root = s.dir.join("sysroot");
    std::fs::create_dir_all(root.join("var/lib/nixos")).unwrap();
    let taken = "root:x:0:0::/root:/bin/sh\nbob:x:1000:100::/var/empty:/bin/sh\n";
    std::fs::write(root.join("var/lib/nixos/passwd"), taken).unwrap();
    let script = format!(
        "{} && {} boot {} --root {}",
        etcflip_e2e::image_as_etc(&img, &root),
        bin("etcflip").display(),
        store_gen.display(),
        root.display()
    );
    let out = etcflip_e2e::in_private_namespace(&script);
    assert_eq!(code(&out), 1, "{}", text_of(&out));
    assert!(
        text_of(&out).contains("were not written"),
        "{}",
        text_of(&out)
    );
    let after = std::fs::read_to_string(root.join("var/lib/nixos/passwd")).unwrap();
    assert_eq!(after, taken);
}

/// The generation `gen` moved out of the root (as a store path lies), and its squashfs image
/// built as root.
fn stored_image(s: &Scratch, gen: &Path) -> (PathBuf, PathBuf) {
    let store_gen = s.dir.join("gen");
    std::fs::rename(gen, &store_gen).unwrap();
    let img = s.dir.join("etc.sqfs");
    let out = image(&store_gen, &s.dir.join("tree"), Some(&img), false);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    (store_gen, img)
}

/// Boots the image `img` of `store_gen` read-only on a sysroot with an empty writable `/var`,
/// and checks that the users were written in `/var/lib/nixos`.
fn boot_writes_alice(s: &Scratch, store_gen: &Path, img: &Path) {
    let root = s.dir.join("sysroot");
    std::fs::create_dir_all(root.join("var")).unwrap();
    let script = format!(
        "{} && mount -t tmpfs tmpfs {r}/var && {} boot {} --root {r} && cat {r}/var/lib/nixos/passwd",
        etcflip_e2e::image_as_etc(img, &root),
        bin("etcflip").display(),
        store_gen.display(),
        r = root.display(),
    );
    let out = etcflip_e2e::in_private_namespace(&script);
    let t = text_of(&out);
    assert_eq!(code(&out), 0, "{t}");
    assert!(t.contains("alice:x:1000:100::/var/empty:/bin/sh\n"), "{t}");
}

/// A boot on the image reads the users part from the manifest's end, never its entries: its
/// cost grows with the users, not with `/etc`. An entry in the middle of a large manifest,
/// spoiled in place (same size, so the image still holds the generation), goes unnoticed.
#[test]
fn a_boot_on_the_image_reads_the_users_without_the_entries() {
    let s = Scratch::new("users-elsewhere-ends");
    let mut sp = spec(Some("/var/lib/nixos"), None);
    for i in 0..3000 {
        sp["etc"][format!("many/e{i:04}")] = json!({"text": "x\n"});
    }
    let gen = s.gen("a", &sp);
    let (store_gen, img) = stored_image(&s, &gen);
    let manifest = store_gen.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let middle = text.find("\"target\":\"many/e1500\"").expect("the entry");
    let spoiled = format!("{}\"tarXet\"{}", &text[..middle], &text[middle + 8..]);
    assert_eq!(spoiled.len(), text.len());
    std::fs::write(&manifest, spoiled).unwrap();
    boot_writes_alice(&s, &store_gen, &img);
}

/// A manifest in another layout (keys sorted, as `jq -S .` writes it: `users` is then followed
/// by `version`) is still booted: its users part does not parse from the end alone, so the
/// manifest is parsed whole.
#[test]
fn a_boot_on_an_image_of_a_manifest_with_sorted_keys_writes_the_users() {
    let s = Scratch::new("users-elsewhere-sorted");
    let gen = s.gen("a", &spec(Some("/var/lib/nixos"), None));
    let store_gen = s.dir.join("gen");
    std::fs::rename(&gen, &store_gen).unwrap();
    let manifest = store_gen.join("manifest.json");
    let value: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let sorted = serde_json::to_string_pretty(&value).unwrap() + "\n";
    assert!(sorted.contains("\n  \"users\": {") && sorted.contains("\n  \"version\": 1\n}"));
    std::fs::write(&manifest, sorted).unwrap();
    let (tree, img) = (s.dir.join("tree"), s.dir.join("etc.sqfs"));
    let out = image(&store_gen, &tree, Some(&img), false);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    boot_writes_alice(&s, &store_gen, &img);
}

/// The mark proves only what root alone could have made: after a move back it is gone, so a
/// link made later by hand is refused; and one another user could have planted (in a
/// directory of theirs) never makes their file `/etc/shadow`.
#[test]
fn a_mark_proves_only_what_root_alone_could_have_made() {
    let s = Scratch::new("users-elsewhere-mark");
    let a = s.gen("a", &spec(None, None));
    let b = s.gen("b", &spec(Some("/var/lib/nixos"), None));
    s.switch(&a, &[]);
    s.switch(&b, &[]);
    s.switch(&a, &[]);
    assert!(!s.root.join("var/lib/nixos/.etcflip-linked").exists());
    std::fs::remove_file(s.etc("passwd")).unwrap();
    std::os::unix::fs::symlink("/var/lib/nixos/passwd", s.etc("passwd")).unwrap();
    let out = s.switch_out(&a, &[]);
    assert_eq!(code(&out), 3, "a link made by hand: {}", text_of(&out));
    // Another user's directory, with a mark and a shadow of theirs.
    std::fs::remove_file(s.etc("passwd")).unwrap();
    std::fs::copy(s.root.join("var/lib/nixos/passwd"), s.etc("passwd")).unwrap();
    let eve = s.root.join("home/eve");
    std::fs::create_dir_all(&eve).unwrap();
    std::fs::write(eve.join(".etcflip-linked"), "").unwrap();
    std::fs::write(eve.join("shadow"), "root:EVE:1::::::\n").unwrap();
    for p in [&eve, &eve.join(".etcflip-linked"), &eve.join("shadow")] {
        std::os::unix::fs::chown(p, Some(1000), Some(100)).unwrap();
    }
    std::fs::remove_file(s.etc("shadow")).unwrap();
    std::os::unix::fs::symlink("/home/eve/shadow", s.etc("shadow")).unwrap();
    let out = s.switch_out(&a, &[]);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    assert!(s.etc("shadow").is_symlink());
}
