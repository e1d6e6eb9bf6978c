//! The format's rules, one case per problem.

use super::*;

fn entry(target: &str, kind: Kind) -> Entry<'_> {
    let owned = matches!(kind, Kind::Copy | Kind::Dir);
    Entry {
        target: target.into(),
        kind,
        source: (kind != Kind::Dir).then(|| "/nix/store/x".into()),
        mode: owned.then_some(Mode(0o644)),
        uid: owned.then_some(Id::Num(0)),
        gid: owned.then_some(Id::Num(0)),
        sha256: (kind == Kind::Copy).then(|| "a".repeat(64).into()),
    }
}

#[test]
fn modes_parse_three_or_four_digits() {
    assert_eq!(Mode::parse("644"), Ok(Mode(0o644)));
    assert_eq!(Mode::parse("0644"), Ok(Mode(0o644)));
    assert_eq!(Mode::parse("4755"), Ok(Mode(0o4755)));
    for bad in ["", "64", "06440", "0648", "rw-", "+644", " 644"] {
        assert!(Mode::parse(bad).is_err(), "{bad:?} accepted");
    }
    assert_eq!(Mode(0o440).to_string(), "0440");
}

#[test]
fn targets_are_checked() {
    for good in ["a", "ssh/sshd_config", "a b/c%d", "ünï/☃", ".clean"] {
        assert_eq!(check_target(good), Ok(()), "{good:?}");
    }
    for bad in [
        "",
        "/abs",
        "a//b",
        "a/",
        "./a",
        "a/../b",
        "..",
        "a\nb",
        "a\tb",
        ".etcflip",
        ".etcflip/x",
        "x.etcflip-backup",
    ] {
        assert!(check_target(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn valid_manifest_round_trips() {
    let m = Manifest {
        version: 1,
        overlay: DEFAULT_OVERLAY.into(),
        entries: vec![
            entry("pam.d", Kind::Dir),
            entry("pam.d/login", Kind::Symlink),
            entry("sudoers", Kind::Copy),
        ],
        users: None,
        wrappers: Some(vec![crate::wrappers::ping()]),
    };
    let text = m.to_json();
    assert!(
        text.contains("\n    {\"program\":\"ping\",\"source\""),
        "{text}"
    );
    assert_eq!(Manifest::from_json(&text, "t").unwrap(), m);
}

#[test]
fn every_problem_is_listed() {
    let mut m = Manifest::empty("etc/static");
    m.version = 2;
    m.entries = vec![
        entry("b/x", Kind::Symlink),
        entry("a", Kind::Symlink),
        entry("c", Kind::Copy),
        entry("static/foo", Kind::Symlink),
    ];
    m.entries[2].uid = None;
    let p = m.problems();
    assert!(p.iter().any(|s| s.contains("version 2")), "{p:?}");
    assert!(
        p.iter().any(|s| s.contains("not an absolute path")),
        "{p:?}"
    );
    assert!(p.iter().any(|s| s.contains("not sorted")), "{p:?}");
    assert!(
        p.iter().any(|s| s.contains("needs mode, uid and gid")),
        "{p:?}"
    );
    assert!(p.iter().any(|s| s.contains("has no dir entry")), "{p:?}");
}

/// A copy is a payload copy (sha256) or a runtime copy (an absolute source, no sha256).
#[test]
fn copies_need_a_hash_or_an_absolute_source() {
    type Edit = fn(&mut Entry<'static>);
    let rows: &[(&str, Edit, Option<&str>)] = &[
        ("payload copy", |_| {}, None),
        ("payload copy, no source", |e| e.source = None, None),
        ("runtime copy", |e| e.sha256 = None, None),
        (
            "runtime copy, relative source",
            |e| (e.sha256, e.source) = (None, Some("run/secrets/x".into())),
            Some(r#"source "run/secrets/x": not an absolute path"#),
        ),
        (
            "runtime copy, empty source",
            |e| (e.sha256, e.source) = (None, Some("".into())),
            Some(r#"source "": not an absolute path"#),
        ),
        (
            "runtime copy, control character",
            |e| (e.sha256, e.source) = (None, Some("/run/a\nb".into())),
            Some("control character '\\n'"),
        ),
        (
            "runtime copy, no owner",
            |e| (e.sha256, e.gid) = (None, None),
            Some("a copy entry needs mode, uid and gid"),
        ),
        (
            "neither hash nor source",
            |e| (e.sha256, e.source) = (None, None),
            Some("a copy entry needs a sha256 (a payload copy) or a source (a runtime copy"),
        ),
    ];
    for (what, edit, want) in rows {
        let mut m = Manifest::empty(DEFAULT_OVERLAY);
        m.entries = vec![entry("secret", Kind::Copy).into_owned()];
        edit(&mut m.entries[0]);
        let p = m.problems();
        match want {
            None => assert_eq!(p, Vec::<String>::new(), "{what}"),
            Some(want) => {
                assert_eq!(p.len(), 1, "{what}: {p:?}");
                assert!(p[0].contains(want), "{what}: {want:?} not in {p:?}");
            }
        }
    }
}

#[test]
fn runtime_copies_are_never_the_same_at_the_path() {
    let hashed = entry("secret", Kind::Copy);
    let mut runtime = hashed.clone();
    runtime.sha256 = None;
    assert!(runtime.is_runtime_copy() && !hashed.is_runtime_copy());
    assert!(!entry("a", Kind::Symlink).is_runtime_copy());
    assert!(!entry("a", Kind::Dir).is_runtime_copy());
    assert!(hashed.same_at_path(&hashed.clone()));
    assert!(!runtime.same_at_path(&runtime.clone()));
    assert!(!hashed.same_at_path(&runtime) && !runtime.same_at_path(&hashed));
}

#[test]
fn overlay_collisions_are_refused() {
    let mut m = Manifest::empty(DEFAULT_OVERLAY);
    m.entries = vec![entry("static", Kind::Symlink)];
    assert!(m.problems().iter().any(|s| s.contains("collides")));
}

#[test]
fn owner_names() {
    assert!(check_id_name("nginx").is_ok());
    assert!(check_id_name("systemd-network").is_ok());
    for bad in ["", "-x", "a:b", "123", "a b", ".", "..", &"x".repeat(32)] {
        assert!(check_id_name(bad).is_err(), "{bad:?}");
    }
    // The same rule as for the accounts themselves, with its reason.
    let why = check_id_name("..").unwrap_err();
    assert!(
        why.starts_with(
            "owner name \"..\" is not a valid user or group name (\"..\" is not a name"
        ),
        "{why}"
    );
}

#[test]
fn a_users_part_is_checked_with_the_manifest() {
    let text = r#"{"version": 1, "overlay": "/etc/static", "entries": [
        {"target": "passwd", "kind": "symlink", "source": "/nix/store/p"}],
        "users": {"mutableUsers": false, "users": [{"name": "a:b", "uid": 1000, "group": "users",
        "home": "/home/a"}], "groups": [{"name": "users", "gid": 100}]}}"#;
    let err = Manifest::from_json(text, "m").unwrap_err().to_string();
    assert!(
        err.contains("users: user \"a:b\": name \"a:b\" contains ':'"),
        "{err}"
    );
    assert!(
        err.contains("entry \"passwd\": /etc/passwd is written by the users part"),
        "{err}"
    );
    let unknown = text.replace(
        "\"home\": \"/home/a\"",
        "\"home\": \"/h\", \"isNormalUser\": true",
    );
    let err = Manifest::from_json(&unknown, "m").unwrap_err().to_string();
    assert!(err.contains("unknown field `isNormalUser`"), "{err}");
}

#[test]
fn a_password_files_location_is_a_clean_directory_outside_etc() {
    let cases: [(&str, Option<&str>); 7] = [
        ("/var/lib/nixos", None),
        ("/persist/users", None),
        ("var/lib/nixos", Some("is not an absolute path")),
        ("/", Some("passwordFilesLocation \"/\":")),
        (
            "/var/../etc",
            Some("passwordFilesLocation \"/var/../etc\":"),
        ),
        ("/etc", Some("is in /etc, which links to it")),
        ("/etc/users", Some("is in /etc, which links to it")),
    ];
    for (place, want) in cases {
        let text = format!(
            r#"{{"version": 1, "overlay": "/etc/static", "entries": [],
            "users": {{"mutableUsers": true, "users": [], "groups": [],
            "passwordFilesLocation": "{place}"}}}}"#
        );
        let got = Manifest::from_json(&text, "m").err().map(|e| e.to_string());
        match (want, got) {
            (None, None) => {}
            (Some(w), Some(e)) => assert!(e.contains(w), "{place}: {e}"),
            (w, e) => panic!("{place}: wanted {w:?}, got {e:?}"),
        }
    }
}
