//! `--nixos-etc`: importing the tree NixOS's etc derivation builds (links plus sidecars).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{generation_text, TempDir};
use etcflip_format::manifest::{Id, Kind, Manifest, Mode};
use etcflip_gen::Options;

/// A small tree as the NixOS builder makes it: `$out/etc` with absolute links into the "store"
/// (here `<SRC>/store`), sidecars for a copy and a direct link, and a directory made by a glob
/// entry (no sidecars, one link per match).
fn fake_etc(dir: &TempDir) -> std::path::PathBuf {
    let store = dir.join("store");
    let s = |rel: &str| store.join(rel).to_str().unwrap().to_owned();
    dir.write("store/hosts", "127.0.0.1 localhost\n");
    dir.write("store/sudoers", "root ALL=(ALL) ALL\n");
    dir.write("store/fonts/10-a.conf", "a");
    dir.write("store/fonts/20-b.conf", "b");
    dir.link("out/etc/hosts", &s("hosts"));
    dir.link("out/etc/sudoers", &s("sudoers"));
    dir.write("out/etc/sudoers.mode", "0440\n");
    dir.write("out/etc/sudoers.uid", "+0\n");
    dir.write("out/etc/sudoers.gid", "wheel\n");
    dir.link("out/etc/localtime", "/etc/zoneinfo/UTC");
    dir.write("out/etc/localtime.mode", "direct-symlink\n");
    dir.write("out/etc/localtime.uid", "+0\n");
    dir.write("out/etc/localtime.gid", "+0\n");
    dir.link("out/etc/fonts/conf.d/10-a.conf", &s("fonts/10-a.conf"));
    dir.link("out/etc/fonts/conf.d/20-b.conf", &s("fonts/20-b.conf"));
    dir.link("out/etc/passwd", "/var/lib/nixos/etc/passwd");
    dir.join("out")
}

fn entry<'m>(m: &'m Manifest<'m>, target: &str) -> &'m etcflip_format::manifest::Entry<'m> {
    m.get(target).unwrap_or_else(|| panic!("no entry {target}"))
}

#[test]
fn a_nixos_etc_tree_is_imported_as_it_is() {
    let dir = TempDir::new("import");
    let out = fake_etc(&dir);
    let gen = dir.join("gen");
    etcflip_gen::build(&Options {
        nixos_etc: Some(out.clone()),
        out: gen.clone(),
        ..Options::default()
    })
    .unwrap();
    let m = Manifest::load(&gen).unwrap();
    let store = dir.join("store");
    let s = |rel: &str| -> Option<etcflip_format::manifest::Str<'static>> {
        Some(store.join(rel).to_str().unwrap().to_owned().into())
    };

    let hosts = entry(&m, "hosts");
    assert_eq!((hosts.kind, &hosts.source), (Kind::Symlink, &s("hosts")));
    let sudoers = entry(&m, "sudoers");
    assert_eq!(sudoers.kind, Kind::Copy);
    assert_eq!(sudoers.mode, Some(Mode(0o440)));
    assert_eq!(sudoers.uid, Some(Id::Num(0)));
    assert_eq!(sudoers.gid, Some(Id::Name("wheel".into())));
    assert_eq!(sudoers.source, s("sudoers"));
    assert_eq!(
        std::fs::read_to_string(gen.join("etc/sudoers")).unwrap(),
        "root ALL=(ALL) ALL\n"
    );
    let lt = entry(&m, "localtime");
    assert_eq!(lt.kind, Kind::DirectSymlink);
    assert_eq!(lt.source.as_deref(), Some("/etc/zoneinfo/UTC"));
    assert_eq!(entry(&m, "fonts").kind, Kind::Dir);
    assert_eq!(entry(&m, "fonts/conf.d").kind, Kind::Dir);
    assert_eq!(
        entry(&m, "fonts/conf.d/20-b.conf").source,
        s("fonts/20-b.conf")
    );
    assert_eq!(entry(&m, "passwd").kind, Kind::Symlink);
    // Sidecars are metadata, not entries.
    assert!(m.get("sudoers.mode").is_none() && m.get("localtime.gid").is_none());
    assert_eq!(m.entries.len(), 8);

    // DIR and DIR/etc are the same import, and it is deterministic.
    let gen2 = dir.join("gen2");
    etcflip_gen::build(&Options {
        nixos_etc: Some(out.join("etc")),
        out: gen2.clone(),
        ..Options::default()
    })
    .unwrap();
    assert_eq!(generation_text(&gen), generation_text(&gen2));
}

#[test]
fn spec_and_tree_are_merged_and_checked_together() {
    let dir = TempDir::new("merge");
    let out = fake_etc(&dir);
    dir.link("out/etc/relative", "../store/hosts");
    let spec = dir.write(
        "spec.json",
        r#"{"etc": {"hosts": {"text": "dup"}, "motd": {"text": "hi\n"}}}"#,
    );
    let err = etcflip_gen::build(&Options {
        spec: Some(spec.clone()),
        nixos_etc: Some(out.clone()),
        out: dir.join("gen"),
        ..Options::default()
    })
    .unwrap_err();
    let msg = format!("{err:#}");
    assert_eq!(etcflip_format::errors::exit_code(&err), 2);
    for want in [
        r#"--nixos-etc "hosts".target: "hosts" is also the target of etc."hosts""#,
        r#"--nixos-etc "relative".source: relative path "../store/hosts" (NixOS always writes absolute ones)"#,
        "is invalid (2 problems)",
    ] {
        assert!(msg.contains(want), "{want:?} missing in:\n{msg}");
    }
    assert!(!dir.join("gen").exists());

    std::fs::remove_file(out.join("etc/relative")).unwrap();
    std::fs::write(&spec, r#"{"etc": {"motd": {"text": "hi\n"}}}"#).unwrap();
    etcflip_gen::build(&Options {
        spec: Some(spec),
        nixos_etc: Some(out),
        out: dir.join("gen"),
        ..Options::default()
    })
    .unwrap();
    let m = Manifest::load(&dir.join("gen")).unwrap();
    assert_eq!(entry(&m, "motd").kind, Kind::Symlink);
    assert_eq!(m.entries.len(), 9);
}

/// A tree that lives in a store (`<SRC>/store/<hash>-etc`): a copy whose link leads out of that
/// store (NixOS's `source = "/run/secrets/x"; mode = "0400";`) is a runtime copy, one into it
/// is read and hashed. A tree outside any store (above) reads every copy.
#[test]
fn a_tree_in_a_store_makes_runtime_copies_of_sources_outside_it() {
    let dir = TempDir::new("import-store");
    let store = dir.join("store");
    let sudoers = store.join("0000000000000000000000000000000b-sudoers");
    dir.write(
        "store/0000000000000000000000000000000b-sudoers",
        "root ALL\n",
    );
    let tree = "store/0000000000000000000000000000000a-etc/etc";
    dir.link(&format!("{tree}/sudoers"), sudoers.to_str().unwrap());
    dir.write(&format!("{tree}/sudoers.mode"), "0440\n");
    dir.link(&format!("{tree}/secret"), "/run/secrets/x");
    dir.write(&format!("{tree}/secret.mode"), "0400\n");
    dir.write(&format!("{tree}/secret.uid"), "nginx\n");
    dir.link(&format!("{tree}/hosts"), "/run/secrets/hosts");
    let gen = dir.join("gen");
    etcflip_gen::build(&Options {
        nixos_etc: Some(store.join("0000000000000000000000000000000a-etc")),
        out: gen.clone(),
        ..Options::default()
    })
    .unwrap();
    let m = Manifest::load(&gen).unwrap();
    let secret = entry(&m, "secret");
    assert!(secret.is_runtime_copy());
    assert_eq!(secret.source.as_deref(), Some("/run/secrets/x"));
    assert_eq!(
        (secret.mode, &secret.uid),
        (Some(Mode(0o400)), &Some(Id::Name("nginx".into())))
    );
    assert!(gen.join("etc/secret").symlink_metadata().is_err());
    assert!(!entry(&m, "sudoers").is_runtime_copy());
    assert_eq!(
        std::fs::read_to_string(gen.join("etc/sudoers")).unwrap(),
        "root ALL\n"
    );
    assert_eq!(entry(&m, "hosts").kind, Kind::Symlink);
}
