//! Invariant 7: every successful switch leaves every entry of its target as the manifest
//! says, transitions included. A transition skips an entry only when the stamps recorded at
//! the last commit prove it unchanged (applier/src/etc/stamps.rs); drift at an unchanged entry is
//! repaired or handled as a conflict like anywhere else. Mount points are never replaced.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use etcflip_e2e::{bin, code, settle, spec, text, text_of, unshare_private, Scratch};
use serde_json::Value;

/// A and B share everything in `ssh/` and differ only at the top level.
fn two_gens(s: &Scratch) -> (PathBuf, PathBuf) {
    let shared = [
        ("ssh/shared.conf", text("ssh/shared.conf", "shared\n")),
        ("ssh/other.conf", text("ssh/other.conf", "other\n")),
    ];
    let mut a = shared.to_vec();
    a.push(("only-a.conf", text("only-a.conf", "a\n")));
    let mut b = shared.to_vec();
    b.push(("only-b.conf", text("only-b.conf", "b\n")));
    (s.gen("a", &spec(&a)), s.gen("b", &spec(&b)))
}

/// Switches to `gen` with `--json`; returns the exit code and the parsed outcome.
fn switch_json(s: &Scratch, gen: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["switch", gen.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = s.etcflip(&args);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text_of(&out)));
    (code(&out), v)
}

/// A → (settle) → B, so that B's commit stamps `ssh/`, which B did not change (stamps are
/// never recorded for a change in the second the switch began in).
fn applied_and_stamped(s: &Scratch) -> (PathBuf, PathBuf) {
    let (a, b) = two_gens(s);
    s.switch(&a, &[]);
    settle();
    s.switch(&b, &[]);
    (a, b)
}

fn step<'v>(plan: &'v Value, path: &str) -> Option<&'v Value> {
    plan["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["path"] == path)
}

#[test]
fn unchanged_entries_are_skipped_only_while_their_stamps_prove_them() {
    let s = Scratch::new("conv-skip");
    let (a, _) = applied_and_stamped(&s);
    // Nothing changed: the two shared entries in ssh/ are proven and not looked at (ssh/
    // itself lives in /etc, which every flip changes, so it is looked at).
    let (rc, dry) = switch_json(&s, &a, &["--dry-run"]);
    assert_eq!(rc, 0, "{dry}");
    assert_eq!(dry["plan"]["recorded"], 2, "{dry:#}");
    // An admin's link planted at a shared link entry: no longer proven, so looked at, and
    // foreign: backed up like any other conflict, and the entry is ours again.
    let at = s.etc("ssh/shared.conf");
    std::fs::remove_file(&at).unwrap();
    std::os::unix::fs::symlink("/usr/bin/bash", &at).unwrap();
    let (rc, out) = switch_json(&s, &a, &["--on-conflict", "backup"]);
    assert_eq!(rc, 0, "{out:#}");
    assert_eq!(
        step(&out, "/etc/ssh/shared.conf").unwrap()["action"],
        "backup",
        "{out:#}"
    );
    assert_eq!(
        std::fs::read_link(&at).unwrap(),
        Path::new("/etc/static/ssh/shared.conf")
    );
    assert_eq!(
        std::fs::read_link(s.etc("ssh/shared.conf.etcflip-backup")).unwrap(),
        Path::new("/usr/bin/bash")
    );
    let v = s.etcflip(&["verify"]);
    assert_eq!(code(&v), 0, "{}", text_of(&v));
}

#[test]
fn a_missing_unchanged_entry_is_restored_by_a_transition() {
    let s = Scratch::new("conv-missing");
    let (a, _) = applied_and_stamped(&s);
    std::fs::remove_file(s.etc("ssh/other.conf")).unwrap();
    let (rc, out) = switch_json(&s, &a, &[]);
    assert_eq!(rc, 0, "{out:#}");
    assert_eq!(
        step(&out, "/etc/ssh/other.conf").unwrap()["action"],
        "create"
    );
    assert_eq!(
        std::fs::read_link(s.etc("ssh/other.conf")).unwrap(),
        Path::new("/etc/static/ssh/other.conf")
    );
}

/// Runs `script` (sh) in a private mount namespace with `$R` the root, `$A`/`$B` the
/// generations and `$E` the etcflip binary.
fn in_namespace(s: &Scratch, a: &Path, b: &Path, script: &str) -> Output {
    Command::new("unshare")
        .args(unshare_private())
        .args(["sh", "-eu", "-c", script])
        .env("R", &s.root)
        .env("A", a)
        .env("B", b)
        .env("E", bin("etcflip"))
        .output()
        .expect("unshare (util-linux)")
}

#[test]
fn a_tmpfs_hiding_a_managed_directory_is_filled_by_a_transition() {
    let s = Scratch::new("conv-tmpfs");
    let (a, b) = applied_and_stamped(&s);
    let out = in_namespace(
        &s,
        &a,
        &b,
        r#"
        mount -t tmpfs tmpfs "$R/etc/ssh"
        "$E" switch "$A" --root "$R" >/dev/null
        readlink "$R/etc/ssh/shared.conf" "$R/etc/ssh/other.conf"
        "$E" verify --root "$R"
        "#,
    );
    let t = text_of(&out);
    assert_eq!(code(&out), 0, "{t}");
    assert!(
        t.contains("/etc/static/ssh/shared.conf\n/etc/static/ssh/other.conf\n"),
        "{t}"
    );
    assert!(t.contains("0 difference(s)"), "{t}");
}

/// A change made while a switch runs, after it looked, must not be blessed by the stamps
/// that switch records: the directory changed after the switch began, so it gets none.
#[test]
fn a_change_during_a_switch_is_found_by_the_next_one() {
    let s = Scratch::new("conv-racy");
    let (a, b) = applied_and_stamped(&s);
    // Hold the switch to A for a while at its first rename (the journal: after it looked).
    let mut slow = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg("inject=rename,renameat,renameat2:delay_enter=1500000:when=1")
        .arg(bin("etcflip"))
        .args(["switch", a.to_str().unwrap(), "--root"])
        .arg(&s.root)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("strace (apt-get install strace)");
    std::thread::sleep(Duration::from_millis(700));
    let at = s.etc("ssh/shared.conf");
    std::fs::remove_file(&at).unwrap();
    std::os::unix::fs::symlink("/usr/bin/bash", &at).unwrap();
    assert!(slow.wait().unwrap().success());
    settle();
    let (rc, out) = switch_json(&s, &b, &["--dry-run"]);
    assert_eq!(rc, 3, "the planted link must be a conflict: {out:#}");
    assert_eq!(
        step(&out, "/etc/ssh/shared.conf").unwrap()["action"],
        "conflict"
    );
}

#[test]
fn mount_points_are_left_alone_and_reported() {
    let s = Scratch::new("conv-mount");
    let host = s.file("host-resolv.conf", "nameserver 192.0.2.1\n");
    let bound = s.file("bound.conf", "bound\n");
    let a = s.gen(
        "a",
        &serde_json::json!({"etc": {
            "copy.conf": {"text": "bound\n", "mode": "0644"},
            "hosts": {"text": "127.0.0.1 localhost\n"},
        }}),
    );
    let b = s.gen(
        "b",
        &serde_json::json!({"etc": {
            "hosts": {"text": "127.0.0.1 localhost\n"},
            "resolv.conf": {"text": "nameserver 127.0.0.53\n"},
        }}),
    );
    let script = format!(
        r#"
        "$E" switch "$A" --root "$R" >/dev/null
        # As nixos-enter does: the host's resolv.conf bind-mounted over the root's.
        touch "$R/etc/resolv.conf"
        mount --bind {host} "$R/etc/resolv.conf"
        # A copy of ours, bind-mounted over with the same content: stale in B.
        mount --bind {bound} "$R/etc/copy.conf"
        "$E" switch "$B" --root "$R"
        echo "== after"
        cat "$R/etc/resolv.conf" "$R/etc/copy.conf"
        readlink "$R/etc/hosts"
        "#,
        host = host.display(),
        bound = bound.display(),
    );
    let out = in_namespace(&s, &a, &b, &script);
    let t = text_of(&out);
    assert_eq!(code(&out), 0, "{t}");
    for p in ["/etc/resolv.conf", "/etc/copy.conf"] {
        assert!(
            t.lines()
                .any(|l| l.starts_with("leave") && l.contains(p) && l.contains("mount point")),
            "{p} reported as left: {t}"
        );
    }
    assert!(
        t.contains("== after\nnameserver 192.0.2.1\nbound\n/etc/static/hosts\n"),
        "{t}"
    );
}

/// A stamp that held at the start of a switch is kept by its commit without another look;
/// it still proves nothing once the directory changes after that switch.
#[test]
fn a_stamp_kept_across_switches_still_catches_a_later_change() {
    let s = Scratch::new("conv-carried");
    let (a, b) = applied_and_stamped(&s);
    // B → A proves ssh/ by its stamp and keeps that stamp for the next switch.
    let (rc, out) = switch_json(&s, &a, &[]);
    assert_eq!(
        (rc, &out["plan"]["recorded"]),
        (0, &Value::from(2)),
        "{out:#}"
    );
    let (rc, dry) = switch_json(&s, &b, &["--dry-run"]);
    assert_eq!(
        (rc, &dry["plan"]["recorded"]),
        (0, &Value::from(2)),
        "{dry:#}"
    );
    std::fs::remove_file(s.etc("ssh/other.conf")).unwrap();
    let (rc, out) = switch_json(&s, &b, &[]);
    assert_eq!(rc, 0, "{out:#}");
    assert_eq!(
        step(&out, "/etc/ssh/other.conf").unwrap()["action"],
        "create"
    );
    let clean = s.etcflip(&["verify"]);
    assert_eq!(code(&clean), 0, "{}", text_of(&clean));
}

/// A directory etcflip would move aside (relink, overwrite, backup) is left as it is while a
/// mount point sits anywhere below it: the mount would move along under a scratch name, or
/// the removal would reach through it, after the flip. A device bind-mounted over a file (how
/// files are masked) is a mount point too.
#[test]
fn a_mount_below_a_directory_keeps_it_and_a_masked_file_is_left() {
    let s = Scratch::new("conv-mount-below");
    let precious = s.file("precious/data", "keep me\n");
    let store_dir = s.store("tree/x", "x\n");
    let a = s.gen(
        "a",
        &spec(&[
            ("x", text("a/b/x", "x\n")),
            ("y", text("a/y", "y\n")),
            ("c", serde_json::json!({"text": "c\n", "mode": "0644"})),
        ]),
    );
    let b = s.gen(
        "b",
        &serde_json::json!({"etc": {
            "a": {"source": store_dir.parent().unwrap()},
            "c": {"text": "c2\n", "mode": "0644"},
        }}),
    );
    let script = format!(
        r#"
        "$E" switch "$A" --root "$R" >/dev/null
        mount --bind {precious} "$R/etc/a/b"
        mount --bind /dev/null "$R/etc/c"
        for mode in abort backup overwrite; do
          echo "== $mode"; "$E" switch "$B" --root "$R" --on-conflict $mode; echo "rc=$?"
        done
        echo "== after"
        cat {precious}/data
        findmnt -rn -o TARGET | grep -c "$R/etc/a/b" || true
        ls -a "$R/etc" | grep -c etcflip- || true
        "#,
        precious = precious.parent().unwrap().display(),
    );
    let out = in_namespace(&s, &a, &b, &script);
    let t = text_of(&out);
    assert_eq!(code(&out), 0, "{t}");
    for mode in ["abort", "backup", "overwrite"] {
        let part = t.split(&format!("== {mode}\n")).nth(1).unwrap();
        let part = part.split("\n== ").next().unwrap();
        assert!(part.contains("rc=0"), "{mode}: {part}");
        assert!(
            part.lines()
                .any(|l| l.starts_with("leave") && l.contains("/etc/a ") && l.contains("/etc/a/b")),
            "{mode}: /etc/a left for the mount below it: {part}"
        );
        assert!(
            part.lines().any(|l| l.starts_with("leave")
                && l.contains("/etc/c ")
                && l.contains("mount point")),
            "{mode}: the masked /etc/c left: {part}"
        );
    }
    assert!(t.ends_with("== after\nkeep me\n1\n0\n"), "{t}");
}

/// A mount point whose name is not UTF-8 hides no mount point below `/etc`, and is one: read
/// as text, one such line in mountinfo lost every mount point, and one below `/etc` was lost
/// itself; either way the directory above it was moved along with the mount after the flip.
#[test]
fn mounts_named_in_bytes_are_mount_points_like_any_other() {
    // (where the odd-named mount goes, whether /etc/a/b is mounted too)
    let cases = [
        (r"$S/odd$(printf '\377')", true),
        (r"$R/etc/a/odd$(printf '\377')", false),
    ];
    for (odd, also_b) in cases {
        let s = Scratch::new("conv-mount-bytes");
        let precious = s.file("precious/data", "keep me\n");
        let store_dir = s.store("tree/x", "x\n");
        let a = s.gen(
            "a",
            &spec(&[("x", text("a/b/x", "x\n")), ("y", text("a/y", "y\n"))]),
        );
        let b = s.gen(
            "b",
            &serde_json::json!({"etc": {"a": {"source": store_dir.parent().unwrap()}}}),
        );
        let bind_b = if also_b {
            r#"mount --bind "$P" "$R/etc/a/b""#
        } else {
            ""
        };
        let script = format!(
            r#"
            "$E" switch "$A" --root "$R" >/dev/null
            {bind_b}
            odd="{odd}"
            mkdir "$odd"
            mount --bind "$P" "$odd"
            rc=0; "$E" switch "$B" --root "$R" --on-conflict overwrite || rc=$?
            echo "rc=$rc"
            cat "$P/data"
            "#
        );
        let out = Command::new("unshare")
            .args(unshare_private())
            .args(["sh", "-eu", "-c", &script])
            .env("R", &s.root)
            .env("S", &s.dir)
            .env("P", precious.parent().unwrap())
            .env("A", &a)
            .env("B", &b)
            .env("E", bin("etcflip"))
            .output()
            .expect("unshare (util-linux)");
        let t = text_of(&out);
        assert_eq!(code(&out), 0, "{odd}: {t}");
        assert!(t.contains("rc=0\nkeep me\n"), "{odd}: {t}");
        assert!(
            t.lines().any(|l| l.starts_with("leave")
                && l.contains("/etc/a ")
                && l.contains("mount point")),
            "{odd}: /etc/a left for the mount below it: {t}"
        );
    }
}

/// A switch run without root does not compare owners, so it must not stamp copies: a later
/// root transition would then take a copy with the caller's owner as proven.
#[test]
fn copies_stamped_without_root_are_looked_at_by_root() {
    let s = Scratch::new("conv-nonroot");
    let gen = |v: &str| {
        s.gen(
            v,
            &serde_json::json!({"etc": {
                "s/k": {"text": "k\n"},
                "s/cp": {"text": "cp\n", "mode": "0644"},
                v: {"text": "v\n"},
            }}),
        )
    };
    let (g1, g2, g3) = (gen("v1"), gen("v2"), gen("v3"));
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&s.root)
        .status()
        .unwrap();
    assert!(chown.success());
    let as_nobody = |g: &Path| {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin("etcflip"))
            .args(["switch", g.to_str().unwrap(), "--root"])
            .arg(&s.root)
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", text_of(&out));
    };
    as_nobody(&g1);
    settle();
    as_nobody(&g2);
    let md = std::fs::metadata(s.etc("s/cp")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&md), 65534);
    s.switch(&g3, &[]);
    let md = std::fs::metadata(s.etc("s/cp")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&md),
        0,
        "root gave the copy its owner"
    );
    let clean = s.etcflip(&["verify"]);
    assert_eq!(code(&clean), 0, "{}", text_of(&clean));
}

/// What a switch leaves only because of a mount point stays etcflip's: once the mount is
/// gone, the next switch (a re-switch to the same generation here) finishes the job instead
/// of finding "a directory that etcflip did not make".
#[test]
fn what_a_mount_held_stays_ours_until_it_can_be_replaced() {
    let s = Scratch::new("conv-held");
    let dir = s.store("tree/readme", "r\n");
    let a = s.gen(
        "a",
        &serde_json::json!({"etc": {
            "d/sub/f": {"text": "f\n"},
            "d/g": {"text": "g\n"},
            "c.conf": {"text": "c\n", "mode": "0644"},
        }}),
    );
    let b = s.gen(
        "b",
        &serde_json::json!({"etc": {"d": {"source": dir.parent().unwrap()}}}),
    );
    let bound = s.file("bound", "c\n");
    let script = format!(
        r#"
        "$E" switch "$A" --root "$R" >/dev/null
        mount -t tmpfs none "$R/etc/d/sub"
        mount --bind {bound} "$R/etc/c.conf"
        echo "== held"; "$E" switch "$B" --root "$R"; echo "rc=$?"
        echo "== status"; "$E" status --root "$R" | grep '^held'
        umount "$R/etc/d/sub" "$R/etc/c.conf"
        echo "== status after"; "$E" status --root "$R" | grep -c '^held' || true
        echo "== freed"; "$E" switch "$B" --root "$R"; echo "rc=$?"
        echo "== after"; readlink "$R/etc/d"; ls -a "$R/etc"
        "$E" verify --root "$R"
        "#,
        bound = bound.display(),
    );
    let out = in_namespace(&s, &a, &b, &script);
    let t = text_of(&out);
    assert_eq!(code(&out), 0, "{t}");
    let held = t.split("== held\n").nth(1).unwrap();
    assert!(held.contains("rc=0"), "{t}");
    let status = t.split("== status\n").nth(1).unwrap();
    assert!(
        status.starts_with("held: /etc/c.conf: left for a mount point")
            && status.contains("\nheld: /etc/d: "),
        "{t}"
    );
    let freed = t.split("== freed\n").nth(1).unwrap();
    let freed = freed.split("== after").next().unwrap();
    assert!(freed.contains("rc=0"), "{t}");
    assert!(
        !freed.contains("backup") && !freed.contains("conflict"),
        "{t}"
    );
    let after = t.split("== after\n").nth(1).unwrap();
    assert!(after.starts_with("/etc/static/d\n"), "{t}");
    assert!(!after.contains("c.conf"), "the stale copy went: {t}");
    assert!(!after.contains("etcflip-"), "{t}");
    assert!(after.contains("0 difference(s)"), "{t}");
}

/// Held claims belong to the generation that made the path: switching on while a mount stays
/// neither grows the state nor lets a generation that never wrote the path claim it; and a
/// mount that happens to show the wanted content holds the path just the same.
#[test]
fn held_claims_stay_with_the_generation_that_made_the_path() {
    let s = Scratch::new("conv-held-owner");
    let gen = |name: &str, content: &str| {
        s.gen(
            name,
            &serde_json::json!({"etc": {
                "c.conf": {"text": content, "mode": "0644"},
                name: {"text": "x\n"},
            }}),
        )
    };
    let gens = [
        gen("a", "c-a\n"),
        gen("b", "c-b\n"),
        gen("c", "c-c\n"),
        gen("d", "c-d\n"),
    ];
    let bound = s.file("bound", "c-b\n");
    let script = format!(
        r#"
        R="$R"; E="$E"
        "$E" switch {a} --root "$R" >/dev/null
        mount --bind {bound} "$R/etc/c.conf"
        for g in {b} {c} {b} {c}; do "$E" switch "$g" --root "$R" >/dev/null; done
        echo "== records"; grep -o '"generation":"[^"]*"' "$R/etc/.etcflip/applied.json" | sort | uniq -c
        echo "== again"; "$E" switch {c} --root "$R" | tail -1
        umount "$R/etc/c.conf"
        echo "== under"; cat "$R/etc/c.conf"
        # The admin writes what b declared, which b never installed there (a mount held it).
        printf 'c-b\n' > "$R/etc/c.conf.new"; mv "$R/etc/c.conf.new" "$R/etc/c.conf"
        echo "== to d"; "$E" switch {d} --root "$R" || echo "rc=$?"
        "#,
        a = gens[0].display(),
        b = gens[1].display(),
        c = gens[2].display(),
        d = gens[3].display(),
        bound = bound.display(),
    );
    let out = in_namespace(&s, &gens[0], &gens[1], &script);
    let t = text_of(&out);
    assert_eq!(code(&out), 0, "{t}");
    let records = t
        .split("== records\n")
        .nth(1)
        .unwrap()
        .split("== again")
        .next()
        .unwrap();
    // The applied generation (c) and the one held record of a's c.conf: nothing else.
    assert_eq!(records.lines().count(), 2, "{t}");
    assert!(
        records.contains("/gens/a\"") && records.contains("/gens/c\""),
        "{t}"
    );
    assert!(
        t.contains("== again\nalready up to date: nothing to do\n"),
        "{t}"
    );
    assert!(t.contains("== under\nc-a\n"), "{t}");
    let to_d = t.split("== to d\n").nth(1).unwrap();
    assert!(to_d.contains("conflict") && to_d.contains("rc=3"), "{t}");
}

/// A mount point that shows what the new generation wants is still a mount point: what it
/// covers stays etcflip's, so once it is gone the path is replaced, not refused.
#[test]
fn a_mount_showing_the_wanted_content_still_holds_the_path() {
    let s = Scratch::new("conv-held-right");
    let a = s.gen(
        "a",
        &serde_json::json!({"etc": {"c.conf": {"text": "c-a\n", "mode": "0644"}}}),
    );
    let b = s.gen(
        "b",
        &serde_json::json!({"etc": {"c.conf": {"text": "c-b\n", "mode": "0644"}}}),
    );
    let bound = s.file("bound", "c-b\n");
    let script = format!(
        r#"
        "$E" switch "$A" --root "$R" >/dev/null
        mount --bind {bound} "$R/etc/c.conf"
        "$E" switch "$B" --root "$R" >/dev/null
        umount "$R/etc/c.conf"
        echo "== after"; "$E" switch "$B" --root "$R"; echo "rc=$?"; cat "$R/etc/c.conf"
        "#,
        bound = bound.display(),
    );
    let out = in_namespace(&s, &a, &b, &script);
    let t = text_of(&out);
    assert_eq!(code(&out), 0, "{t}");
    let after = t.split("== after\n").nth(1).unwrap();
    assert!(after.contains("rc=0") && after.ends_with("c-b\n"), "{t}");
    assert!(!after.contains("conflict"), "{t}");
}
