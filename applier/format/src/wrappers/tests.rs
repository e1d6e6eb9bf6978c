use super::*;

fn wrapper(program: &str) -> Wrapper<'static> {
    Wrapper {
        program: program.to_owned().into(),
        source: "/nix/store/x-sudo/bin/sudo".into(),
        owner: Id::Name("root".into()),
        group: Id::Num(0),
        mode: Mode(0o4511),
        capabilities: None,
        sha256: "a".repeat(64).into(),
    }
}

#[test]
fn a_nixos_default_wrapper_is_valid() {
    assert_eq!(
        problems(&[wrapper("mount"), wrapper("sudo")]),
        Vec::<String>::new()
    );
}

#[test]
fn each_rule_names_its_field() {
    type Edit = fn(&mut Wrapper<'static>);
    let cases: [(Edit, &str); 14] = [
        (
            |w| w.program = "".into(),
            "program: \"\" is not a file name",
        ),
        (
            |w| w.program = "..".into(),
            "program: \"..\" is not a file name",
        ),
        (|w| w.program = "a/b".into(), "holds '/'"),
        (|w| w.program = "a\nb".into(), "holds '\\n'"),
        (|w| w.program = "a\0b".into(), "holds '\\0'"),
        (
            |w| w.source = "bin/sudo".into(),
            "source \"bin/sudo\": must be an absolute",
        ),
        (
            |w| w.owner = Id::Name("a:b".into()),
            "owner: owner name \"a:b\"",
        ),
        (|w| w.mode = Mode(0o4531), "group- or world-writable"),
        (|w| w.mode = Mode(0o4411), "setuid without owner execute"),
        (|w| w.mode = Mode(0o2501), "setgid without group execute"),
        (
            |w| w.source = format!("/{}", "x".repeat(4095)).into(),
            "longer than a wrapper holds",
        ),
        (
            |w| w.capabilities = Some("cap_net_raw+ep".into()),
            "setuid or setgid together with capabilities",
        ),
        (
            |w| {
                w.mode = Mode(0o511);
                w.capabilities = Some("cap_nope+ep".into());
            },
            "capabilities: \"cap_nope\" is not a capability",
        ),
        (
            |w| w.sha256 = "A".repeat(64).into(),
            "sha256: not 64 lowercase hex digits",
        ),
    ];
    for (edit, want) in cases {
        let mut w = wrapper("w");
        edit(&mut w);
        let got = w.problems();
        assert_eq!(got.len(), 1, "{want}: {got:?}");
        assert!(got[0].contains(want), "{want}: {got:?}");
    }
}

#[test]
fn capabilities_that_grant_nothing_are_refused() {
    let mut w = wrapper("ping");
    w.mode = Mode(0o511);
    w.capabilities = Some("cap_net_raw-ep".into());
    assert!(
        w.problems()[0].contains("grant nothing"),
        "{:?}",
        w.problems()
    );
    w.capabilities = Some("cap_net_raw+ep".into());
    assert_eq!(w.problems(), Vec::<String>::new());
    assert_eq!(w.sets().permitted, 1 << 13);
}

#[test]
fn a_part_must_be_sorted_and_name_each_program_once() {
    let got = problems(&[wrapper("su"), wrapper("mount"), wrapper("mount")]);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got
        .iter()
        .all(|p| p.contains("not sorted by program or repeat")));
}
