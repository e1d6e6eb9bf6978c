//! `etcflip image`: a read-only image's tree built from a generation, with and without
//! privileges, made into a squashfs image by the real `mksquashfs` and read back with
//! `unsquashfs -lln`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use etcflip_e2e::{bin, code, text_of, Scratch};

/// A generation with a copy only root reads, a copy no one reads, a copy owned by a declared
/// user, and the users (one with a plaintext password).
fn spec() -> Value {
    json!({
        "etc": {
            "sudoers": {"text": "root ALL=(ALL) ALL\n", "mode": "0440"},
            "alice.conf": {"text": "a\n", "mode": "0640", "user": "alice", "group": "users"},
            "motd": {"text": "hello\n"},
            // No one may read it, not even its owner: only root's privilege does.
            "secret": {"text": "s\n", "mode": "0000"},
            // Set-id, and no read bit for its owner either.
            "runme": {"text": "r\n", "mode": "4111"}
        },
        "users": {"mutableUsers": false,
            "users": [
                {"name": "root", "uid": 0, "group": "root", "home": "/root", "isSystemUser": true,
                 "hashedPassword": "!", "shell": "/bin/sh"},
                {"name": "alice", "group": "users", "home": "/home/alice", "createHome": true,
                 "shell": "/bin/sh", "hashedPassword": "!"},
                // Hashed at build time: the salt must not make two builds differ.
                {"name": "carol", "uid": 1001, "group": "users", "home": "/var/empty",
                 "shell": "/bin/sh", "initialPassword": "carol"}],
            "groups": [{"name": "root", "gid": 0, "members": []},
                       {"name": "users", "gid": 100, "members": []}]}
    })
}

/// `etcflip image gen --root dir --squashfs img`, as nobody when `unprivileged`.
fn image(gen: &Path, dir: &Path, img: &Path, unprivileged: bool) -> std::process::Output {
    etcflip_e2e::etcflip_image((gen, dir), Some(img), unprivileged, &[])
}

/// `unsquashfs -lln`: "mode uid/gid path" of each entry.
fn listing(img: &Path) -> Vec<String> {
    let out = Command::new("unsquashfs")
        .arg("-lln")
        .arg(img)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text_of(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains("squashfs-root"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", f[0], f[1], f[5..].join(" "))
        })
        .collect()
}

#[test]
fn an_image_has_the_declared_modes_and_owners_whoever_builds_it_and_the_same_bytes() {
    let s = Scratch::new("image");
    let gen = s.gen("a", &spec());
    // Nobody builds in a directory of its own, as a Nix build user would.
    let work = etcflip_e2e::nobodys_work(&s, &[&s.root, &s.root.join("gens")]);
    let (mut images, mut erofs) = (Vec::new(), Vec::new());
    for (i, unprivileged) in [(1, true), (2, true), (3, false)] {
        let img = work.join(format!("{i}.sqfs"));
        let ero = work.join(format!("{i}.erofs"));
        let extra = [std::ffi::OsStr::new("--erofs"), ero.as_os_str()];
        let out = etcflip_e2e::etcflip_image(
            (&gen, &work.join(format!("tree{i}"))),
            Some(&img),
            unprivileged,
            &extra,
        );
        assert_eq!(code(&out), 0, "{i}: {}", text_of(&out));
        images.push(img);
        erofs.push(ero);
    }
    let lines = listing(&images[0]);
    for want in [
        "drwxr-xr-x 0/0 squashfs-root",
        "-r--r----- 0/0 squashfs-root/etc/sudoers",
        "---------- 0/0 squashfs-root/etc/secret",
        "---s--x--x 0/0 squashfs-root/etc/runme",
        "-rw-r----- 1000/100 squashfs-root/etc/alice.conf",
        "drwx------ 1000/100 squashfs-root/home/alice",
        "-rw-r--r-- 0/0 squashfs-root/etc/passwd",
        "-rw-r--r-- 0/0 squashfs-root/etc/.etcflip/applied.json",
    ] {
        assert!(
            lines.iter().any(|l| l == want),
            "{want:?} not in {lines:#?}"
        );
    }
    assert!(lines
        .iter()
        .any(|l| l.starts_with("lrwxrwxrwx 0/0 squashfs-root/etc/motd -> /etc/static/motd")));
    // systemd's convention for a read-only /etc: an empty machine-id it mounts over.
    assert!(
        lines
            .iter()
            .any(|l| l == "-r--r--r-- 0/0 squashfs-root/etc/machine-id"),
        "{lines:#?}"
    );
    // Machine-local state stays out: stamps, the users' seal.
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("stamps.json") || l.contains("users.json")),
        "{lines:#?}"
    );
    // What the builder's user may not read is packed whole all the same.
    for file in ["etc/runme", "etc/secret"] {
        let cat = Command::new("unsquashfs")
            .args(["-cat"])
            .arg(&images[0])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            cat.status.success() && cat.stdout.len() == 2,
            "{file}: {}",
            text_of(&cat)
        );
    }
    // The same generation, built twice without privileges and once as root: the same bytes.
    let bytes: Vec<Vec<u8>> = images.iter().map(|i| std::fs::read(i).unwrap()).collect();
    assert!(bytes[0] == bytes[1], "two unprivileged builds differ");
    assert!(
        bytes[0] == bytes[2],
        "a build as root differs from one without privileges"
    );
    let bytes: Vec<Vec<u8>> = erofs.iter().map(|i| std::fs::read(i).unwrap()).collect();
    assert!(
        bytes[0] == bytes[1] && bytes[0] == bytes[2],
        "erofs images differ"
    );
    // The erofs image, loop-mounted read-only in a private mount namespace.
    let mnt = s.dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let script = format!(
        "mount -t erofs -o ro,loop {} {m} && stat -c '%a %u:%g %n' {m} {m}/etc/sudoers \
         {m}/etc/secret {m}/etc/alice.conf {m}/home/alice {m}/etc/passwd && \
         readlink {m}/etc/motd && cat {m}/etc/secret {m}/etc/runme && grep -c '^carol:\\$6\\$' {m}/etc/shadow && \
         grep -h '^alice:\\|^users:' {m}/etc/passwd {m}/etc/group",
        erofs[0].display(),
        m = mnt.display()
    );
    let out = etcflip_e2e::in_private_namespace(&script);
    let m = mnt.display();
    assert_eq!(
        text_of(&out),
        format!(
            "755 0:0 {m}\n440 0:0 {m}/etc/sudoers\n0 0:0 {m}/etc/secret\n\
             640 1000:100 {m}/etc/alice.conf\n700 1000:100 {m}/home/alice\n\
             644 0:0 {m}/etc/passwd\n/etc/static/motd\ns\nr\n1\n\
             alice:x:1000:100::/home/alice:/bin/sh\nusers:x:100:\n"
        )
    );
}

#[test]
fn a_confext_image_says_so_for_its_name() {
    let s = Scratch::new("image-confext");
    let gen = s.gen("a", &spec());
    let img = s.dir.join("etcflip-site.raw");
    let flag = std::ffi::OsStr::new("--confext");
    let out = etcflip_e2e::etcflip_image(
        (&gen, &s.dir.join("tree")),
        Some(&img),
        false,
        &[flag, "etcflip-site".as_ref()],
    );
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    // What systemd-confext checks of an image named etcflip-site: its extension-release file
    // for that name, matching any OS.
    let out = Command::new("unsquashfs")
        .arg("-cat")
        .arg(&img)
        .arg("etc/extension-release.d/extension-release.etcflip-site")
        .output()
        .unwrap();
    assert_eq!(text_of(&out), "ID=_any\n");
    // A confext image holds no machine-id: it would hide the machine's own.
    assert!(!listing(&img).iter().any(|l| l.contains("machine-id")));
    let tree = s.dir.join("t2");
    let bad = etcflip_e2e::etcflip_image(
        (&gen, &tree),
        Some(&s.dir.join("b.raw")),
        false,
        &[flag, "../x".as_ref()],
    );
    assert_eq!(code(&bad), 2, "{}", text_of(&bad));
    assert!(!tree.exists(), "nothing made");
}

#[test]
fn an_image_is_built_into_a_new_or_empty_directory_only() {
    let s = Scratch::new("image-full");
    let gen = s.gen("a", &spec());
    let dir = s.dir.join("tree");
    std::fs::create_dir_all(dir.join("something")).unwrap();
    let out = image(&gen, &dir, &s.dir.join("x.sqfs"), false);
    assert_eq!(code(&out), 2, "{}", text_of(&out));
    assert!(text_of(&out).contains("not empty"), "{}", text_of(&out));
    assert!(!s.dir.join("x.sqfs").exists());
}

/// The spec, its overlay under `/run` (as an image's is) and a setuid wrapper of `show`.
fn run_spec(show: &Path) -> Value {
    let mut s = spec();
    s["overlay"] = json!("/run/etcflip/static");
    s["wrappers"] =
        json!({"show": {"source": show, "owner": "root", "group": "root", "setuid": true}});
    s
}

#[test]
fn boot_on_the_read_only_image_writes_only_run() {
    let s = Scratch::new("boot-image");
    let show = etcflip_e2e::show_program(&s.dir, &s.dir.join("bin"));
    // The generation lives outside both trees, as a store path does.
    let gen = s.gen("a", &run_spec(&show));
    let store_gen = s.dir.join("gen");
    std::fs::rename(&gen, &store_gen).unwrap();
    let img = s.dir.join("etc.sqfs");
    let out = image(&store_gen, &s.dir.join("tree"), &img, false);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    // A root whose /etc is that image, read-only, and whose /run is an empty tmpfs.
    let root = s.dir.join("sysroot");
    let r = root.display();
    let script = format!(
        "{} && mkdir -p {r}/run/wrappers/bin/mine && {} boot {} --root {r} && \
         readlink {r}/etc/motd {r}/run/etcflip/static && cat {r}/run/etcflip/static/motd && \
         stat -c '%a %U' {r}$(readlink {r}/run/wrappers/bin)/show && {e} boot {g} --root {r} && \
         umount {r}/run && mount -t tmpfs tmpfs {r}/run && {e} boot {g} --root {r} --no-wrappers && \
         echo \"in run: $(ls {r}/run)\"",
        etcflip_e2e::image_as_etc(&img, &root),
        bin("etcflip").display(),
        store_gen.display(),
        e = bin("etcflip").display(),
        g = store_gen.display(),
    );
    let out = etcflip_e2e::in_private_namespace(&script);
    let t = text_of(&out);
    assert_eq!(code(&out), 0, "{t}");
    for want in [
        &format!(
            "overlay: /run/etcflip/static -> {}/etc",
            store_gen.display()
        ),
        "wrappers: add /run/wrappers/bin/show (4511 root:root",
        // Boot-safe like boot's switch: a bin that is not a link is moved aside.
        "wrappers: back up /run/wrappers/bin (a directory)",
        "booted: /etc already holds this generation; nothing written below it",
        "/run/etcflip/static/motd\n",
        "hello\n",
        "4511 root\n",
        "overlay: already in place",
        // An initrd's boot leaves /run/wrappers to the unit that runs once it is mounted.
        "in run: etcflip\n",
    ] {
        assert!(t.contains(want), "{want:?} not in:\n{t}");
    }
}

/// A wrapper whose owner the image's user database lacks is left out of a boot on the image,
/// which says so (exit 1), as `etcflip wrappers` does.
#[test]
fn boot_on_an_image_names_a_wrapper_it_left_out() {
    let s = Scratch::new("boot-image-unresolved");
    let show = etcflip_e2e::show_program(&s.dir, &s.dir.join("bin"));
    let mut spec = run_spec(&show);
    spec["wrappers"]["ghostly"] =
        json!({"source": show, "owner": "ghost", "group": "root", "setuid": true});
    let gen = s.gen("a", &spec);
    let img = s.dir.join("etc.sqfs");
    let out = image(&gen, &s.dir.join("tree"), &img, false);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let root = s.dir.join("sysroot");
    let script = format!(
        "{} && {} boot {} --root {}",
        etcflip_e2e::image_as_etc(&img, &root),
        bin("etcflip").display(),
        gen.display(),
        root.display()
    );
    let out = etcflip_e2e::in_private_namespace(&script);
    let t = text_of(&out);
    assert_eq!(code(&out), 1, "{t}");
    assert!(
        t.contains("incomplete: /run/wrappers/bin/ghostly: user \"ghost\" not in passwd/group"),
        "{t}"
    );
    assert!(t.contains("wrappers: add /run/wrappers/bin/show"), "{t}");
}

/// On a read-only `/etc`, a FIFO where the manifest should be is refused at once (exit 2), as
/// a switch refuses it, not waited on.
#[test]
fn boot_on_a_read_only_etc_refuses_a_fifo_manifest() {
    let s = Scratch::new("boot-fifo");
    let g = s.dir.join("gen");
    std::fs::create_dir_all(&g).unwrap();
    nix::unistd::mkfifo(
        &g.join("manifest.json"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    let script = format!(
        "mount --bind {r}/etc {r}/etc && mount -o remount,ro,bind {r}/etc && \
         timeout 10 {} boot {} --root {r}",
        bin("etcflip").display(),
        g.display(),
        r = s.root.display(),
    );
    let out = etcflip_e2e::in_private_namespace(&script);
    let t = text_of(&out);
    assert_eq!(code(&out), 2, "{t}");
    assert!(t.contains("not a regular file"), "{t}");
}

/// The erofs route writes its lists in a new directory beside the tree, and never takes over
/// one that stands there already: it says so, and what is there stays.
#[test]
fn the_erofs_route_leaves_a_directory_in_its_way_alone() {
    let s = Scratch::new("image-erofs-scratch");
    let gen = s.gen("a", &json!({"etc": {"motd": {"text": "hi\n"}}}));
    let tree = s.dir.join("tree");
    let theirs = s.dir.join("tree.erofs-lists/keep");
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    std::fs::write(&theirs, "mine\n").unwrap();
    let img = s.dir.join("etc.erofs");
    let extra = [std::ffi::OsStr::new("--erofs"), img.as_os_str()];
    let out = etcflip_e2e::etcflip_image((&gen, &tree), None, false, &extra);
    let t = text_of(&out);
    assert_eq!(code(&out), 1, "{t}");
    assert!(t.contains("tree.erofs-lists"), "{t}");
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "mine\n");
}

#[test]
fn boot_from_an_empty_etc_makes_what_a_switch_makes() {
    let s = Scratch::new("boot-empty");
    // A plaintext password gets a random salt at every switch: none here, to compare.
    let mut spec = spec();
    let carol = &mut spec["users"]["users"][2];
    carol.as_object_mut().unwrap().remove("initialPassword");
    carol["hashedPassword"] = json!("!");
    let gen = s.gen("a", &spec);
    let booted = Scratch::new("boot-empty-root");
    let out = Command::new(bin("etcflip"))
        .args(["boot"])
        .arg(&gen)
        .arg("--root")
        .arg(&booted.root)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert!(text_of(&out).contains("switched"), "{}", text_of(&out));
    assert_eq!(
        booted.listing(),
        etcflip_e2e::fresh_listing_of("boot-empty-switch", &gen)
    );
}

#[test]
fn what_an_unprivileged_build_cannot_keep_the_image_still_gets() {
    let s = Scratch::new("image-modes");
    let mut spec = spec();
    // A set-id copy (an unprivileged write clears the bits), and a system user whose home
    // exists but is not made by the users part.
    spec["etc"]["suid"] = json!({"text": "x\n", "mode": "4755"});
    spec["etc"]["sgid"] = json!({"text": "x\n", "mode": "2750", "group": "users"});
    spec["users"]["users"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "svc", "group": "users",
        "home": "/var/lib", "isSystemUser": true, "shell": "/bin/sh", "hashedPassword": "!"}));
    let gen = s.gen("a", &spec);
    let work = etcflip_e2e::nobodys_work(&s, &[&s.root, &s.root.join("gens")]);
    let mut images = Vec::new();
    // As nobody, with SOURCE_DATE_EPOCH set and umask 077, as in a Nix build; and as root.
    for (i, unprivileged) in [(1, true), (2, false)] {
        let (img, ero) = (
            work.join(format!("{i}.sqfs")),
            work.join(format!("{i}.erofs")),
        );
        let script = format!(
            "umask 077; export SOURCE_DATE_EPOCH=1; {} {} image {} --root {}/tree{i} \
             --squashfs {} --erofs {}",
            if unprivileged {
                "setpriv --reuid=65534 --regid=65534 --clear-groups --"
            } else {
                ""
            },
            bin("etcflip").display(),
            gen.display(),
            work.display(),
            img.display(),
            ero.display()
        );
        let out = Command::new("sh").args(["-c", &script]).output().unwrap();
        assert_eq!(code(&out), 0, "{i}: {}", text_of(&out));
        images.push((img, ero));
    }
    let lines = listing(&images[0].0);
    for want in [
        "-rwsr-xr-x 0/0 squashfs-root/etc/suid",
        "-rwxr-s--- 0/100 squashfs-root/etc/sgid",
        "drwxr-xr-x 0/0 squashfs-root/var/lib",
    ] {
        assert!(
            lines.iter().any(|l| l == want),
            "{want:?} not in {lines:#?}"
        );
    }
    // Made under umask 077, the erofs image's top is still 0755, root's.
    let mnt = s.dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let script = format!(
        "mount -t erofs -o ro,loop {} {m} && stat -c '%a %u:%g' {m}",
        images[0].1.display(),
        m = mnt.display()
    );
    let out = etcflip_e2e::in_private_namespace(&script);
    assert_eq!(text_of(&out), "755 0:0\n");
    for (what, a, b) in [
        ("squashfs", &images[0].0, &images[1].0),
        ("erofs", &images[0].1, &images[1].1),
    ] {
        assert!(
            std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
            "{what} differs"
        );
    }
}

#[test]
fn image_refuses_what_it_cannot_make_right() {
    let s = Scratch::new("image-refuse");
    let mut spec = spec();
    spec["etc"]["bob.conf"] = json!({"text": "b\n", "mode": "0644", "user": "bob"});
    let gen = s.gen("a", &spec);
    // An owner no passwd of the image has: root's in it, said, exit 1.
    let out = image(&gen, &s.dir.join("t1"), &s.dir.join("t1.sqfs"), false);
    assert_eq!(code(&out), 1, "{}", text_of(&out));
    assert!(
        text_of(&out).contains("resolve nowhere in the image"),
        "{}",
        text_of(&out)
    );
    // An image file inside the tree it is made of.
    let out = image(&gen, &s.dir.join("t2"), &s.dir.join("t2/etc/x.sqfs"), false);
    assert_eq!(code(&out), 2, "{}", text_of(&out));
    assert!(!s.dir.join("t2").exists(), "nothing made");
}

#[test]
fn boot_takes_the_image_path_only_on_a_read_only_etc_with_nothing_pending() {
    let s = Scratch::new("boot-guard");
    let gen = s.gen("a", &spec());
    let store_gen = s.dir.join("gen");
    std::fs::rename(&gen, &store_gen).unwrap();
    let tree = s.dir.join("tree");
    let out = image(&store_gen, &tree, &s.dir.join("t.sqfs"), false);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    // Writable, a link gone: a switch puts it back.
    std::fs::remove_file(tree.join("etc/motd")).unwrap();
    let boot = |root: &Path| {
        Command::new(bin("etcflip"))
            .arg("boot")
            .arg(&store_gen)
            .arg("--root")
            .arg(root)
            .output()
            .unwrap()
    };
    let out = boot(&tree);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert!(
        text_of(&out).contains("create    symlink        /etc/motd"),
        "{}",
        text_of(&out)
    );
    // Read-only, but an interrupted switch recorded: not taken as holding the generation.
    let state = tree.join("etc/.etcflip");
    std::fs::copy(state.join("applied.json"), state.join("journal.json")).unwrap();
    let script = format!(
        "mount --bind {t}/etc {t}/etc && mount -o remount,ro,bind {t}/etc && {} boot {} --root {t}",
        bin("etcflip").display(),
        store_gen.display(),
        t = tree.display()
    );
    let out = etcflip_e2e::in_private_namespace(&script);
    assert!(
        !text_of(&out).contains("booted: /etc already holds"),
        "{}",
        text_of(&out)
    );
    // A switch could only fail half-way there: refused (exit 3), saying why, nothing written.
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    assert!(
        text_of(&out).contains("is read-only and does not hold")
            && state.join("journal.json").exists(),
        "{}",
        text_of(&out)
    );
    // Another generation's image: the same.
    std::fs::remove_file(state.join("journal.json")).unwrap();
    let other = s.gen("b", &json!({"etc": {"other": {"text": "o\n"}}}));
    let script = format!(
        "mount --bind {t}/etc {t}/etc && mount -o remount,ro,bind {t}/etc && \
         {} boot {} --root {t}",
        bin("etcflip").display(),
        other.display(),
        t = tree.display()
    );
    let out = etcflip_e2e::in_private_namespace(&script);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    assert!(
        text_of(&out).contains("takes effect when its own image is booted"),
        "{}",
        text_of(&out)
    );
    // A refused boot (something not ours where the wrappers go) says so: exit 3.
    let refused = s.dir.join("refused");
    std::fs::create_dir_all(refused.join("run")).unwrap();
    std::fs::write(refused.join("run/wrappers"), "x").unwrap();
    let mut w = spec();
    w["wrappers"] = json!({"id": {"source": "/usr/bin/id", "owner": "root", "group": "root"}});
    let wgen = s.gen("w", &w);
    let out = Command::new(bin("etcflip"))
        .arg("boot")
        .arg(&wgen)
        .arg("--root")
        .arg(&refused)
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}", text_of(&out));
}

/// Without privileges, a copy its owner may not read keeps the owner's read bit (see
/// `fs::as_written`), and a set-id copy keeps its bits (which a write by a process without
/// `CAP_FSETID` clears, so the mode is set after the content); what judges them expects that:
/// a second switch has nothing to do and `verify` finds no drift.
#[test]
fn an_unprivileged_root_with_copies_a_write_could_spoil_settles() {
    let s = Scratch::new("image-unprivileged-switch");
    let gen = s.gen(
        "a",
        &json!({"etc": {
            "secret": {"text": "s\n", "mode": "0000"},
            "suid": {"text": "x\n", "mode": "6755"},
        }}),
    );
    let work = etcflip_e2e::nobodys_work(&s, &[&s.root, &s.root.join("gens")]);
    let run = |args: &[&std::ffi::OsStr]| {
        etcflip_e2e::command_as(true, &bin("etcflip"))
            .args(args)
            .arg("--root")
            .arg(&work)
            .output()
            .unwrap()
    };
    let switch = [std::ffi::OsStr::new("switch"), gen.as_os_str()];
    let first = run(&switch);
    assert_eq!(code(&first), 0, "{}", text_of(&first));
    let suid = std::fs::symlink_metadata(work.join("etc/suid")).unwrap();
    assert_eq!(suid.permissions().mode() & 0o7777, 0o6755);
    let again = run(&switch);
    assert!(
        text_of(&again).contains("already up to date"),
        "{}",
        text_of(&again)
    );
    let verify = run(&[std::ffi::OsStr::new("verify")]);
    assert_eq!(code(&verify), 0, "{}", text_of(&verify));
}
