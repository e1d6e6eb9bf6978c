//! The `etcflip` command line end to end, on temporary roots with the real binaries and the
//! real `systemd-tmpfiles`: `--dry-run` writes nothing, `verify` names every drifted path,
//! `status`, refusal of invalid specs and of hand-edited manifests (exit 2, nothing written),
//! and nasty names through both binaries and every tmpfiles version.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Output};

use etcflip_e2e::tmpfiles_bins::{versions, TmpfilesBin};
use etcflip_e2e::{
    absent, bin, code, copy_tree, etcflip_env, read_in_root, source, spec, text, text_of, Scratch,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers

/// Every path under `top`, the top itself included, with [`etcflip_e2e::stamp`]: any write
/// under `top` (even one that is undone) changes this string.
fn full_listing(top: &Path) -> String {
    let mut out = format!("/ {}\n", etcflip_e2e::stamp(top));
    for (rel, st) in etcflip_e2e::stamps(top) {
        let _ = writeln!(out, "/{rel} {st}");
    }
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text_of(out)))
}

/// One line of the text rendering of a plan, as `Plan::render` aligns it.
fn plan_line(action: &str, kind: &str, path: &str) -> String {
    format!("{action:<9} {kind:<14} {path}")
}

fn gen_str(g: &Path) -> &str {
    g.to_str().unwrap()
}

/// A small generation with every kind of entry.
fn spec_a(s: &Scratch) -> Value {
    let units = s.store("units-a/a.service", "[Service]\n");
    spec(&[
        ("hosts", text("hosts", "127.0.0.1 localhost\n")),
        ("units", source("systemd/system", units.parent().unwrap())),
        (
            "sudoers",
            json!({"text": "root ALL=(ALL) ALL\n", "mode": "0440"}),
        ),
        ("login.defs", json!({"text": "UMASK 022\n", "mode": "644"})),
        (
            "localtime",
            json!({"source": "/etc/zoneinfo/Europe/Berlin", "mode": "direct-symlink"}),
        ),
        ("ssh", text("ssh/ssh_config", "Host *\n")),
        ("gone", text("gone/deep/file", "going away\n")),
    ])
}

/// Generation B: adds, removes, changes a copy and the direct link.
fn spec_b() -> Value {
    spec(&[
        ("hosts", text("hosts", "127.0.0.1 localhost b\n")),
        (
            "sudoers",
            json!({"text": "root ALL=(ALL) ALL\n%wheel ALL\n", "mode": "0440"}),
        ),
        ("login.defs", json!({"text": "UMASK 022\n", "mode": "644"})),
        (
            "localtime",
            json!({"source": "/etc/zoneinfo/America/New_York", "mode": "direct-symlink"}),
        ),
        ("ssh", text("ssh/ssh_config", "Host *\n")),
        ("new", text("new", "new\n")),
    ])
}

// ---------------------------------------------------------------------------------------------
// --dry-run

#[test]
fn dry_run_changes_nothing_and_lists_the_plan() {
    let s = Scratch::new("cli-dry");
    let ga = s.gen("a", &spec_a(&s));
    let gb = s.gen("b", &spec_b());
    s.switch(&ga, &[]);
    let before = full_listing(&s.root);
    assert!(before.contains("/etc/.etcflip/applied.json"), "{before}");

    let out = s.etcflip(&["switch", gen_str(&gb), "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert_eq!(
        before,
        full_listing(&s.root),
        "a text dry run wrote something"
    );
    let txt = stdout(&out);
    for want in [
        "flip /etc/static: /gens/a/etc -> /gens/b/etc".to_owned(),
        plan_line("create", "symlink", "/etc/new"),
        plan_line("stage", "copy", "/etc/sudoers"),
        plan_line("stage", "direct-symlink", "/etc/localtime"),
        plan_line("remove", "symlink", "/etc/systemd/system"),
        plan_line("remove", "dir", "/etc/systemd"),
        plan_line("remove", "symlink", "/etc/gone/deep/file"),
        plan_line("remove", "dir", "/etc/gone/deep"),
        plan_line("remove", "dir", "/etc/gone"),
        "dry run: nothing was changed".to_owned(),
    ] {
        assert!(txt.contains(&want), "{want:?} missing from:\n{txt}");
    }
    // Unchanged paths are counted, not listed.
    assert!(!txt.contains("/etc/hosts"), "{txt}");
    assert!(!txt.contains("/etc/login.defs"), "{txt}");

    let out = s.etcflip(&["switch", gen_str(&gb), "--dry-run", "--json"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert_eq!(
        before,
        full_listing(&s.root),
        "a JSON dry run wrote something"
    );
    let v = json_of(&out);
    assert_eq!(v["changed"], json!(false), "{v:#}");
    assert_eq!(v["plan"]["flip"]["from"], json!("/gens/a/etc"));
    assert_eq!(v["plan"]["flip"]["to"], json!("/gens/b/etc"));
    let steps = v["plan"]["steps"]
        .as_array()
        .expect("plan.steps is an array");
    let mut triples = BTreeSet::new();
    for st in steps {
        let obj = st
            .as_object()
            .unwrap_or_else(|| panic!("step {st} is not an object"));
        let field = |k: &str| {
            obj.get(k)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("step {st} has no string {k:?}"))
                .to_owned()
        };
        triples.insert((field("path"), field("action"), field("kind")));
    }
    for (path, action, kind) in [
        ("/etc/new", "create", "symlink"),
        ("/etc/sudoers", "stage", "copy"),
        ("/etc/localtime", "stage", "direct-symlink"),
        ("/etc/systemd/system", "remove", "symlink"),
        ("/etc/systemd", "remove", "dir"),
        ("/etc/gone/deep/file", "remove", "symlink"),
        ("/etc/gone", "remove", "dir"),
    ] {
        let t = (path.to_owned(), action.to_owned(), kind.to_owned());
        assert!(triples.contains(&t), "{t:?} missing from {triples:#?}");
    }

    // B's entries that want what A's did (hosts: a new source behind the same overlay link;
    // login.defs: the same copy; ssh and ssh/ssh_config) are not proven unchanged by stamps:
    // A's switch made them moments ago, so its commit could stamp none (tests/convergence.rs
    // covers skipping). The two links are read and are exactly what B wants, so they are taken
    // as recorded (no step); the copy and the directory are looked at and kept: "keep" in
    // JSON, not listed in the text above.
    assert_eq!(v["plan"]["recorded"], json!(2), "{v:#}");
    for unchanged in ["/etc/login.defs", "/etc/ssh"] {
        assert!(
            triples
                .iter()
                .any(|(p, a, _)| p == unchanged && a == "keep"),
            "{unchanged} is not kept: {triples:#?}"
        );
    }
    for read in ["/etc/hosts", "/etc/ssh/ssh_config"] {
        assert!(
            !triples.iter().any(|(p, _, _)| p == read),
            "{read} has a step: {triples:#?}"
        );
    }

    // The dry run described what the real switch then does.
    s.switch(&gb, &[]);
    assert!(s.etc("new").symlink_metadata().is_ok());
    assert!(absent(&s.etc("gone")));
}

#[test]
fn dry_run_on_a_fresh_root_creates_nothing_at_all() {
    let s = Scratch::new("cli-dry-fresh");
    let ga = s.gen("a", &spec_a(&s));
    let before = full_listing(&s.root);
    for extra in [&[][..], &["--json"]] {
        let mut args = vec!["switch", gen_str(&ga), "--dry-run"];
        args.extend_from_slice(extra);
        let out = s.etcflip(&args);
        assert_eq!(code(&out), 0, "{}", text_of(&out));
        assert_eq!(
            before,
            full_listing(&s.root),
            "dry run {extra:?} wrote something"
        );
        assert!(
            absent(&s.root.join("etc")),
            "a dry run created /etc (or /etc/.etcflip)"
        );
    }
    let out = s.etcflip(&["switch", gen_str(&ga), "--dry-run"]);
    let txt = stdout(&out);
    assert!(
        txt.contains("flip /etc/static: (nothing) -> /gens/a/etc"),
        "{txt}"
    );
    assert!(
        txt.contains(&plan_line("create", "dir", "/etc/ssh")),
        "{txt}"
    );
    assert!(
        txt.contains(&plan_line("stage", "copy", "/etc/sudoers")),
        "{txt}"
    );
    // status and verify are read-only too.
    let _ = s.etcflip(&["status"]);
    let _ = s.etcflip(&["status", "--json"]);
    let _ = s.etcflip(&["verify"]);
    assert_eq!(
        before,
        full_listing(&s.root),
        "status/verify wrote something"
    );
}

// ---------------------------------------------------------------------------------------------
// verify

/// Tampers with the verify test's root in every way; returns the paths `verify` must name.
fn tamper(s: &Scratch) -> BTreeSet<&'static str> {
    let etc = |p: &str| s.etc(p);
    std::fs::remove_file(etc("del-link")).unwrap();
    std::fs::remove_file(etc("retarget-link")).unwrap();
    std::os::unix::fs::symlink("/etc/static/ok-link", etc("retarget-link")).unwrap();
    std::fs::write(etc("edit-copy"), "edited\n").unwrap();
    std::fs::set_permissions(etc("chmod-copy"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let as_root = nix::unistd::geteuid().is_root();
    if as_root {
        std::os::unix::fs::chown(etc("chown-copy"), Some(1), Some(1)).unwrap();
    }
    std::fs::remove_dir_all(etc("dir-gone")).unwrap();
    std::fs::write(etc("dir-gone"), "a file now\n").unwrap();
    std::fs::remove_file(etc("retarget-direct")).unwrap();
    std::os::unix::fs::symlink("/etc/zoneinfo/Europe/Berlin", etc("retarget-direct")).unwrap();
    std::fs::remove_file(etc("static")).unwrap();
    std::os::unix::fs::symlink("/gens/elsewhere/etc", etc("static")).unwrap();

    let mut tampered: BTreeSet<&str> = [
        "/etc/static",
        "/etc/del-link",
        "/etc/retarget-link",
        "/etc/edit-copy",
        "/etc/chmod-copy",
        "/etc/dir-gone",
        // Its parent became a file: it is gone too.
        "/etc/dir-gone/child",
        "/etc/retarget-direct",
    ]
    .into_iter()
    .collect();
    if as_root {
        tampered.insert("/etc/chown-copy");
    }

    tampered
}

#[test]
fn verify_names_every_tampered_path_and_nothing_else() {
    let s = Scratch::new("cli-verify");
    let src = s.store("src/linked", "linked\n");
    let g = s.gen(
        "a",
        &spec(&[
            ("del-link", text("del-link", "1\n")),
            ("retarget-link", text("retarget-link", "2\n")),
            ("ok-link", source("ok-link", &src)),
            ("edit-copy", json!({"text": "3\n", "mode": "0644"})),
            ("chmod-copy", json!({"text": "4\n", "mode": "0644"})),
            ("chown-copy", json!({"text": "5\n", "mode": "0644"})),
            ("ok-copy", json!({"text": "6\n", "mode": "0600"})),
            ("dir", text("dir-gone/child", "7\n")),
            ("ok-dir", text("ok-dir/child", "8\n")),
            (
                "direct",
                json!({"source": "/etc/zoneinfo/UTC", "mode": "direct-symlink", "target": "retarget-direct"}),
            ),
            ("ok-direct", json!({"source": "/etc/zoneinfo/UTC", "mode": "direct-symlink"})),
        ]),
    );
    s.switch(&g, &[]);
    let all = [
        "/etc/static",
        "/etc/del-link",
        "/etc/retarget-link",
        "/etc/ok-link",
        "/etc/edit-copy",
        "/etc/chmod-copy",
        "/etc/chown-copy",
        "/etc/ok-copy",
        "/etc/dir-gone",
        "/etc/dir-gone/child",
        "/etc/ok-dir",
        "/etc/ok-dir/child",
        "/etc/retarget-direct",
        "/etc/ok-direct",
    ];

    let out = s.etcflip(&["verify"]);
    assert_eq!(code(&out), 0, "clean root: {}", text_of(&out));
    assert!(
        stdout(&out).contains("0 difference(s)") && stdout(&out).contains("13 entries"),
        "{}",
        text_of(&out)
    );
    let v = json_of(&s.etcflip(&["verify", "--json"]));
    assert_eq!(v["drift"], json!([]), "{v:#}");

    let tampered = tamper(&s);

    let out = s.etcflip(&["verify"]);
    assert_eq!(code(&out), 1, "drift must exit 1: {}", text_of(&out));
    let txt = stdout(&out);
    let named: BTreeSet<&str> = txt
        .lines()
        .filter_map(|l| l.split_once(": expected ").map(|(p, _)| p))
        .collect();
    assert_eq!(named, tampered, "text report:\n{txt}");
    for p in all.iter().filter(|p| !tampered.contains(*p)) {
        assert!(
            !txt.lines().any(|l| l.starts_with(&format!("{p}:"))),
            "untampered {p} named:\n{txt}"
        );
    }

    let out = s.etcflip(&["verify", "--json"]);
    assert_eq!(code(&out), 1, "{}", text_of(&out));
    let v = json_of(&out);
    let drift: BTreeSet<String> = v["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = tampered.iter().map(|p| (*p).to_owned()).collect();
    assert_eq!(drift, want, "{v:#}");
    assert_eq!(v["generation"], json!("/gens/a"));
    // The edited copy's report says what it should be and what it is.
    let edit = v["drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == "/etc/edit-copy")
        .unwrap();
    assert!(
        edit["expected"].as_str().unwrap().contains("mode 0644"),
        "{edit}"
    );
    assert!(
        edit["found"]
            .as_str()
            .unwrap()
            .contains("a file with sha256"),
        "{edit}"
    );
}

// ---------------------------------------------------------------------------------------------
// status

#[test]
fn status_on_a_fresh_root_after_a_switch_and_after_an_interrupted_one() {
    let s = Scratch::new("cli-status");
    let ga = s.gen("a", &spec_a(&s));
    let gb = s.gen("b", &spec_b());

    let out = s.etcflip(&["status"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert_eq!(stdout(&out), "applied: nothing\n");
    let out = s.etcflip(&["status", "--json"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert_eq!(
        json_of(&out),
        json!({"generation": null, "overlay": null, "entries": {}, "pending": [], "unresolved": []})
    );
    assert!(absent(&s.root.join("etc")), "status wrote /etc");

    s.switch(&ga, &[]);
    let out = s.etcflip(&["status"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let txt = stdout(&out);
    for want in [
        "applied: /gens/a",
        "overlay: /etc/static",
        "2 copy",
        "4 dir",
        "1 direct-symlink",
        "4 symlink",
    ] {
        assert!(txt.contains(want), "{want:?} missing from:\n{txt}");
    }
    assert!(!txt.contains("pending"), "{txt}");
    let out = s.etcflip(&["status", "--json"]);
    assert_eq!(
        json_of(&out),
        json!({
            "generation": "/gens/a",
            "overlay": "/etc/static",
            "entries": {"copy": 2, "dir": 4, "direct-symlink": 1, "symlink": 4},
            "pending": [], "unresolved": []
        })
    );

    // A switch that fails before the flip (tmpfiles creates nothing) leaves a journal.
    let out = etcflip_env(
        &s.root,
        &["switch", gen_str(&gb)],
        &[("ETCFLIP_TMPFILES", Path::new("/bin/false").as_os_str())],
    );
    assert_eq!(code(&out), 1, "{}", text_of(&out));
    assert_eq!(
        std::fs::read_link(s.etc("static")).unwrap(),
        Path::new("/gens/a/etc"),
        "the failed switch flipped"
    );
    let txt = stdout(&s.etcflip(&["status"]));
    assert!(txt.contains("applied: /gens/a"), "{txt}");
    assert!(
        txt.contains("pending: an interrupted switch to /gens/b"),
        "{txt}"
    );
    let v = json_of(&s.etcflip(&["status", "--json"]));
    assert_eq!(v["generation"], json!("/gens/a"));
    assert_eq!(v["pending"], json!(["/gens/b"]));
    let out = s.etcflip(&["verify"]);
    assert_eq!(
        code(&out),
        1,
        "an interrupted switch is drift: {}",
        text_of(&out)
    );
    assert!(
        stdout(&out).contains("interrupted switch to /gens/b"),
        "{}",
        text_of(&out)
    );

    // A dry run with a switch pending still writes nothing (no sweep, no journal update).
    let before = full_listing(&s.root);
    let out = s.etcflip(&["switch", gen_str(&gb), "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert_eq!(
        before,
        full_listing(&s.root),
        "a dry run with a pending switch wrote"
    );

    // A rerun finishes it.
    s.switch(&gb, &[]);
    let v = json_of(&s.etcflip(&["status", "--json"]));
    assert_eq!(v["generation"], json!("/gens/b"));
    assert_eq!(v["pending"], json!([]));
    assert_eq!(code(&s.etcflip(&["verify"])), 0);
}

// ---------------------------------------------------------------------------------------------
// Invalid specs

/// `(name, spec entries, a piece of the message)`.
#[allow(clippy::too_many_lines)]
fn bad_rows(s: &Scratch) -> Vec<(&'static str, Value, &'static str)> {
    let missing = s.dir.join("no-such-file");
    let empty_glob = s.root.join("store/empty-dir");
    std::fs::create_dir_all(&empty_glob).unwrap();
    vec![
        (
            "duplicate",
            json!({"one": {"target": "t", "text": "1"}, "two": {"target": "t", "text": "2"}}),
            "\"t\" is also the target of etc.\"one\"",
        ),
        (
            "dotdot",
            json!({"x": {"target": "a/../b", "text": "x"}}),
            "\"a/../b\": \"..\" component",
        ),
        (
            "absolute",
            json!({"x": {"target": "/abs", "text": "x"}}),
            "absolute path (targets are relative to /etc)",
        ),
        (
            "empty-component",
            json!({"x": {"target": "a//b", "text": "x"}}),
            "empty path component",
        ),
        (
            "control",
            json!({"x": {"target": "tab\there", "text": "x"}}),
            "control character '\\t'",
        ),
        (
            "control-attr",
            json!({"bell\u{7}": {"text": "x"}}),
            "control character '\\u{7}'",
        ),
        (
            "mode-999",
            json!({"x": {"text": "x", "mode": "999"}}),
            "mode \"999\" is not 3 or 4 octal digits",
        ),
        (
            "mode-64",
            json!({"x": {"text": "x", "mode": "64"}}),
            "mode \"64\" is not 3 or 4 octal digits",
        ),
        (
            "mode-rwx",
            json!({"x": {"text": "x", "mode": "rwx"}}),
            "mode \"rwx\" is not 3 or 4 octal digits",
        ),
        (
            "file-vs-dir",
            json!({"f": {"target": "a", "text": "x"}, "g": {"target": "a/b", "text": "y"}}),
            "\"a\" is a symlink entry, but etc.\"g\" needs it to be a directory for \"a/b\"",
        ),
        (
            "unknown-field",
            json!({"x": {"text": "x", "bogus": true}}),
            "etc.\"x\".bogus: unknown field",
        ),
        (
            "copy-missing-source",
            json!({"x": {"source": missing, "mode": "0644"}}),
            "mode \"0644\" copies the source, but cannot read",
        ),
        (
            "direct-without-source",
            json!({"x": {"text": "x", "mode": "direct-symlink"}}),
            "mode \"direct-symlink\" needs a source",
        ),
        (
            "glob-nothing",
            json!({"x": {"source": empty_glob.join("*.conf")}}),
            "matched nothing",
        ),
        (
            "bad-owner",
            json!({"x": {"text": "x", "mode": "0644", "user": "Bad Name"}}),
            "owner name \"Bad Name\" is not a valid user or group name",
        ),
        (
            "state-dir",
            json!({"x": {"target": ".etcflip/applied.json", "text": "x"}}),
            "\".etcflip\" is etcflip's state directory",
        ),
        (
            "reserved-mark",
            json!({"x": {"target": "hosts.etcflip-backup", "text": "x"}}),
            "contains \".etcflip-\", reserved for etcflip",
        ),
        (
            "overlay-collision",
            json!({"x": {"target": "static/hosts", "text": "x"}}),
            "collides with the overlay /etc/static",
        ),
        (
            "long-name",
            json!({"x": {"target": "n".repeat(256), "text": "x"}}),
            "component longer than 255 bytes",
        ),
        (
            "bad-group",
            json!({"x": {"text": "x", "mode": "0644", "group": "a:b"}}),
            "owner name \"a:b\" is not a valid user or group name",
        ),
    ]
}

/// What is in `<root>/gens` besides the given names (a half-written output would show here).
fn gens_except(s: &Scratch, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(s.root.join("gens"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[test]
fn invalid_specs_are_refused_with_every_problem_and_nothing_written() {
    let s = Scratch::new("cli-invalid");
    let rows = bad_rows(&s);
    for (name, etc, want) in &rows {
        let out = s.gen_output(name, &json!({ "etc": etc }));
        assert_eq!(code(&out), 2, "{name}: exit code; {}", text_of(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{name}: {want:?} missing from:\n{err}");
        assert!(
            absent(&s.root.join("gens").join(name)),
            "{name}: --out was created"
        );
    }
    assert_eq!(gens_except(&s, &[]), Vec::<String>::new(), "leftovers");

    // All of them in one spec (renamed apart): every message at once.
    let mut all = serde_json::Map::new();
    for (i, (_, etc, _)) in rows.iter().enumerate() {
        for (attr, entry) in etc.as_object().unwrap() {
            let mut entry = entry.clone();
            let obj = entry.as_object_mut().unwrap();
            // Keep the target the row gave (or its attribute name), under a per-row prefix only
            // where a prefix cannot change the problem.
            if !obj.contains_key("target") && !attr.contains('\u{7}') {
                obj.insert("target".into(), json!(format!("row{i}-{attr}")));
            }
            all.insert(format!("{i}-{attr}"), entry);
        }
    }
    let out = s.gen_output("all", &json!({ "etc": all }));
    assert_eq!(code(&out), 2, "{}", text_of(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    for (i, (name, etc, want)) in rows.iter().enumerate() {
        // Attribute names were prefixed with the row number.
        let mut want = (*want).to_owned();
        for attr in etc.as_object().unwrap().keys() {
            want = want.replace(&format!("etc.{attr:?}"), &format!("etc.\"{i}-{attr}\""));
        }
        assert!(err.contains(&want), "{name}: {want:?} missing from:\n{err}");
    }
    assert!(err.contains(&format!("({} problems)", rows.len())), "{err}");
    assert!(absent(&s.root.join("gens/all")));
    assert_eq!(gens_except(&s, &[]), Vec::<String>::new(), "leftovers");
}

// ---------------------------------------------------------------------------------------------
// Hand-edited manifests

type Edit = fn(&mut Value);

fn entry_mut<'v>(m: &'v mut Value, target: &str) -> &'v mut Value {
    m["entries"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["target"] == target)
        .unwrap_or_else(|| panic!("no entry {target}"))
}

#[test]
#[allow(clippy::too_many_lines)]
fn hand_edited_manifests_are_refused_and_nothing_is_written() {
    let s = Scratch::new("cli-edited");
    let good = s.gen("good", &spec_a(&s));
    let edits: Vec<(&str, Option<Edit>, &str)> = vec![
        (
            "escape",
            Some(|m| entry_mut(m, "hosts")["target"] = json!("../../bin/sh")),
            "\"..\" component",
        ),
        (
            "unknown-field",
            Some(|m| entry_mut(m, "hosts")["executable"] = json!(true)),
            "unknown field `executable`",
        ),
        (
            "version-2",
            Some(|m| m["version"] = json!(2)),
            "version 2 is not supported",
        ),
        (
            "copy-sha",
            Some(|m| entry_mut(m, "sudoers")["sha256"] = json!("0".repeat(64))),
            "content does not match its sha256",
        ),
        (
            "unsorted",
            Some(|m| m["entries"].as_array_mut().unwrap().swap(0, 1)),
            "not sorted",
        ),
        (
            "overlay-etc",
            Some(|m| m["overlay"] = json!("/etc")),
            "cannot be /etc itself",
        ),
        (
            "overlay-escape",
            Some(|m| m["overlay"] = json!("/etc/../../run/x")),
            "\"..\" component",
        ),
        (
            "target-is-overlay",
            Some(|m| entry_mut(m, "hosts")["target"] = json!("static")),
            "collides with the overlay /etc/static",
        ),
        (
            "state-dir-target",
            Some(|m| entry_mut(m, "hosts")["target"] = json!(".etcflip/applied.json")),
            "etcflip's state directory",
        ),
        (
            "kind-changed",
            Some(|m| entry_mut(m, "sudoers")["kind"] = json!("symlink")),
            "a symlink entry has no mode or owner",
        ),
        (
            "direct-source",
            Some(|m| entry_mut(m, "localtime")["source"] = json!("/etc/shadow")),
            "the manifest says /etc/shadow",
        ),
        (
            "users-invalid",
            Some(|m| {
                m["users"] = json!({"mutableUsers": true, "groups": [],
                    "users": [{"name": "root", "uid": 0, "group": "wheel", "home": "/root"}]});
            }),
            "users: user \"root\": primary group \"wheel\" is neither a declared group",
        ),
        (
            // Every problem at once: the users part's too, while the rest is invalid.
            "users-and-overlay-invalid",
            Some(|m| {
                m["overlay"] = json!("/etc");
                m["users"] = json!({"mutableUsers": true, "groups": [],
                    "users": [{"name": "root", "uid": 0, "group": "wheel", "home": "/root"}]});
            }),
            "users: user \"root\": primary group \"wheel\" is neither a declared group",
        ),
        ("invalid-json", None, "not a valid version-1 manifest"),
    ];
    let mut gens = Vec::new();
    for (name, edit, want) in &edits {
        let dir = s.root.join("gens").join(name);
        copy_tree(&good, &dir, true);
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let new = match edit {
            Some(f) => {
                let mut m: Value = serde_json::from_str(&text).unwrap();
                f(&mut m);
                serde_json::to_string_pretty(&m).unwrap()
            }
            None => text[..text.len() / 2].to_owned(),
        };
        assert_ne!(text, new, "{name}: the edit changed nothing");
        std::fs::write(&path, new).unwrap();
        gens.push((dir, *name, *want));
    }
    // The manifest untouched, a text payload edited behind it.
    let dir = s.root.join("gens/payload");
    copy_tree(&good, &dir, true);
    std::fs::write(dir.join("etc/hosts"), "6.6.6.6 localhost\n").unwrap();
    gens.push((dir, "payload", "content does not match its sha256"));

    let check_all = |phase: &str| {
        let before = full_listing(&s.root);
        for (dir, name, want) in &gens {
            for extra in [&[][..], &["--dry-run"]] {
                let mut args = vec!["switch", gen_str(dir)];
                args.extend_from_slice(extra);
                let out = s.etcflip(&args);
                assert_eq!(code(&out), 2, "{phase} {name} {extra:?}: {}", text_of(&out));
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(
                    err.contains(want),
                    "{phase} {name}: {want:?} missing:\n{err}"
                );
                assert_eq!(
                    before,
                    full_listing(&s.root),
                    "{phase} {name}: root changed"
                );
            }
        }
    };
    // A fresh root: not even the state directory appears.
    check_all("fresh");
    assert!(absent(&s.root.join("etc")));
    // A switched root: nothing changes, the applied generation stays.
    s.switch(&good, &[]);
    check_all("switched");
    assert_eq!(code(&s.etcflip(&["verify"])), 0);
}

// ---------------------------------------------------------------------------------------------
// Nasty names

/// Target names that each need care somewhere: tmpfiles quoting, specifiers, comments, globs
/// (as literal names, never glob sources), leading and trailing spaces, UTF-8.
const GLOB_LIKE: &[&str] = &["%%", "star*", "ques?", "[x]", "{a,b}"];

fn nasty() -> impl Iterator<Item = &'static str> {
    etcflip::tmpfiles::TRICKY_NAMES
        .iter()
        .filter(|n| !n.chars().any(char::is_control) && **n != "plain")
        .chain(GLOB_LIKE)
        .copied()
}

/// Foreign files named like what the nasty names match as globs or brace patterns, or as
/// unescaped strings: they must survive the removal of the nasty entries.
const LOOKALIKES: &[&str] = &[
    "starX",
    "star",
    "quesX",
    "x",
    "a",
    "b",
    "backslash",
    "back",
    "per",
    "with",
    "hash",
    "dev-disk-by-uuid",
];

fn nasty_spec(s: &Scratch) -> (Value, Vec<(String, String)>) {
    let mut etc = serde_json::Map::new();
    // (target, content) of every symlink entry, to read back.
    let mut texts = Vec::new();
    for (i, name) in nasty().enumerate() {
        let content = format!("text {i} {name}\n");
        etc.insert(format!("t{i}"), text(name, &content));
        texts.push(((*name).to_owned(), content));
        // The same name inside a directory whose name is nasty too.
        let nested = format!("dir {name}/{name}");
        let content = format!("nested {i} {name}\n");
        etc.insert(format!("n{i}"), text(&nested, &content));
        texts.push((nested, content));
        // A link to a store file with a nasty name (no `*`: that would be a glob source).
        if !name.contains('*') {
            let src = s.store(&format!("src {i} {name}"), &format!("source {i}\n"));
            let target = format!("src/{name}");
            etc.insert(format!("s{i}"), source(&target, &src));
            texts.push((target, format!("source {i}\n")));
        }
    }
    etc.insert(
        "copy".into(),
        json!({"target": NASTY_COPY, "text": "copied\n", "mode": "0640"}),
    );
    etc.insert(
        "direct".into(),
        json!({
            "target": NASTY_DIRECT,
            "source": NASTY_DIRECT_SOURCE,
            "mode": "direct-symlink"
        }),
    );
    (json!({ "etc": etc }), texts)
}

/// The text of the link at `path`, as bytes.
fn link_bytes(path: &Path) -> Vec<u8> {
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("{} is not a link: {e}", path.display()))
        .into_os_string()
        .into_encoded_bytes()
}

/// What the nasty generation's copy and direct link are.
const NASTY_COPY: &str = "copies/%m [x] {a,b} * ?  ";
const NASTY_DIRECT: &str = "direct %m {a,b} ";
const NASTY_DIRECT_SOURCE: &str = "/etc/zone info/ %m\\x20 \"q\" #{a,b}[x]? ";

/// Everything of the nasty generation is in place, byte for byte, and nothing else appeared.
fn check_nasty_applied(s: &Scratch, v: u32, texts: &[(String, String)]) {
    for (target, content) in texts {
        assert_eq!(
            link_bytes(&s.etc(target)),
            format!("/etc/static/{target}").as_bytes(),
            "{v}: link text of {target:?}"
        );
        assert_eq!(
            read_in_root(&s.root, &format!("/etc/{target}")).as_deref(),
            Some(content.as_bytes()),
            "{v}: content of {target:?}"
        );
    }
    let copy = s.etc(NASTY_COPY);
    assert_eq!(std::fs::read(&copy).unwrap(), b"copied\n", "{v}");
    assert_eq!(
        std::fs::symlink_metadata(&copy).unwrap().mode() & 0o7777,
        0o640,
        "{v}"
    );
    assert_eq!(
        link_bytes(&s.etc(NASTY_DIRECT)),
        NASTY_DIRECT_SOURCE.as_bytes(),
        "{v}"
    );
    // Nothing else appeared beside the entries (a mis-decoded name would).
    let top: BTreeSet<String> = std::fs::read_dir(s.root.join("etc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut want: BTreeSet<String> = nasty().map(str::to_owned).collect();
    want.extend(nasty().map(|n| format!("dir {n}")));
    want.extend(LOOKALIKES.iter().map(|n| (*n).to_owned()));
    want.extend(["src", "copies", NASTY_DIRECT, "static", ".etcflip"].map(str::to_owned));
    assert_eq!(top, want, "{v}: /etc holds something unexpected");
}

/// The generation's own tmpfiles snippet (what boot and image builds use) makes the same links
/// with this tmpfiles version.
fn check_boot_snippet(s: &Scratch, tf: &TmpfilesBin, gen: &Path, texts: &[(String, String)]) {
    let v = tf.major;
    let boot = s.dir.join("boot-root");
    std::fs::create_dir_all(&boot).unwrap();
    let out = Command::new(&tf.path)
        .arg("--create")
        .arg(format!("--root={}", boot.display()))
        .arg(gen.join("tmpfiles.d/etcflip.conf"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{v}: snippet: {}", text_of(&out));
    for (target, _) in texts {
        assert_eq!(
            link_bytes(&boot.join("etc").join(target)),
            format!("/etc/static/{target}").as_bytes(),
            "{v}: snippet link text of {target:?}"
        );
    }
    assert_eq!(
        link_bytes(&boot.join("etc").join(NASTY_DIRECT)),
        NASTY_DIRECT_SOURCE.as_bytes(),
        "{v}: snippet direct link"
    );
}

/// Every nasty path is gone, every look-alike is untouched.
fn check_nasty_removed(s: &Scratch, v: u32, texts: &[(String, String)]) {
    for (target, _) in texts {
        assert!(
            absent(&s.etc(target)),
            "{v}: /etc/{target:?} was not removed"
        );
    }
    for name in nasty() {
        assert!(
            absent(&s.etc(&format!("dir {name}"))),
            "{v}: directory {name:?} was not removed"
        );
    }
    assert!(absent(&s.etc("copies")), "{v}");
    assert!(absent(&s.etc(NASTY_DIRECT)), "{v}");
    for f in LOOKALIKES {
        for (path, shown) in [
            (s.etc(f), f.to_string()),
            (s.etc("src").join(f), format!("src/{f}")),
        ] {
            assert_eq!(
                std::fs::read_to_string(path).ok().as_deref(),
                Some(format!("foreign {shown}\n").as_str()),
                "{v}: foreign /etc/{shown} was touched"
            );
        }
    }
}

/// A nasty overlay path: every link text carries it, and moving the overlay there and back
/// relinks everything and drops the old overlay link.
fn check_odd_overlay(s: &Scratch, v: u32, env: &[(&str, &std::ffi::OsStr)], plain: &Path) {
    let mut spec_o = spec(&[
        ("hosts", text("hosts", "via the odd overlay\n")),
        ("nested", text("a b/c%d", "nested via the odd overlay\n")),
    ]);
    spec_o["overlay"] = json!(NASTY_OVERLAY);
    let go = s.gen("odd-overlay", &spec_o);
    let out = etcflip_env(&s.root, &["switch", gen_str(&go)], env);
    assert_eq!(code(&out), 0, "{v}: {}", text_of(&out));
    for (target, content) in [
        ("hosts", "via the odd overlay\n"),
        ("a b/c%d", "nested via the odd overlay\n"),
    ] {
        assert_eq!(
            link_bytes(&s.etc(target)),
            format!("{NASTY_OVERLAY}/{target}").as_bytes(),
            "{v}: link text of {target:?}"
        );
        assert_eq!(
            read_in_root(&s.root, &format!("/etc/{target}")).as_deref(),
            Some(content.as_bytes()),
            "{v}: content of {target:?}"
        );
    }
    assert!(absent(&s.etc("static")), "{v}: the old overlay link stayed");
    let overlay_link = s.root.join(NASTY_OVERLAY.trim_start_matches('/'));
    assert_eq!(link_bytes(&overlay_link), b"/gens/odd-overlay/etc", "{v}");
    let out = etcflip_env(&s.root, &["verify"], env);
    assert_eq!(code(&out), 0, "{v}: {}", text_of(&out));
    let out = etcflip_env(&s.root, &["switch", gen_str(plain)], env);
    assert_eq!(code(&out), 0, "{v}: {}", text_of(&out));
    assert!(absent(&overlay_link), "{v}: odd overlay stayed");
    assert!(absent(&s.etc("a b")), "{v}");
    assert_eq!(
        read_in_root(&s.root, "/etc/hosts").as_deref(),
        Some(&b"plain\n"[..]),
        "{v}"
    );
}

#[test]
fn nasty_names_end_to_end_on_every_tmpfiles_version() {
    for tf in versions() {
        let s = Scratch::new(&format!("cli-nasty-{}", tf.major));
        let (spec_n, texts) = nasty_spec(&s);
        let gn = s.gen("nasty", &spec_n);
        let gp = s.gen("plain", &spec(&[("hosts", text("hosts", "plain\n"))]));
        std::fs::create_dir_all(s.etc("src")).unwrap();
        for f in LOOKALIKES {
            std::fs::write(s.etc(f), format!("foreign {f}\n")).unwrap();
            std::fs::write(s.etc("src").join(f), format!("foreign src/{f}\n")).unwrap();
        }
        let env = [("ETCFLIP_TMPFILES", tf.path.as_os_str())];
        let v = tf.major;

        let out = etcflip_env(&s.root, &["switch", gen_str(&gn)], &env);
        assert_eq!(code(&out), 0, "{v}: {}", text_of(&out));
        check_nasty_applied(&s, v, &texts);
        let out = etcflip_env(&s.root, &["verify"], &env);
        assert_eq!(code(&out), 0, "{v}: {}", text_of(&out));
        check_boot_snippet(&s, &tf, &gn, &texts);

        // Switch away: every nasty path goes, every look-alike stays.
        let out = etcflip_env(&s.root, &["switch", gen_str(&gp)], &env);
        assert_eq!(code(&out), 0, "{v}: {}", text_of(&out));
        check_nasty_removed(&s, v, &texts);
        let out = etcflip_env(&s.root, &["verify"], &env);
        assert_eq!(code(&out), 0, "{v}: {}", text_of(&out));

        check_odd_overlay(&s, v, &env, &gp);
    }
}

/// An overlay outside /etc whose path needs every escape the link argument has.
const NASTY_OVERLAY: &str = "/run/etc flip %m\\x20/st{a,b}tic* ";

// ---------------------------------------------------------------------------------------------
// --root

#[test]
fn a_relative_root_works_like_an_absolute_one() {
    let s = Scratch::new("cli-relative");
    s.gen("a", &spec_a(&s));
    let out = Command::new(bin("etcflip"))
        .current_dir(&s.dir)
        .args(["switch", "root/gens/a", "--root", "root"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let abs = Scratch::new("cli-relative-abs");
    let g = abs.gen("a", &spec_a(&abs));
    abs.switch(&g, &[]);
    assert_eq!(s.listing(), abs.listing());
    assert_eq!(
        std::fs::read_link(s.etc("static")).unwrap(),
        Path::new("/gens/a/etc")
    );
}

/// A FIFO where the manifest should be is refused at once (exit 2), not waited on.
#[test]
fn a_fifo_manifest_is_refused_not_waited_for() {
    let s = Scratch::new("cli-fifo");
    let g = s.root.join("gens/fifo");
    std::fs::create_dir_all(&g).unwrap();
    nix::unistd::mkfifo(
        &g.join("manifest.json"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let mut child = Command::new(bin("etcflip"))
        .args(["switch", gen_str(&g), "--root"])
        .arg(&s.root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("etcflip switch hangs on a FIFO manifest");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("regular file"), "{err}");
}
