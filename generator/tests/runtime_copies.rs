//! Runtime copies: with the spec's `store`, a copy whose absolute source lies outside it is
//! recorded for the applier to read at switch time, and never read when building.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{build_spec, generation_text, TempDir};
use etcflip_format::manifest::{Id, Kind, Manifest, Mode};

/// A store with one file, a file beside the spec, and a file outside both that exists on the
/// build host (it must not be read either).
fn sources(dir: &TempDir) {
    dir.write("store/aaaa-sudoers", "root ALL=(ALL) ALL\n");
    dir.write("files/motd", "hello\n");
    dir.write("host/secret", "the build host's secret\n");
}

const SPEC: &str = r#"{
  "store": "<SRC>/store",
  "etc": {
    "secrets/missing": {"source": "/run/secrets/x", "mode": "0400", "user": "nginx"},
    "secrets/on-host": {"source": "<SRC>/host/secret", "mode": "600", "uid": 5, "gid": 6},
    "sudoers": {"source": "<SRC>/store/aaaa-sudoers", "mode": "0440"},
    "motd": {"source": "files/motd", "mode": "0644"},
    "link": {"source": "/run/secrets/y"},
    "direct": {"source": "/run/secrets/z", "mode": "direct-symlink"}
  }
}"#;

#[test]
fn copies_from_outside_the_store_are_recorded_without_hash_or_payload() {
    let dir = TempDir::new("runtime");
    sources(&dir);
    let gen = dir.join("gen");
    build_spec(&dir, &SPEC.replace("<SRC>", dir.str()), &gen).unwrap();
    let m = Manifest::load(&gen).unwrap();

    let missing = m.get("secrets/missing").unwrap();
    assert!(missing.is_runtime_copy());
    assert_eq!(missing.source.as_deref(), Some("/run/secrets/x"));
    assert_eq!(missing.mode, Some(Mode(0o400)));
    assert_eq!(missing.uid, Some(Id::Name("nginx".into())));
    assert_eq!(missing.gid, Some(Id::Num(0)));
    let on_host = m.get("secrets/on-host").unwrap();
    assert!(on_host.is_runtime_copy());
    assert_eq!(
        (&on_host.uid, &on_host.gid),
        (&Some(Id::Num(5)), &Some(Id::Num(6)))
    );
    for target in ["secrets/missing", "secrets/on-host"] {
        assert!(
            gen.join("etc").join(target).symlink_metadata().is_err(),
            "{target} has a payload file"
        );
    }
    assert!(gen.join("etc/secrets").is_dir());

    // In the store, or beside the spec (relative): read now, hashed, in the payload.
    for (target, content) in [("sudoers", "root ALL=(ALL) ALL\n"), ("motd", "hello\n")] {
        let e = m.get(target).unwrap();
        assert_eq!(e.kind, Kind::Copy);
        assert!(!e.is_runtime_copy(), "{target}");
        assert_eq!(
            std::fs::read_to_string(gen.join("etc").join(target)).unwrap(),
            content
        );
    }
    // Links never read their sources: unchanged by `store`.
    assert_eq!(m.get("link").unwrap().kind, Kind::Symlink);
    assert_eq!(m.get("direct").unwrap().kind, Kind::DirectSymlink);

    // The exact manifest form: no sha256.
    let text = std::fs::read_to_string(gen.join("manifest.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entry = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"] == "secrets/missing")
        .unwrap();
    assert_eq!(
        entry,
        &serde_json::json!({"target": "secrets/missing", "kind": "copy",
            "source": "/run/secrets/x", "mode": "0400", "uid": "nginx", "gid": 0})
    );
}

#[test]
fn the_same_spec_gives_the_same_bytes() {
    let dir = TempDir::new("runtime-same");
    sources(&dir);
    let spec = SPEC.replace("<SRC>", dir.str());
    build_spec(&dir, &spec, &dir.join("a")).unwrap();
    // The host file outside the store changes between builds: the output must not.
    dir.write("host/secret", "changed\n");
    build_spec(&dir, &spec, &dir.join("b")).unwrap();
    assert_eq!(
        generation_text(&dir.join("a")),
        generation_text(&dir.join("b"))
    );
}

#[test]
fn without_store_every_copy_is_read_at_build_time() {
    let dir = TempDir::new("runtime-no-store");
    sources(&dir);
    let spec = format!(
        r#"{{"etc": {{"secret": {{"source": "{}/host/secret", "mode": "0400"}}}}}}"#,
        dir.str()
    );
    build_spec(&dir, &spec, &dir.join("gen")).unwrap();
    let m = Manifest::load(&dir.join("gen")).unwrap();
    assert!(!m.get("secret").unwrap().is_runtime_copy());
    assert_eq!(
        std::fs::read_to_string(dir.join("gen/etc/secret")).unwrap(),
        "the build host's secret\n"
    );
}
