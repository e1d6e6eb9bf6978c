//! What a generation looks like: snapshots of a small but varied spec, and determinism.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{build_spec, generation_text, listing, names, TempDir};

/// Sources for [`SPEC`] inside `dir`, referred to as `<SRC>` in the spec.
fn sources(dir: &TempDir) {
    dir.write("files/nginx.conf", "worker_processes 1;\n");
    dir.write("files/ssh_config", "Host *\n");
    dir.write("store/fonts/10-hinting.conf", "<fontconfig/>\n");
    dir.write("store/fonts/50-user.conf", "<fontconfig/>\n");
    dir.write("store/fonts/.hidden", "not matched by *\n");
    dir.link("store/fonts/99-link.conf", "/nix/store/elsewhere.conf");
    dir.write("store/etc-issue", "Welcome\n");
}

/// Every kind of entry: links to absolute and relative sources, text, copies with numeric and
/// named owners, a runtime copy (outside `store`), direct links, dangling links, a glob, odd
/// names, a disabled entry.
const SPEC: &str = r#"{
  "store": "<SRC>/store",
  "etc": {
    "secret": {"source": "/run/secrets/x", "mode": "0400", "user": "nginx", "group": "+60"},
    "hosts": {"text": "127.0.0.1 localhost\n"},
    "sudoers": {"text": "root ALL=(ALL) ALL\n", "mode": "0440"},
    "nginx/nginx.conf": {"source": "files/nginx.conf", "mode": "644", "user": "nginx", "group": "+60"},
    "ssh/ssh_config": {"source": "<SRC>/files/ssh_config"},
    "localtime": {"source": "/etc/zoneinfo/Europe/Berlin", "mode": "direct-symlink"},
    "passwd": {"source": "/var/lib/nixos/etc/passwd", "enable": true, "uid": 0, "gid": 0,
               "user": "+0", "group": "+0", "mode": "symlink", "target": "passwd", "text": null},
    "fonts": {"source": "<SRC>/store/fonts/*", "target": "fonts/conf.d"},
    "issue": {"source": "<SRC>/store/etc-issue", "text": "Welcome\n"},
    "machine-id": {"text": "", "mode": "0444", "uid": 3, "gid": 4},
    "odd": {"target": "a dir/with %percent \"quoted\" ", "text": "odd\n"},
    "disabled": {"enable": false, "source": "/nowhere"}
  }
}"#;

fn spec_in(dir: &TempDir) -> String {
    SPEC.replace("<SRC>", dir.str())
}

#[test]
fn snapshot_of_a_varied_generation() {
    let dir = TempDir::new("snapshot");
    sources(&dir);
    let out = dir.join("gen");
    build_spec(&dir, &spec_in(&dir), &out).unwrap();
    let text = generation_text(&out).replace(dir.str(), "<SRC>");
    insta::assert_snapshot!("varied_generation", text);
    assert_eq!(names(dir.path()), ["files", "gen", "spec.json", "store"]);
    assert_eq!(
        names(&out),
        ["etc", "manifest.json", "tmpfiles.d"],
        "nothing else in a generation"
    );
}

#[test]
fn output_is_deterministic_whatever_the_out_path() {
    let dir = TempDir::new("determinism");
    sources(&dir);
    let spec = spec_in(&dir);
    let (a, b) = (dir.join("a"), dir.join("deeper/b"));
    std::fs::create_dir(dir.join("deeper")).unwrap();
    build_spec(&dir, &spec, &a).unwrap();
    build_spec(&dir, &spec, &b).unwrap();
    assert_eq!(listing(&a), listing(&b));
    for item in walkdir::WalkDir::new(&a).sort_by_file_name() {
        let item = item.unwrap();
        let rel = item.path().strip_prefix(&a).unwrap();
        if item.file_type().is_file() {
            let (x, y) = (
                std::fs::read(item.path()).unwrap(),
                std::fs::read(b.join(rel)).unwrap(),
            );
            assert!(x == y, "{} differs", rel.display());
        }
    }
}

#[test]
fn an_existing_out_is_refused_and_left_alone() {
    let dir = TempDir::new("exists");
    sources(&dir);
    let out = dir.join("gen");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("mine"), "x").unwrap();
    let err = build_spec(&dir, &spec_in(&dir), &out).unwrap_err();
    assert_eq!(etcflip_format::errors::exit_code(&err), 2);
    assert!(format!("{err:#}").contains("already exists"), "{err:#}");
    assert_eq!(names(&out), ["mine"]);
}

/// `--out a/b/GEN` creates `a/b` as `mkdir -p` would, but only once the inputs are valid.
#[test]
fn missing_parents_of_out_are_created() {
    let dir = TempDir::new("parents");
    sources(&dir);
    let spec = spec_in(&dir);
    build_spec(&dir, &spec, &dir.join("flat")).unwrap();
    build_spec(&dir, &spec, &dir.join("a/b/gen")).unwrap();
    assert_eq!(listing(&dir.join("a/b/gen")), listing(&dir.join("flat")));
    assert_eq!(
        names(&dir.join("a/b")),
        ["gen"],
        "no temporary directory left"
    );

    let bad = r#"{"etc": {"hosts": {"mode": "9"}}}"#;
    let err = build_spec(&dir, bad, &dir.join("c/d/gen")).unwrap_err();
    assert_eq!(etcflip_format::errors::exit_code(&err), 2, "{err:#}");
    assert!(!dir.join("c").exists(), "invalid input writes nothing");
}

#[test]
fn overlay_from_spec_or_option() {
    let dir = TempDir::new("overlay");
    let spec = r#"{"overlay": "/run/etcflip/static", "etc": {"a/b": {"text": "x"}}}"#;
    build_spec(&dir, spec, &dir.join("g1")).unwrap();
    let snippet = std::fs::read_to_string(dir.join("g1/tmpfiles.d/etcflip.conf")).unwrap();
    assert!(
        snippet.ends_with("L \"/etc/a/b\" - - - - /run/etcflip/static/a/b\n"),
        "{snippet}"
    );
    // `--overlay` wins over the spec; a target named like the default overlay is fine then.
    let spec_path = dir.write("s2.json", r#"{"etc": {"static": {"text": "x"}}}"#);
    etcflip_gen::build(&etcflip_gen::Options {
        spec: Some(spec_path),
        out: dir.join("g2"),
        overlay: Some("/run/o".into()),
        ..Default::default()
    })
    .unwrap();
    let m = std::fs::read_to_string(dir.join("g2/manifest.json")).unwrap();
    assert!(m.contains("\"overlay\": \"/run/o\""), "{m}");
}
