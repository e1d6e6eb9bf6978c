//! Invalid input: every rule has a row; all violations are listed at once; nothing is written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{build_spec, names, TempDir};

/// Files the rows refer to as `<SRC>/...`.
fn sources(dir: &TempDir) {
    dir.write("file", "x\n");
    dir.write("g1/x", "");
    dir.write("g2/x", "");
    dir.write("g3/y", "");
}

/// One spec per rule, and a piece of the message it must give (naming attribute and field).
const ROWS: &[(&str, &str)] = &[
    (
        r#"{"etc": {"a": {"source": "/x", "target": "t"}, "b": {"source": "/y", "target": "t"}}}"#,
        r#"etc."b".target: "t" is also the target of etc."a""#,
    ),
    (
        r#"{"etc": {"a": {"source": "/x"}, "b": {"target": "a/b", "source": "/y"}}}"#,
        r#"etc."a".target: "a" is a symlink entry, but etc."b" needs it to be a directory for "a/b""#,
    ),
    (
        r#"{"etc": {"a": {}}}"#,
        r#"etc."a".source: neither source nor text is set"#,
    ),
    (
        r#"{"etc": {"a": {"mode": "0600", "text": null}}}"#,
        r#"etc."a".source: neither source nor text is set"#,
    ),
    (
        r#"{"etc": {"a": {"source": "/nonexistent/x", "mode": "0644"}}}"#,
        r#"etc."a".source: mode "0644" copies the source, but cannot read /nonexistent/x"#,
    ),
    (
        r#"{"etc": {"a": {"source": "/run/secrets/x", "mode": "0400"}}}"#,
        "cannot read /run/secrets/x: No such file or directory (os error 2); to copy a file \
         that exists only where the generation is applied (such as /run/secrets/x), set the \
         spec's `store` key",
    ),
    (
        r#"{"etc": {"a": {"source": "<SRC>/g1", "mode": "600"}}}"#,
        "/g1 is not a regular file",
    ),
    (
        r#"{"store": "<SRC>/g1", "etc": {"a": {"source": "<SRC>/g1/missing", "mode": "0644"}}}"#,
        r#"etc."a".source: mode "0644" copies the source, but cannot read <SRC>/g1/missing: No such file or directory (os error 2) (it lies in the store <SRC>/g1, so it is copied when the generation is built)"#,
    ),
    (
        r#"{"store": "<SRC>/g1", "etc": {"a": {"source": "missing", "mode": "0644"}}}"#,
        r#"etc."a".source: mode "0644" copies the source, but cannot read <SRC>/missing: No such file or directory (os error 2)"#,
    ),
    (
        r#"{"store": "<SRC>/g1", "etc": {"a": {"source": "/run/secrets/*", "mode": "0400"}}}"#,
        r#"etc."a".source: "/run/secrets/*" is a glob outside the store, so mode "0400" would copy it at switch time, but a glob can only be expanded when the generation is built"#,
    ),
    (
        r#"{"store": "nix/store", "etc": {}}"#,
        r#"store "nix/store" is not an absolute path"#,
    ),
    (
        r#"{"store": "/nix/store/", "etc": {}}"#,
        r#"store "/nix/store/" is not canonical (write "/nix/store")"#,
    ),
    (r#"{"store": "/", "etc": {}}"#, r#"store "/" cannot be /"#),
    (
        r#"{"store": ["/nix/store"], "etc": {}}"#,
        "store: expected a string, not an array",
    ),
    (
        r#"{"etc": {"a": {"text": "x", "mode": "direct-symlink"}}}"#,
        r#"etc."a".source: mode "direct-symlink" needs a source"#,
    ),
    (
        r#"{"etc": {"a": {"text": "x", "mode": "rw-r--r--"}}}"#,
        r#"etc."a".mode: mode "rw-r--r--" is not 3 or 4 octal digits"#,
    ),
    (
        r#"{"etc": {"a": {"text": "x", "mode": "0644", "user": "a:b"}}}"#,
        r#"etc."a".user: owner name "a:b" is not a valid user or group name"#,
    ),
    (
        r#"{"etc": {"a": {"text": "x", "mode": "0644", "group": "+x"}}}"#,
        r#"etc."a".group: "+x" is not "+" followed by a number"#,
    ),
    (
        r#"{"etc": {"a": {"source": "<SRC>/g*/x", "mode": "0644"}}}"#,
        r#"etc."a".mode: a glob source ("<SRC>/g*/x") is only allowed with mode "symlink""#,
    ),
    (
        r#"{"etc": {"a": {"source": "<SRC>/none/*"}}}"#,
        r#"etc."a".source: glob "<SRC>/none/*" matched nothing"#,
    ),
    (
        r#"{"etc": {"a": {"source": "<SRC>/g?/*"}}}"#,
        r#"glob matches "<SRC>/g1/x" and "<SRC>/g2/x" have the same name, so both would be "a/x""#,
    ),
    (
        r#"{"etc": {"a": {"source": "/a/../b"}}}"#,
        r#"etc."a".source: "/a/../b" has a ".." component"#,
    ),
    (
        r#"{"etc": {"a": {"source": "../file"}}}"#,
        r#"etc."a".source: "../file" has a ".." component"#,
    ),
    (
        r#"{"etc": {"a": {"source": ""}}}"#,
        r#"etc."a".source: empty path"#,
    ),
    (
        r#"{"etc": {"a": {"source": "/a\u0001"}}}"#,
        r#"etc."a".source: control character '\u{1}'"#,
    ),
    (
        r#"{"etc": {"a": {"target": "/abs", "text": "x"}}}"#,
        r#"etc."a".target: "/abs": absolute path"#,
    ),
    (
        r#"{"etc": {"a": {"target": "x/../y", "text": "x"}}}"#,
        r#"etc."a".target: "x/../y": "..""#,
    ),
    (
        r#"{"etc": {"a": {"target": "x\ny", "text": "x"}}}"#,
        r#"etc."a".target: "x\ny": control character"#,
    ),
    (
        r#"{"etc": {"a": {"target": ".etcflip/state", "text": "x"}}}"#,
        "is etcflip's state directory",
    ),
    (
        r#"{"etc": {"static/x": {"text": "x"}}}"#,
        r#"etc."static/x".target: "static/x" collides with the overlay /etc/static"#,
    ),
    (
        r#"{"overlay": "/etc/ssh/static", "etc": {"ssh/sshd_config": {"text": "x"}}}"#,
        r#"etc."ssh/sshd_config".target: "ssh/sshd_config" collides with the overlay"#,
    ),
    (
        r#"{"overlay": "run/static", "etc": {}}"#,
        r#"overlay "run/static" is not an absolute path"#,
    ),
    (
        r#"{"etc": {"a": {"text": "x", "sourc": "/x"}}}"#,
        r#"etc."a".sourc: unknown field"#,
    ),
    (
        r#"{"etc": {"a": {"text": "x", "uid": -1}}}"#,
        r#"etc."a".uid: expected an integer from 0 to 4294967294, not -1"#,
    ),
    (
        r#"{"users": {"users": [{"name": "alice"}]}}"#,
        r#"users: user "alice": missing field `group`"#,
    ),
    (
        r#"{"users": {"mutableUsers": true, "users": [{"name": "a", "uid": 1000,
            "group": "users", "home": "/home/a", "isNormalUser": true}], "groups": []}}"#,
        r#"users: user "a": unknown field "isNormalUser""#,
    ),
    (
        r#"{"users": {"mutableUsers": false, "users": [{"name": "a", "uid": 1000,
            "group": "users", "home": "/home/a"}], "groups": []}}"#,
        r#"users: user "a": primary group "users" is neither a declared group nor a number"#,
    ),
    (
        r#"{"etc": {"passwd": {"text": "root:x:0:0::/root:/bin/sh\n"}},
            "users": {"mutableUsers": false, "users": [], "groups": [{"name": "g", "gid": 5}]}}"#,
        "entry \"passwd\": /etc/passwd is written by the users part, so no etc entry may name it",
    ),
    (
        r#"{"wrappers": {"ping": {}}}"#,
        "wrappers.\"ping\".source: required",
    ),
    (r#"{"ect": {}}"#, r#"unknown top-level key "ect""#),
    (r#"{"etc": {"a": "#, "the spec is not valid JSON"),
];

fn check_refused(dir: &TempDir, spec: &str, wants: &[String]) -> String {
    let before = names(dir.path());
    let out = dir.join("gen");
    let err = build_spec(dir, spec, &out).unwrap_err();
    let msg = format!("{err:#}");
    assert_eq!(etcflip_format::errors::exit_code(&err), 2, "{msg}");
    for want in wants {
        assert!(msg.contains(want.as_str()), "{want:?} missing in:\n{msg}");
    }
    assert!(!out.exists(), "{spec}: something was written");
    let mut after = names(dir.path());
    if !before.contains(&"spec.json".to_owned()) {
        after.retain(|n| n != "spec.json");
    }
    assert_eq!(before, after, "{spec}: a temporary directory was left");
    msg
}

#[test]
fn each_rule_is_enforced() {
    let dir = TempDir::new("rules");
    sources(&dir);
    for (spec, want) in ROWS {
        let spec = spec.replace("<SRC>", dir.str());
        check_refused(&dir, &spec, &[want.replace("<SRC>", dir.str())]);
    }
}

#[test]
fn all_violations_are_listed_at_once() {
    let dir = TempDir::new("all-at-once");
    sources(&dir);
    let spec = r#"{
      "overlay": "/etc/static",
      "users": {"users": [{"name": "alice"}]},
      "etc": {
        "dup1": {"source": "/x", "target": "t"},
        "dup2": {"source": "/y", "target": "t"},
        "file": {"source": "/x"},
        "under-file": {"target": "file/b", "text": "x"},
        "nothing": {},
        "copy-missing": {"source": "/nonexistent/x", "mode": "0644"},
        "direct-text": {"text": "x", "mode": "direct-symlink"},
        "bad-mode": {"text": "x", "mode": "888"},
        "bad-owners": {"source": "/nonexistent/y", "mode": "0600", "user": "1x:", "group": "+"},
        "glob-copy": {"source": "<SRC>/g1/*", "mode": "0644"},
        "glob-none": {"source": "<SRC>/none/*"},
        "dotdot": {"source": "/a/../b"},
        "abs": {"target": "/abs", "text": "x"},
        "overlay": {"target": "static", "text": "x"},
        "typo": {"text": "x", "mod": "0644"},
        "off": {"enable": false, "mode": "not checked when disabled"}
      }
    }"#
    .replace("<SRC>", dir.str());
    let wants: Vec<String> = [
        r#"users: user "alice": missing field `group`"#,
        r#"etc."dup2".target: "t" is also the target of etc."dup1""#,
        r#"etc."file".target: "file" is a symlink entry, but etc."under-file" needs it"#,
        r#"etc."nothing".source: neither source nor text"#,
        r#"etc."copy-missing".source: mode "0644" copies the source"#,
        r#"etc."direct-text".source: mode "direct-symlink" needs a source"#,
        r#"etc."bad-mode".mode: mode "888""#,
        r#"etc."bad-owners".user: owner name "1x:""#,
        r#"etc."bad-owners".group: "+" is not"#,
        r#"etc."bad-owners".source: mode "0600" copies the source, but cannot read"#,
        r#"etc."glob-copy".mode: a glob source"#,
        r#"etc."glob-none".source: glob"#,
        r#"etc."dotdot".source: "/a/../b""#,
        r#"etc."abs".target: "/abs""#,
        r#"etc."overlay".target: "static" collides with the overlay"#,
        r#"etc."typo".mod: unknown field"#,
    ]
    .map(|s| s.replace("<SRC>", dir.str()))
    .to_vec();
    let msg = check_refused(&dir, &spec, &wants);
    let header = format!("is invalid ({} problems):", wants.len());
    assert!(msg.contains(&header), "{header:?} not in:\n{msg}");
}

/// The binary: exit codes and the one-line-per-problem error output.
#[test]
fn binary_exit_codes() {
    let dir = TempDir::new("binary");
    let bin = env!("CARGO_BIN_EXE_etcflip-gen");
    let run = |args: &[&str]| {
        let out = Command::new(bin).args(args).output().unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    let good = dir.write("good.json", r#"{"etc": {"hosts": {"text": "x"}}}"#);
    let bad = dir.write("bad.json", r#"{"etc": {"hosts": {"mode": "9"}}}"#);
    let (good, bad) = (good.to_str().unwrap(), bad.to_str().unwrap());
    let gen = dir.join("gen");
    let gen = gen.to_str().unwrap();

    assert_eq!(
        run(&["build", "--spec", good, "--out", gen]),
        (Some(0), String::new())
    );
    let (code, err) = run(&["build", "--spec", good, "--out", gen]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("etcflip-gen: --out ") && err.contains("already exists"),
        "{err}"
    );

    let (code, err) = run(&["build", "--spec", bad, "--out", &format!("{gen}2")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!(
            "etcflip-gen: spec {bad} is invalid (2 problems):\n  - "
        )),
        "{err}"
    );

    let (code, err) = run(&["build", "--out", &format!("{gen}3")]);
    assert_eq!(code, Some(2), "{err}");

    // A spec that cannot be read (a directory) is a failure, not invalid input.
    let (code, err) = run(&["build", "--spec", dir.str(), "--out", &format!("{gen}4")]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("etcflip-gen: cannot read the spec"),
        "{err}"
    );
    assert_eq!(names(dir.path()), ["bad.json", "gen", "good.json"]);
}
