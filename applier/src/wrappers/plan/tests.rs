use super::*;

fn want(program: &str, mode: u32) -> Want {
    Want {
        program: program.into(),
        source: format!("/nix/store/x-{program}/bin/{program}"),
        mode,
        uid: 0,
        gid: 0,
        owners: "root:root".into(),
        caps: Sets::default(),
        caps_text: None,
        sha256: format!("{program}-sha"),
        size: 100,
    }
}

fn seen_of(w: &Want) -> Seen {
    Seen {
        regular: true,
        mode: w.mode,
        uid: w.uid,
        gid: w.gid,
        size: w.size,
        caps: Ok(w.caps),
    }
}

/// `/run/wrappers` holding exactly `wants` in a directory built for them.
fn built(wants: &[Want]) -> Live {
    let dir = format!("{DIR_PREFIX}{}.42", digest(wants));
    Live {
        bin: Bin::Dir(dir.clone()),
        files: wants
            .iter()
            .map(|w| (w.program.clone(), seen_of(w)))
            .collect(),
        dirs: vec![dir],
        new_link: false,
    }
}

fn wanted() -> Vec<Want> {
    vec![
        want("mount", 0o4511),
        want("ping", 0o511),
        want("sudo", 0o4511),
    ]
}

#[test]
fn a_directory_built_for_exactly_these_wrappers_is_left_alone() {
    let live = built(&wanted());
    let p = plan(wanted(), &live, &BTreeMap::new());
    assert_eq!(p, Planned::default());
}

#[test]
fn changes_are_named_and_the_directory_rebuilt() {
    type Edit = fn(&mut Vec<Want>, &mut Live);
    let cases: [(&str, Edit, &[&str]); 8] = [
        ("a new wrapper", |w, _| w.push(want("su", 0o4511)), &["add /run/wrappers/bin/su (4511 root:root, runs /nix/store/x-su/bin/su)"]),
        ("a removed wrapper", |w, _| { w.remove(1); }, &["remove /run/wrappers/bin/ping"]),
        ("a mode drifted", |_, l| l.files.get_mut("sudo").unwrap().mode = 0o4755, &["change /run/wrappers/bin/sudo: mode 4755 → 4511"]),
        ("an owner changed", |w, _| w[2].uid = 7, &["change /run/wrappers/bin/sudo: owner 0:0 → 7:0"]),
        (
            "capabilities drifted",
            |_, l| l.files.get_mut("ping").unwrap().caps = Ok(Sets { effective: 1, permitted: 1, inheritable: 0 }),
            &["change /run/wrappers/bin/ping: capabilities permitted 0x1 inheritable 0x0 effective → none"],
        ),
        ("not a file", |_, l| l.files.get_mut("ping").unwrap().regular = false, &["change /run/wrappers/bin/ping: not a regular file"]),
        ("new content, same attributes", |w, _| w[0].sha256 = "other".into(), &["change /run/wrappers/bin/mount: new wrapper of /nix/store/x-mount/bin/mount"]),
        ("a truncated wrapper", |_, l| l.files.get_mut("mount").unwrap().size = 3, &["change /run/wrappers/bin/mount: size 3 → 100"]),
    ];
    for (what, edit, lines) in cases {
        let mut wants = wanted();
        let mut live = built(&wants);
        let old: BTreeMap<String, String> = wants
            .iter()
            .map(|w| (w.program.clone(), w.sha256.clone()))
            .collect();
        edit(&mut wants, &mut live);
        let digest_now = digest(&wants);
        let p = plan(wants, &live, &old);
        assert_eq!(p.changes, lines, "{what}");
        let (prefix, _) = p.work.build.as_ref().expect(what);
        assert_eq!(*prefix, format!("{DIR_PREFIX}{digest_now}."), "{what}");
        assert_eq!(
            p.work.remove, live.dirs,
            "{what}: the old directory goes after the flip"
        );
    }
}

#[test]
fn a_directory_not_built_for_these_wrappers_is_rebuilt_even_when_it_looks_right() {
    let mut live = built(&wanted());
    // NixOS's own directory, with the same files.
    live.bin = Bin::Dir("wrappers.AbCdEf0123".into());
    live.dirs = vec!["wrappers.AbCdEf0123".into()];
    let p = plan(wanted(), &live, &BTreeMap::new());
    assert_eq!(
        p.changes,
        ["rebuild /run/wrappers/bin: its directory was not built for these wrappers"]
    );
    assert!(p.work.build.is_some());
}

#[test]
fn leftovers_beside_a_current_directory_are_removed_and_nothing_rebuilt() {
    let mut live = built(&wanted());
    let current = live.dirs[0].clone();
    live.dirs = vec![
        "wrappers.0lder".into(),
        current,
        format!("{DIR_PREFIX}dead.7"),
    ];
    let p = plan(wanted(), &live, &BTreeMap::new());
    assert_eq!(p.changes, Vec::<String>::new());
    assert_eq!(p.work.build, None);
    assert_eq!(
        p.work.remove,
        ["wrappers.0lder".to_owned(), format!("{DIR_PREFIX}dead.7")]
    );
}

#[test]
fn the_link_a_killed_flip_left_is_removed_even_when_nothing_is_rebuilt() {
    let mut live = built(&wanted());
    live.new_link = true;
    let p = plan(wanted(), &live, &BTreeMap::new());
    assert_eq!(p.work.build, None);
    assert!(p.work.new_link);
}

#[test]
fn what_bin_is_decides_between_flip_and_refusal() {
    let cases = [
        (
            Bin::Absent,
            None,
            "rebuild /run/wrappers/bin: it does not point at a directory of /run/wrappers",
        ),
        (
            Bin::Elsewhere("/nix/store/x".into()),
            None,
            "rebuild /run/wrappers/bin: it does not point at a directory of /run/wrappers",
        ),
        (
            Bin::Foreign("a directory".into()),
            Some("/run/wrappers/bin is a directory, not the link etcflip flips"),
            "",
        ),
    ];
    for (bin, clash, line) in cases {
        let live = Live {
            bin: bin.clone(),
            files: BTreeMap::new(),
            dirs: Vec::new(),
            new_link: false,
        };
        let p = plan(Vec::new(), &live, &BTreeMap::new());
        if let Some(c) = clash {
            let refused = p.clash.as_deref().is_some_and(|got| got.starts_with(c));
            assert!(refused, "{bin:?}: {p:?}");
            assert_eq!(
                p.work,
                Work::default(),
                "{bin:?}: a refused plan does nothing"
            );
        } else {
            assert_eq!(p.changes, [line], "{bin:?}");
            assert!(p.work.build.is_some(), "{bin:?}");
        }
    }
}
#[test]
fn the_digest_covers_everything_a_wrapper_is_made_from() {
    type Edit = fn(&mut Want);
    let base = digest(&wanted());
    let edits: [Edit; 7] = [
        |w| w.program = "other".into(),
        |w| w.sha256 = "x".into(),
        |w| w.mode = 0o511,
        |w| w.uid = 1,
        |w| w.gid = 1,
        |w| w.caps.permitted = 1,
        |w| w.caps.inheritable = 1,
    ];
    for (i, edit) in edits.iter().enumerate() {
        let mut wants = wanted();
        edit(&mut wants[2]);
        assert_ne!(digest(&wants), base, "edit {i}");
    }
    assert_eq!(digest(&wanted()), base, "deterministic");
    assert_eq!(base.len(), 16);
}
