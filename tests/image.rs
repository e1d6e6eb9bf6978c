//! `etcflip image`: a read-only image's tree built from a generation, with and without
//! privileges, made into a squashfs image by the real `mksquashfs` and read back with
//! `unsquashfs -lln`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use etcflip_e2e::{bin, code, text_of, Scratch};

/// A generation with a copy only root reads, a copy owned by a declared user, and the users.
fn spec() -> Value {
    json!({
        "etc": {
            "sudoers": {"text": "root ALL=(ALL) ALL\n", "mode": "0440"},
            "alice.conf": {"text": "a\n", "mode": "0640", "user": "alice", "group": "users"},
            "motd": {"text": "hello\n"}
        },
        "users": {"mutableUsers": false,
            "users": [
                {"name": "root", "uid": 0, "group": "root", "home": "/root", "isSystemUser": true,
                 "hashedPassword": "!", "shell": "/bin/sh"},
                {"name": "alice", "group": "users", "home": "/home/alice", "createHome": true,
                 "shell": "/bin/sh", "hashedPassword": "!"}],
            "groups": [{"name": "root", "gid": 0, "members": []},
                       {"name": "users", "gid": 100, "members": []}]}
    })
}

/// `etcflip image gen --root dir --squashfs img [extra…]`, as nobody when `unprivileged`.
fn image(gen: &Path, dir: &Path, img: &Path, unprivileged: bool) -> std::process::Output {
    image_with(gen, dir, img, unprivileged, &[])
}

fn image_with(
    gen: &Path,
    dir: &Path,
    img: &Path,
    unprivileged: bool,
    extra: &[&std::ffi::OsStr],
) -> std::process::Output {
    let mut cmd = if unprivileged {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin("etcflip"));
        c
    } else {
        Command::new(bin("etcflip"))
    };
    cmd.arg("image")
        .arg(gen)
        .arg("--root")
        .arg(dir)
        .arg("--squashfs")
        .arg(img)
        .args(extra);
    cmd.output().unwrap()
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
    let work = s.dir.join("work");
    std::fs::create_dir(&work).unwrap();
    std::os::unix::fs::chown(&work, Some(65534), Some(65534)).unwrap();
    for p in [&s.dir, &s.root, &s.root.join("gens")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (mut images, mut erofs) = (Vec::new(), Vec::new());
    for (i, unprivileged) in [(1, true), (2, true), (3, false)] {
        let img = work.join(format!("{i}.sqfs"));
        let ero = work.join(format!("{i}.erofs"));
        let extra = [std::ffi::OsStr::new("--erofs"), ero.as_os_str()];
        let out = image_with(
            &gen,
            &work.join(format!("tree{i}")),
            &img,
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
    // Machine-local state stays out: stamps, the users' seal.
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("stamps.json") || l.contains("users.json")),
        "{lines:#?}"
    );
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
         {m}/etc/alice.conf {m}/home/alice {m}/etc/passwd && readlink {m}/etc/motd",
        erofs[0].display(),
        m = mnt.display()
    );
    let out = Command::new("unshare")
        .args(etcflip_e2e::unshare_private())
        .args(["sh", "-c", &script])
        .output()
        .unwrap();
    let m = mnt.display();
    assert_eq!(
        text_of(&out),
        format!(
            "755 0:0 {m}\n440 0:0 {m}/etc/sudoers\n640 1000:100 {m}/etc/alice.conf\n\
             700 1000:100 {m}/home/alice\n644 0:0 {m}/etc/passwd\n/etc/static/motd\n"
        )
    );
}

#[test]
fn a_confext_image_says_so_for_its_name() {
    let s = Scratch::new("image-confext");
    let gen = s.gen("a", &spec());
    let img = s.dir.join("etcflip-site.raw");
    let flag = std::ffi::OsStr::new("--confext");
    let out = image_with(
        &gen,
        &s.dir.join("tree"),
        &img,
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
    let tree = s.dir.join("t2");
    let bad = image_with(
        &gen,
        &tree,
        &s.dir.join("b.raw"),
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
    for d in ["etc", "run", "img"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let r = root.display();
    let script = format!(
        "mount -o ro,loop {} {r}/img && mount --bind {r}/img/etc {r}/etc && mount -o remount,ro,bind {r}/etc \
         && mount -t tmpfs tmpfs {r}/run && {} boot {} --root {r} && \
         readlink {r}/etc/motd {r}/run/etcflip/static && cat {r}/run/etcflip/static/motd && \
         stat -c '%a %U' {r}$(readlink {r}/run/wrappers/bin)/show && {} boot {} --root {r}",
        img.display(),
        bin("etcflip").display(),
        store_gen.display(),
        bin("etcflip").display(),
        store_gen.display(),
    );
    let out = Command::new("unshare")
        .args(etcflip_e2e::unshare_private())
        .args(["sh", "-c", &script])
        .output()
        .unwrap();
    let t = text_of(&out);
    assert_eq!(code(&out), 0, "{t}");
    for want in [
        &format!(
            "overlay: /run/etcflip/static -> {}/etc",
            store_gen.display()
        ),
        "wrappers: add /run/wrappers/bin/show (4511 root:root",
        "booted: /etc already holds this generation; nothing written below it",
        "/run/etcflip/static/motd\n",
        "hello\n",
        "4511 root\n",
        "overlay: already in place",
    ] {
        assert!(t.contains(want), "{want:?} not in:\n{t}");
    }
}

#[test]
fn boot_from_an_empty_etc_makes_what_a_switch_makes() {
    let s = Scratch::new("boot-empty");
    let gen = s.gen("a", &spec());
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
