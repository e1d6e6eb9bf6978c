//! What a first boot, nixos-install or a machine whose users come later meets: owner names
//! that resolve nowhere yet (never fail closed: the copy goes in owned by root, named in the
//! output, `status` and `verify`, and gets its owner at the next switch where the name
//! resolves), and copies of files outside the store, read at switch time under the root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use etcflip_e2e::{code, text_of, Scratch};
use serde_json::json;

fn owner_mode(p: &Path) -> (u32, u32, u32) {
    let md = std::fs::symlink_metadata(p).unwrap();
    (md.uid(), md.gid(), md.mode() & 0o7777)
}

/// `root` is uid and gid 0 before any user database exists (an empty `/etc` at first boot):
/// a copy owned by it is complete, not waiting for a name to resolve.
#[test]
fn a_copy_owned_by_root_needs_no_user_database() {
    let s = Scratch::new("boot-root-owner");
    let gen = s.gen(
        "a",
        &json!({"etc": {"sudoers": {"text": "x\n", "mode": "0440", "user": "root", "group": "root"}}}),
    );
    let out = s.switch_out(&gen, &[]);
    let said = text_of(&out);
    assert_eq!(code(&out), 0, "{said}");
    assert!(!said.contains("not in"), "{said}");
    assert_eq!(owner_mode(&s.etc("sudoers")), (0, 0, 0o440));
    let verify = s.etcflip(&["verify", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(code(&verify), 0, "{}", text_of(&verify));
    assert_eq!(report["unresolved"], json!([]), "{report:#}");
}

#[test]
fn an_unknown_owner_name_never_stops_a_switch_and_is_fixed_when_it_resolves() {
    let s = Scratch::new("boot-owner");
    let entry =
        |content: &str| json!({"text": content, "mode": "0640", "user": "svc", "group": "svc"});
    let a = s.gen(
        "a",
        &json!({"etc": {"svc.conf": entry("secret\n"), "motd": {"text": "hi\n"}}}),
    );
    let b = s.gen(
        "b",
        &json!({"etc": {"svc.conf": entry("secret\n"), "motd": {"text": "hello\n"}}}),
    );
    // A root without the user (a first boot before userborn or sysusers made it).
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    std::fs::write(s.etc("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(s.etc("group"), "root:x:0:\n").unwrap();
    let out = s.switch_out(&a, &["--on-conflict", "backup"]);
    let said = text_of(&out);
    assert_eq!(code(&out), 0, "{said}");
    assert!(
        said.contains("warning: /etc/svc.conf: user \"svc\" and group \"svc\" not in"),
        "{said}"
    );
    assert_eq!(owner_mode(&s.etc("svc.conf")), (0, 0, 0o640));
    assert_eq!(std::fs::read(s.etc("svc.conf")).unwrap(), b"secret\n");
    assert!(std::fs::symlink_metadata(s.etc("motd"))
        .unwrap()
        .is_symlink());
    for cmd in ["status", "verify"] {
        let out = s.etcflip(&[cmd]);
        let said = text_of(&out);
        assert_eq!(code(&out), 0, "{cmd}: {said}");
        assert!(
            said.contains("/etc/svc.conf: user \"svc\""),
            "{cmd}: {said}"
        );
        let out = s.etcflip(&[cmd, "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            report["unresolved"],
            json!([{"path": "/etc/svc.conf", "user": "svc", "group": "svc"}]),
            "{cmd}"
        );
    }
    // The user appears (a service made it); verify now sees the owner as drift, and the next
    // switch, a transition, gives the copy its owner.
    std::fs::write(
        s.etc("passwd"),
        "root:x:0:0::/root:/bin/sh\nsvc:x:990:991::/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(s.etc("group"), "root:x:0:\nsvc:x:991:\n").unwrap();
    let drift = s.etcflip(&["verify"]);
    assert_eq!(code(&drift), 1, "{}", text_of(&drift));
    assert!(
        text_of(&drift).contains("owner 990:991"),
        "{}",
        text_of(&drift)
    );
    s.switch(&b, &[]);
    assert_eq!(owner_mode(&s.etc("svc.conf")), (990, 991, 0o640));
    let clean = s.etcflip(&["verify"]);
    assert_eq!(code(&clean), 0, "{}", text_of(&clean));
    assert!(!text_of(&clean).contains("warning"), "{}", text_of(&clean));
}

#[test]
fn a_re_switch_gives_the_owner_once_the_name_resolves() {
    let s = Scratch::new("boot-owner-again");
    let a = s.gen(
        "a",
        &json!({"etc": {"x.conf": {"text": "x\n", "mode": "0600", "user": "late"}}}),
    );
    s.switch(&a, &[]);
    assert_eq!(owner_mode(&s.etc("x.conf")), (0, 0, 0o600));
    std::fs::write(s.etc("passwd"), "late:x:1234:100::/:/bin/false\n").unwrap();
    s.switch(&a, &[]);
    assert_eq!(owner_mode(&s.etc("x.conf")), (1234, 0, 0o600));
    let again = s.switch(&a, &[]);
    assert!(again.contains("already up to date"), "{again}");
}

/// A spec with the harness's store declared, so that absolute sources outside it are runtime
/// copies.
fn with_store(s: &Scratch, etc: &serde_json::Value) -> serde_json::Value {
    json!({"store": s.root.join("store"), "etc": etc})
}

fn secret_entry() -> serde_json::Value {
    json!({"source": "/run/secrets/db", "mode": "0400", "uid": 0, "gid": 0})
}

/// `<root>/run/secrets.d/1/db`, reached through `<root>/run/secrets -> secrets.d/1` (as
/// sops-nix lays it out): links inside the root are followed, within it.
fn put_secret(s: &Scratch, content: &str) {
    let dir = s.root.join("run/secrets.d/1");
    std::fs::create_dir_all(&dir).unwrap();
    let link = s.root.join("run/secrets");
    if link.symlink_metadata().is_err() {
        std::os::unix::fs::symlink("secrets.d/1", &link).unwrap();
    }
    std::fs::write(dir.join("db"), content).unwrap();
}

#[test]
fn a_copy_of_a_runtime_file_is_read_under_the_root_at_every_switch() {
    let s = Scratch::new("boot-runtime");
    let a = s.gen("a", &with_store(&s, &json!({"db.conf": secret_entry()})));
    let manifest = std::fs::read_to_string(a.join("manifest.json")).unwrap();
    assert!(!manifest.contains("sha256"), "{manifest}");
    put_secret(&s, "password=1\n");
    s.switch(&a, &[]);
    assert_eq!(owner_mode(&s.etc("db.conf")), (0, 0, 0o400));
    assert_eq!(std::fs::read(s.etc("db.conf")).unwrap(), b"password=1\n");
    let clean = s.etcflip(&["verify"]);
    assert_eq!(code(&clean), 0, "{}", text_of(&clean));
    // The source changes: verify sees it, and a re-switch copies it again.
    put_secret(&s, "password=2\n");
    let drift = s.etcflip(&["verify"]);
    assert_eq!(code(&drift), 1, "{}", text_of(&drift));
    assert!(
        text_of(&drift).contains("a copy of /run/secrets/db"),
        "{}",
        text_of(&drift)
    );
    s.switch(&a, &[]);
    assert_eq!(std::fs::read(s.etc("db.conf")).unwrap(), b"password=2\n");
    assert!(s.switch(&a, &[]).contains("already up to date"));
    // An edited copy is not ours: never overwritten behind the admin's back.
    std::fs::write(s.etc("db.conf"), "edited\n").unwrap();
    put_secret(&s, "password=3\n");
    let refused = s.switch_out(&a, &[]);
    assert_eq!(code(&refused), 3, "{}", text_of(&refused));
    assert_eq!(std::fs::read(s.etc("db.conf")).unwrap(), b"edited\n");
}

#[test]
fn a_missing_runtime_source_leaves_that_entry_and_applies_the_rest() {
    let s = Scratch::new("boot-runtime-missing");
    let etc_a = json!({"db.conf": secret_entry(), "motd": {"text": "a\n"}});
    let etc_b = json!({"db.conf": secret_entry(), "motd": {"text": "b\n"}, "new": {"text": "n\n"}});
    let a = s.gen("a", &with_store(&s, &etc_a));
    let b = s.gen("b", &with_store(&s, &etc_b));
    // First boot: no secret yet. Everything else is applied; no partial file; exit 1.
    let out = s.switch_out(&a, &[]);
    let said = text_of(&out);
    assert_eq!(code(&out), 1, "{said}");
    assert!(
        said.contains("/etc/db.conf: its source /run/secrets/db is missing"),
        "{said}"
    );
    assert!(std::fs::symlink_metadata(s.etc("db.conf")).is_err());
    assert!(std::fs::symlink_metadata(s.etc("motd"))
        .unwrap()
        .is_symlink());
    // The secret appears; the next switch (a transition) installs it.
    put_secret(&s, "pw\n");
    s.switch(&b, &[]);
    assert_eq!(std::fs::read(s.etc("db.conf")).unwrap(), b"pw\n");
    // It goes missing again: the installed copy is kept (still ours), the rest goes on.
    std::fs::remove_file(s.root.join("run/secrets.d/1/db")).unwrap();
    let out = s.switch_out(&a, &[]);
    assert_eq!(code(&out), 1, "{}", text_of(&out));
    assert_eq!(std::fs::read(s.etc("db.conf")).unwrap(), b"pw\n");
    assert!(std::fs::symlink_metadata(s.etc("new")).is_err());
    // A generation without it removes it: it is still provably ours.
    let c = s.gen("c", &with_store(&s, &json!({"motd": {"text": "c\n"}})));
    s.switch(&c, &[]);
    assert!(std::fs::symlink_metadata(s.etc("db.conf")).is_err());
}

/// The state files are world-readable: what they record of a runtime copy (often a secret)
/// is keyed with the root's own 0600 key, never its plain sha256, and verify prints no hash.
#[test]
fn a_runtime_copy_leaves_no_plain_hash_of_its_secret_in_readable_state() {
    let s = Scratch::new("boot-runtime-digest");
    let a = s.gen("a", &with_store(&s, &json!({"db.conf": secret_entry()})));
    put_secret(&s, "1234\n");
    s.switch(&a, &[]);
    let plain = etcflip::fs::sha256_bytes(b"1234\n");
    let applied = std::fs::read_to_string(s.etc(".etcflip/applied.json")).unwrap();
    assert!(applied.contains("\"runtime\""), "{applied}");
    assert!(!applied.contains(&plain), "{applied}");
    assert_eq!(owner_mode(&s.etc(".etcflip/key")), (0, 0, 0o600));
    std::fs::write(s.etc("db.conf"), "5678\n").unwrap();
    let drift = s.etcflip(&["verify", "--json"]);
    let said = text_of(&drift);
    assert_eq!(code(&drift), 1, "{said}");
    assert!(said.contains("a copy of /run/secrets/db"), "{said}");
    for secret in ["1234\n", "5678\n"] {
        let sha = etcflip::fs::sha256_bytes(secret.as_bytes());
        assert!(!said.contains(&sha), "{said}");
    }
}

/// A runtime copy inside a directory that replaces a directory link is built into that
/// directory's swap tree: recorded as ours like any other (so a rotated secret replaces it),
/// and, while its source is missing, simply left out of the tree (the rest is applied).
#[test]
fn a_runtime_copy_inside_a_directory_built_aside() {
    let s = Scratch::new("boot-runtime-swap");
    let dir = s.store("d/readme", "r\n");
    let a = s.gen(
        "a",
        &with_store(&s, &json!({"d": {"source": dir.parent().unwrap()}})),
    );
    let b = s.gen(
        "b",
        &with_store(
            &s,
            &json!({"d/x": {"text": "x\n"}, "d/secret": {"source": "/run/secrets/db", "mode": "0400"}}),
        ),
    );
    s.switch(&a, &[]);
    let out = s.switch_out(&b, &[]);
    assert_eq!(code(&out), 1, "incomplete: {}", text_of(&out));
    assert!(std::fs::symlink_metadata(s.etc("d/x"))
        .unwrap()
        .is_symlink());
    assert!(std::fs::symlink_metadata(s.etc("d/secret")).is_err());
    put_secret(&s, "one\n");
    s.switch(&b, &[]);
    assert_eq!(std::fs::read(s.etc("d/secret")).unwrap(), b"one\n");
    put_secret(&s, "two\n");
    let out = s.switch(&b, &["--on-conflict", "backup"]);
    assert!(!out.contains("backup"), "{out}");
    assert_eq!(std::fs::read(s.etc("d/secret")).unwrap(), b"two\n");
    // The same, but the secret was there from the start.
    let s2 = Scratch::new("boot-runtime-swap2");
    let a2 = s2.gen(
        "a",
        &with_store(&s2, &json!({"d": {"source": dir.parent().unwrap()}})),
    );
    let b2 = s2.gen(
        "b",
        &json!({"store": s2.root.join("store"), "etc": {
        "d/x": {"text": "x\n"}, "d/secret": {"source": "/run/secrets/db", "mode": "0400"}}}),
    );
    put_secret(&s2, "one\n");
    s2.switch(&a2, &[]);
    s2.switch(&b2, &[]);
    put_secret(&s2, "two\n");
    let out = s2.switch(&b2, &["--on-conflict", "backup"]);
    assert!(!out.contains("backup"), "{out}");
    assert_eq!(std::fs::read(s2.etc("d/secret")).unwrap(), b"two\n");
}

/// The key is made by the first switch that writes: a refused switch changes nothing.
#[test]
fn a_refused_switch_makes_no_key() {
    let s = Scratch::new("boot-runtime-refused");
    let a = s.gen("a", &with_store(&s, &json!({"db.conf": secret_entry()})));
    put_secret(&s, "pw\n");
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    std::fs::write(s.etc("db.conf"), "mine\n").unwrap();
    let out = s.switch_out(&a, &[]);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    assert!(std::fs::symlink_metadata(s.etc(".etcflip/key")).is_err());
    s.switch(&a, &["--on-conflict", "backup"]);
    assert_eq!(owner_mode(&s.etc(".etcflip/key")), (0, 0, 0o600));
}

/// A switch that writes never replaces the root's key: one that cannot read it (not root)
/// stops, and the digests recorded with it stay valid.
#[test]
fn a_switch_that_cannot_read_the_key_stops_and_keeps_it() {
    let s = Scratch::new("boot-runtime-key-guard");
    let a = s.gen(
        "a",
        &with_store(
            &s,
            &json!({"db.conf": secret_entry(), "m": {"text": "a\n"}}),
        ),
    );
    let b = s.gen(
        "b",
        &with_store(
            &s,
            &json!({"db.conf": secret_entry(), "m": {"text": "b\n"}}),
        ),
    );
    put_secret(&s, "pw\n");
    s.switch(&a, &[]);
    let key = std::fs::read(s.etc(".etcflip/key")).unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&s.root)
        .status()
        .unwrap();
    assert!(chown.success());
    std::os::unix::fs::chown(s.etc(".etcflip/key"), Some(0), Some(0)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(etcflip_e2e::bin("etcflip"))
        .args(["switch", b.to_str().unwrap(), "--root"])
        .arg(&s.root)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text_of(&out));
    assert!(
        text_of(&out).contains("key cannot be read"),
        "{}",
        text_of(&out)
    );
    assert_eq!(std::fs::read(s.etc(".etcflip/key")).unwrap(), key);
    assert_eq!(owner_mode(&s.etc(".etcflip/key")), (0, 0, 0o600));
}
