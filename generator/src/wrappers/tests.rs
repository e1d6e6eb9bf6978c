use super::*;

fn parse_text(text: &str) -> (Vec<Wrapper<'static>>, Vec<String>) {
    let mut problems = Vec::new();
    let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let out = parse(&value, &mut problems);
    (out, problems)
}

#[test]
fn nixos_defaults_and_shapes_are_read() {
    let (ws, p) = parse_text(
        r#"{
        "umount": {"source": "/nix/store/u/bin/umount", "owner": "root", "group": "root", "setuid": true},
        "ping": {"source": "/nix/store/i/bin/ping", "owner": "root", "group": "0",
                 "capabilities": "cap_net_raw+p", "permissions": "u+rx,g+x,o+x"},
        "mount": {"source": "/nix/store/m/bin/mount", "program": "mount", "owner": "0",
                  "group": "wheel", "setgid": true, "permissions": "0511", "setuid": false,
                  "capabilities": "", "enable": true},
        "off": {"enable": false, "source": "/x", "owner": "root", "group": "root"}
    }"#,
    );
    assert_eq!(p, Vec::<String>::new());
    let got: Vec<_> = ws
        .iter()
        .map(|w| {
            (
                w.program.as_str(),
                w.mode.0,
                w.owner.to_string(),
                w.group.to_string(),
                w.capabilities.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("mount", 0o2511, "0".into(), "wheel".into(), None),
            (
                "ping",
                0o511,
                "root".into(),
                "0".into(),
                Some("cap_net_raw+p")
            ),
            ("umount", 0o4511, "root".into(), "root".into(), None),
        ]
    );
    assert!(matches!(ws[0].owner, Id::Num(0)));
}

#[test]
fn every_violation_is_listed_at_once() {
    let (_, p) = parse_text(
        r#"{
        "a": {"source": "/s", "owner": "root", "group": "root", "program": ""},
        "b": {"source": "/s", "owner": "root", "group": "root", "program": "x/y"},
        "c": {"source": "/s", "owner": "root", "group": "root", "program": "x\ny"},
        "d": {"source": "/s", "owner": "root", "group": "root", "program": "."},
        "e1": {"source": "/s", "owner": "root", "group": "root", "program": "dup"},
        "e2": {"source": "/s", "owner": "root", "group": "root", "program": "dup"},
        "f": {"source": "bin/sudo", "owner": "root", "group": "root"},
        "g": {"source": "/s", "owner": "root", "group": "root", "permissions": "u+rwx,g+w"},
        "h": {"source": "/s", "owner": "root", "group": "root", "permissions": "0755", "setuid": true,
              "capabilities": "cap_net_raw+ep"},
        "i": {"source": "/s", "owner": "root", "group": "root", "permissions": "u+r", "setuid": true},
        "j": {"source": "/s", "owner": "root", "group": "root", "capabilities": "cap_nope+ep cap_setpcap+ep"},
        "k": {"source": "/s", "owner": "root", "group": "root", "permissions": "u+q"},
        "l": {"owner": 3, "group": "root", "bogus": 1, "setuid": "yes"},
        "m": {"source": "/s", "owner": "a:b", "group": "root"},
        "n": {"source": "/s", "owner": "root", "group": "root", "setgid": true, "permissions": "u+rx,o+x"},
        "o": {"source": "/s", "owner": "root", "group": "root", "permissions": "4511"}
    }"#,
    );
    for want in [
        "wrappers.\"a\": program: \"\" is not a file name",
        "wrappers.\"b\": program: \"x/y\" holds '/'",
        "wrappers.\"c\": program: \"x\\ny\" holds '\\n'",
        "wrappers.\"d\": program: \".\" is not a file name",
        "wrappers.\"e1\" and wrappers.\"e2\": both name the program \"dup\"",
        "wrappers.\"f\": source \"bin/sudo\": must be an absolute path",
        "wrappers.\"g\": mode 0720: group- or world-writable",
        "wrappers.\"h\": mode 4755: setuid or setgid together with capabilities",
        "wrappers.\"i\": mode 4400: setuid without owner execute",
        "wrappers.\"j\": capabilities: \"cap_nope\" is not a capability",
        "wrappers.\"j\": capabilities: cap_setpcap is never passed on",
        "wrappers.\"k\".permissions: \"u+q\"",
        "wrappers.\"l\".bogus: unknown field",
        "wrappers.\"l\".owner: expected a string, not 3",
        "wrappers.\"l\".setuid: expected true or false",
        "wrappers.\"l\".source: required",
        "wrappers.\"m\": owner: owner name \"a:b\"",
        "wrappers.\"n\": mode 2501: setgid without group execute",
        "wrappers.\"o\".permissions: \"4511\" sets a set-id bit that setuid/setgid do not",
    ] {
        assert!(
            p.iter().any(|s| s.contains(want)),
            "{want:?} missing in {p:#?}"
        );
    }
    assert_eq!(p.len(), 19, "{p:#?}");
}

#[test]
fn permissions_apply_after_the_set_id_bits_as_nixos_chmod_does() {
    let one = |fields: &str| {
        let text =
            format!(r#"{{"w": {{"source": "/s", "owner": "root", "group": "root", {fields}}}}}"#);
        let (ws, p) = parse_text(&text);
        assert_eq!(p, Vec::<String>::new(), "{fields}");
        ws[0].mode.0
    };
    let cases = [
        (r#""setuid": true"#, 0o4511),
        (
            r#""setuid": true, "permissions": "u+rx,g+x,o+x,u-s""#,
            0o511,
        ),
        (r#""setgid": true, "permissions": "u=rx,g+x""#, 0o2510),
        // As coreutils' chmod: `=` sets the class's set-id bit too.
        (r#""setgid": true, "permissions": "u=rx,g=x""#, 0o510),
        (r#""setuid": true, "permissions": "0711""#, 0o4711),
        (r#""setuid": true, "permissions": "4755""#, 0o4755),
        (r#""permissions": "a=rx""#, 0o555),
    ];
    for (fields, want) in cases {
        assert_eq!(one(fields), want, "{fields}");
    }
}

#[test]
fn only_an_object_is_a_wrappers_part() {
    let (_, p) = parse_text(r#"["sudo"]"#);
    assert_eq!(p, ["wrappers: expected an object keyed by attribute name"]);
    let (_, p) = parse_text(r#"{"sudo": "yes"}"#);
    assert_eq!(p, ["wrappers.\"sudo\": expected an object"]);
}
