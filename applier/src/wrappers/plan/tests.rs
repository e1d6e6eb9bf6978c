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
    }
}

fn seen_of(w: &Want) -> Seen {
    Seen {
        regular: true,
        mode: w.mode,
        uid: w.uid,
        gid: w.gid,
        as_built: true,
        caps: Ok(w.caps),
    }
}

/// `/run/wrappers` holding exactly `wants` in a directory built for them.
fn built(wants: &[Want]) -> Live {
    let dir = format!("{DIR_PREFIX}{}.42", digest(wants));
    Live {
        bin: Bin::Dir(dir.clone()),
        parent: Some(DirMeta::WANTED),
        dir: Some(DirMeta::WANTED),
        files: wants
            .iter()
            .map(|w| (w.program.clone(), seen_of(w)))
            .collect(),
        targets: BTreeMap::new(),
        dirs: vec![dir],
        mounted: Vec::new(),
        new_link: None,
    }
}

fn wanted() -> Vec<Want> {
    vec![
        want("mount", 0o4511),
        want("ping", 0o511),
        want("sudo", 0o4511),
    ]
}

fn empty() -> Live {
    Live {
        bin: Bin::Absent,
        parent: None,
        dir: None,
        files: BTreeMap::new(),
        targets: BTreeMap::new(),
        dirs: Vec::new(),
        mounted: Vec::new(),
        new_link: None,
    }
}

#[test]
fn a_directory_built_for_exactly_these_wrappers_is_left_alone() {
    let live = built(&wanted());
    let p = plan(wanted(), &live, OnConflict::Abort);
    assert_eq!(p, Planned::default());
}

#[test]
fn changes_are_named_and_the_directory_rebuilt() {
    type Edit = fn(&mut Vec<Want>, &mut Live);
    let cases: [(&str, Edit, &[&str]); 11] = [
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
        ("written since built", |_, l| l.files.get_mut("mount").unwrap().as_built = false, &["change /run/wrappers/bin/mount: written since it was built (its modification time changed)"]),
        (
            "another target, known from the live file",
            |w, l| { w[0].source = "/nix/store/y/bin/mount".into();
                w[0].sha256 = "y-sha".into(); l.targets.insert("mount".into(), "/nix/store/x-mount/bin/mount".into()); },
            &["change /run/wrappers/bin/mount: runs /nix/store/y/bin/mount (was /nix/store/x-mount/bin/mount)"],
        ),
        ("new content, nothing else known", |w, _| w[0].sha256 = "other".into(), &["rebuild /run/wrappers/bin: its directory was not built for these wrappers"]),
        ("a directory others may write", |_, l| l.dir = Some(DirMeta { mode: 0o777, uid: 0, gid: 0 }), &["rebuild /run/wrappers/bin: its directory is mode 0777, owner 0:0 (wanted: 0755 root:root)"]),
        ("/run/wrappers owned by a user", |_, l| l.parent = Some(DirMeta { mode: 0o755, uid: 1000, gid: 100 }), &["rebuild /run/wrappers/bin: /run/wrappers is mode 0755, owner 1000:100 (wanted: 0755 root:root)"]),
    ];
    for (what, edit, lines) in cases {
        let mut wants = wanted();
        let mut live = built(&wants);
        edit(&mut wants, &mut live);
        let digest_now = digest(&wants);
        let p = plan(wants, &live, OnConflict::Abort);
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
    let p = plan(wanted(), &live, OnConflict::Abort);
    assert_eq!(
        p.changes,
        ["rebuild /run/wrappers/bin: its directory was not built for these wrappers"]
    );
    assert!(p.work.build.is_some());
}

#[test]
fn leftovers_are_named_and_removed_and_mount_points_left() {
    let mut live = built(&wanted());
    let current = live.dirs[0].clone();
    live.dirs = vec![
        "wrappers.0lder".into(),
        current,
        format!("{DIR_PREFIX}dead.7"),
    ];
    live.mounted = vec!["wrappers.mnt".into()];
    live.new_link = Some(true);
    let p = plan(wanted(), &live, OnConflict::Abort);
    assert_eq!(
        p.changes,
        [
            "remove the leftover directory /run/wrappers/wrappers.0lder".to_owned(),
            format!("remove the leftover directory /run/wrappers/{DIR_PREFIX}dead.7"),
            "remove the leftover link /run/wrappers/bin.etcflip-new".to_owned(),
        ]
    );
    assert_eq!(
        p.notes,
        ["/run/wrappers/wrappers.mnt is a mount point: left as it is"]
    );
    assert_eq!(p.work.build, None);
    assert_eq!(
        p.work.remove,
        ["wrappers.0lder".to_owned(), format!("{DIR_PREFIX}dead.7")]
    );
    assert!(p.work.new_link);
}

#[test]
fn what_is_at_bin_decides_between_flip_backup_and_refusal() {
    let absent = "rebuild /run/wrappers/bin: it does not point at a directory of /run/wrappers";
    let dir = || Bin::Foreign("a directory".into());
    let cases = [
        (Bin::Absent, OnConflict::Abort, None, absent, None),
        (
            Bin::Elsewhere("/nix/store/x".into()),
            OnConflict::Abort,
            None,
            absent,
            None,
        ),
        (
            dir(),
            OnConflict::Abort,
            Some("/run/wrappers/bin is a directory, not the link etcflip flips"),
            "",
            None,
        ),
        (
            dir(),
            OnConflict::Backup,
            None,
            "back up /run/wrappers/bin (a directory)",
            Some(OnConflict::Backup),
        ),
        (
            dir(),
            OnConflict::Overwrite,
            None,
            "overwrite /run/wrappers/bin (a directory)",
            Some(OnConflict::Overwrite),
        ),
    ];
    for (bin, foreign, clash, line, done) in cases {
        let live = Live {
            bin: bin.clone(),
            ..empty()
        };
        let p = plan(Vec::new(), &live, foreign);
        if let Some(c) = clash {
            let refused = p.clash.as_deref().is_some_and(|got| got.starts_with(c));
            assert!(refused, "{bin:?}: {p:?}");
            assert_eq!(
                p.work,
                Work::default(),
                "{bin:?}: a refused plan does nothing"
            );
        } else {
            assert_eq!(p.changes.first().map(String::as_str), Some(line), "{bin:?}");
            assert!(p.work.build.is_some(), "{bin:?}");
            assert_eq!(p.work.foreign, done, "{bin:?}");
        }
    }
    // Something that is not a link where the flip makes its new link: never removed.
    let live = Live {
        new_link: Some(false),
        ..empty()
    };
    let p = plan(wanted(), &live, OnConflict::Overwrite);
    assert!(p
        .clash
        .is_some_and(|c| c.contains("bin.etcflip-new is not the link")));
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
