//! Snapshots of the plans `etcflip switch --dry-run` prints (JSON and text) across generations
//! A → B → C, each taken just before the real switch. The transitions cover additions,
//! removals, symlink ↔ copy, a directory link becoming per-file links and back, per-file links
//! becoming a directory link, direct-symlink changes, nested directory removal, a glob whose
//! matches change, and in C a foreign file in the way (refused, then backed up) beside a
//! foreign file with identical content (adopted).
//!
//! The scratch directory is replaced by `[SCRATCH]`, so the snapshots are deterministic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use etcflip_e2e::{code, source, spec, text, text_of, Scratch};
use serde_json::{json, Value};

fn spec_a(s: &Scratch) -> Value {
    s.store("units-a/a.service", "[Service]\nExecStart=/bin/a\n");
    s.store("units-a/b.service", "[Service]\nExecStart=/bin/b\n");
    s.store("fonts-a/10-a.conf", "<a/>\n");
    s.store("fonts-a/20-b.conf", "<b/>\n");
    s.store("fonts-a/README", "not matched\n");
    spec(&[
        (
            "units",
            source("systemd/system", &s.root.join("store/units-a")),
        ),
        ("hosts", text("hosts", "127.0.0.1 localhost\n")),
        ("login.defs", json!({"text": "UMASK 022\n", "mode": "0644"})),
        ("sudoers", text("sudoers", "root ALL=(ALL) ALL\n")),
        (
            "localtime",
            json!({"source": "/etc/zoneinfo/Europe/Berlin", "mode": "direct-symlink"}),
        ),
        ("old", text("old/nested/deep/file", "going away\n")),
        (
            "pam-login",
            text("pam.d/login", "auth required pam_unix.so\n"),
        ),
        (
            "pam-sshd",
            text("pam.d/sshd", "auth required pam_unix.so\n"),
        ),
        ("gone", text("gone", "gone in B\n")),
        (
            "fonts",
            json!({"target": "fonts/conf.d", "source": s.root.join("store/fonts-a/*.conf")}),
        ),
    ])
}

fn spec_b(s: &Scratch) -> Value {
    let a = s.store("units-b/a.service", "[Service]\nExecStart=/bin/a2\n");
    let c = s.store("units-b/c.service", "[Service]\nExecStart=/bin/c\n");
    s.store("pam-b/login", "auth required pam_unix.so\n");
    s.store("pam-b/su", "auth sufficient pam_rootok.so\n");
    s.store("fonts-b/10-a.conf", "<a/>\n");
    s.store("fonts-b/30-c.conf", "<c/>\n");
    spec(&[
        ("units-a", source("systemd/system/a.service", &a)),
        ("units-c", source("systemd/system/wants/c.service", &c)),
        ("hosts", text("hosts", "127.0.0.1 localhost b\n")),
        ("login.defs", text("login.defs", "UMASK 022\n")),
        (
            "sudoers",
            json!({"text": "root ALL=(ALL) ALL\n%wheel ALL=(ALL) ALL\n", "mode": "0440"}),
        ),
        (
            "localtime",
            json!({"source": "/etc/zoneinfo/America/New_York", "mode": "direct-symlink"}),
        ),
        ("pam", source("pam.d", &s.root.join("store/pam-b"))),
        ("new", text("new/dir/file", "new in B\n")),
        (
            "fonts",
            json!({"target": "fonts/conf.d", "source": s.root.join("store/fonts-b/*.conf")}),
        ),
    ])
}

fn spec_c(s: &Scratch) -> Value {
    s.store("units-c/a.service", "[Service]\nExecStart=/bin/a3\n");
    s.store("units-c/d.service", "[Service]\nExecStart=/bin/d\n");
    spec(&[
        (
            "units",
            source("systemd/system", &s.root.join("store/units-c")),
        ),
        ("hosts", text("hosts", "127.0.0.1 localhost b\n")),
        ("login.defs", text("login.defs", "UMASK 022\n")),
        (
            "sudoers",
            json!({"text": "root ALL=(ALL) ALL\n%wheel ALL=(ALL) NOPASSWD: ALL\n", "mode": "0400"}),
        ),
        ("localtime", json!({"text": "TZif-ish\n", "mode": "0644"})),
        ("pam", source("pam.d", &s.root.join("store/pam-b"))),
        ("new", text("new/dir/other", "other in C\n")),
        ("motd", text("motd", "Welcome to C\n")),
        ("issue", text("issue", "Identical\n")),
    ])
}

/// The dry-run outputs (JSON, text) for `g`, with the scratch path replaced; asserts the
/// exit code and that the dry run wrote nothing.
fn dry_run(s: &Scratch, g: &Path, extra: &[&str], want_code: i32) -> (String, String) {
    let before = s.listing();
    let scrub = |t: &[u8]| String::from_utf8_lossy(t).replace(s.dir.to_str().unwrap(), "[SCRATCH]");
    let mut args = vec!["switch", g.to_str().unwrap(), "--dry-run", "--json"];
    args.extend_from_slice(extra);
    let out = s.etcflip(&args);
    assert_eq!(code(&out), want_code, "{}", text_of(&out));
    let json_text = scrub(&out.stdout);
    let v: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(v["changed"], json!(false));
    args.retain(|a| *a != "--json");
    let out = s.etcflip(&args);
    assert_eq!(code(&out), want_code, "{}", text_of(&out));
    assert_eq!(before, s.listing(), "the dry run changed the root");
    (json_text, scrub(&out.stdout))
}

fn verify_clean(s: &Scratch) {
    let out = s.etcflip(&["verify"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
}

#[test]
fn plans_across_generations() {
    let s = Scratch::new("plans");
    let ga = s.gen("a", &spec_a(&s));
    let gb = s.gen("b", &spec_b(&s));
    let gc = s.gen("c", &spec_c(&s));

    let (j, t) = dry_run(&s, &ga, &[], 0);
    insta::assert_snapshot!("1_fresh_to_a_json", j);
    insta::assert_snapshot!("1_fresh_to_a_text", t);
    s.switch(&ga, &[]);
    verify_clean(&s);

    let (j, t) = dry_run(&s, &gb, &[], 0);
    insta::assert_snapshot!("2_a_to_b_json", j);
    insta::assert_snapshot!("2_a_to_b_text", t);
    s.switch(&gb, &[]);
    verify_clean(&s);

    // Foreign files where C wants entries: one different (a conflict), one identical.
    std::fs::write(s.etc("motd"), "the admin's motd\n").unwrap();
    std::fs::write(s.etc("issue"), "Identical\n").unwrap();
    let (j, t) = dry_run(&s, &gc, &[], 3);
    insta::assert_snapshot!("3_b_to_c_refused_json", j);
    insta::assert_snapshot!("3_b_to_c_refused_text", t);
    let before = s.listing();
    let out = s.etcflip(&["switch", gc.to_str().unwrap()]);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    assert!(text_of(&out).contains("/etc/motd"), "{}", text_of(&out));
    assert_eq!(before, s.listing(), "a refused switch changed the root");
    verify_clean(&s);

    let (j, t) = dry_run(&s, &gc, &["--on-conflict", "backup"], 0);
    insta::assert_snapshot!("4_b_to_c_backup_json", j);
    insta::assert_snapshot!("4_b_to_c_backup_text", t);
    s.switch(&gc, &["--on-conflict", "backup"]);
    verify_clean(&s);
    assert_eq!(
        std::fs::read_to_string(s.etc("motd.etcflip-backup")).unwrap(),
        "the admin's motd\n"
    );

    let (j, t) = dry_run(&s, &gc, &[], 0);
    insta::assert_snapshot!("5_c_again_json", j);
    insta::assert_snapshot!("5_c_again_text", t);
}
