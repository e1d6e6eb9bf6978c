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

/// `etcflip image gen --root dir --squashfs img`, as nobody when `unprivileged`.
fn image(gen: &Path, dir: &Path, img: &Path, unprivileged: bool) -> std::process::Output {
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
        .arg(img);
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
    let mut images = Vec::new();
    for (i, unprivileged) in [(1, true), (2, true), (3, false)] {
        let img = work.join(format!("{i}.sqfs"));
        let out = image(&gen, &work.join(format!("tree{i}")), &img, unprivileged);
        assert_eq!(code(&out), 0, "{i}: {}", text_of(&out));
        images.push(img);
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
