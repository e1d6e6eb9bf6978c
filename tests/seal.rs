//! The users seal (applier/src/users/seal.rs): a re-switch of the applied generation whose
//! user database is as the last switch left it skips planning the users phase. Skipping must
//! never change an outcome: whatever is changed on the root, a sealed root switches exactly as
//! the same root without its seal, and a seal left by a switch that did not commit is never
//! trusted.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use etcflip_e2e::{code, text_of, Scratch};
use serde_json::{json, Value};

const SEAL: &str = "etc/.etcflip/users.json";

fn spec(alice_linger: bool, extra: &[Value]) -> Value {
    let mut users = vec![
        json!({"name": "root", "uid": 0, "group": "root", "home": "/root", "isSystemUser": true}),
        json!({"name": "alice", "uid": 1000, "group": "users", "home": "/home/alice",
               "createHome": true, "homeMode": "750", "linger": alice_linger,
               "hashedPasswordFile": "/run/keys/alice"}),
        json!({"name": "bob", "group": "users", "home": "/home/bob", "hashedPassword": "$6$s$h"}),
        json!({"name": "svc", "group": "users", "home": "/var/empty", "isSystemUser": true}),
    ];
    users.extend(extra.iter().cloned());
    json!({
        "etc": {"hosts": {"text": "127.0.0.1 localhost\n"}},
        "users": {"mutableUsers": false, "users": users,
                  "groups": [{"name": "root", "gid": 0},
                             {"name": "users", "gid": 100, "members": ["alice"]},
                             {"name": "wheel", "members": ["alice", "bob"]}]}
    })
}

/// A root switched to the spec's generation, its users sealed.
fn settled(name: &str) -> (Scratch, PathBuf) {
    let s = Scratch::with_root_account(name);
    s.file("root/run/keys/alice", "$6$salt$alicehash\n");
    let gen = s.gen("g", &spec(true, &[]));
    s.switch(&gen, &[]);
    assert!(s.root.join(SEAL).is_file(), "the switch sealed the users");
    (s, gen)
}

/// What a users phase can change: the five files, the ledgers, homes and linger files.
fn state(root: &Path) -> Vec<(String, String)> {
    use std::os::unix::fs::MetadataExt as _;
    let files = [
        "etc/passwd",
        "etc/group",
        "etc/shadow",
        "etc/subuid",
        "etc/subgid",
    ];
    let ledgers = [
        "uid-map",
        "gid-map",
        "declarative-users",
        "declarative-groups",
    ];
    let paths = files
        .iter()
        .map(|f| (*f).to_owned())
        .chain(ledgers.iter().map(|l| format!("var/lib/nixos/{l}")))
        .chain([
            "home/alice".to_owned(),
            "var/lib/systemd/linger/alice".to_owned(),
        ]);
    paths
        .map(|rel| {
            let p = root.join(&rel);
            let seen = match std::fs::symlink_metadata(&p) {
                Err(_) => "absent".to_owned(),
                Ok(m) if m.is_dir() => {
                    format!("dir {:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid())
                }
                Ok(m) if m.is_file() => format!(
                    "file {:o} {}",
                    m.mode() & 0o7777,
                    std::fs::read_to_string(&p).unwrap()
                ),
                Ok(_) => "other".to_owned(),
            };
            (rel, seen)
        })
        .collect()
}

/// A switch's exit code and output, with the root's path taken out.
fn outcome(s: &Scratch, gen: &Path, extra: &[&str]) -> (i32, String) {
    let out = s.switch_out(gen, extra);
    let root = s.root.display().to_string();
    (code(&out), text_of(&out).replace(&root, "ROOT"))
}

#[test]
fn a_sealed_re_switch_reports_what_a_planned_one_does_and_writes_nothing() {
    let (sealed, gen) = settled("seal-noop");
    let (planned, gen2) = settled("seal-noop-planned");
    std::fs::remove_file(planned.root.join(SEAL)).unwrap();
    for extra in [
        &[][..],
        &["--json"],
        &["--dry-run"],
        &["--dry-run", "--json"],
    ] {
        let before = etcflip_e2e::listing(&sealed.root);
        let got = outcome(&sealed, &gen, extra);
        assert_eq!(got.0, 0, "{}", got.1);
        assert_eq!(
            before,
            etcflip_e2e::listing(&sealed.root),
            "{extra:?} wrote nothing"
        );
        let want = outcome(&planned, &gen2, extra);
        assert_eq!(
            got, want,
            "{extra:?}: sealed and planned re-switches differ"
        );
        // A re-switch writes nothing, not even a seal: the unsealed root stays planned.
        assert!(!planned.root.join(SEAL).exists(), "{extra:?}");
    }
}

/// A change made to a root.
type Change = Box<dyn Fn(&Path)>;

/// Changes to a sealed root, each of which the users phase must see.
fn changes() -> Vec<(&'static str, Change)> {
    let edit = |rel: &'static str, from: &'static str, to: &'static str| -> Change {
        Box::new(move |root: &Path| {
            let p = root.join(rel);
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.contains(from), "{rel}: {from:?} not in {text:?}");
            std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
        })
    };
    let chmod = |rel: &'static str, mode: u32| -> Change {
        Box::new(move |root: &Path| {
            let perm = std::fs::Permissions::from_mode(mode);
            std::fs::set_permissions(root.join(rel), perm).unwrap();
        })
    };
    vec![
        ("a shadow line edited", edit("etc/shadow", "$6$s$h", "!")),
        ("shadow opened to others", chmod("etc/shadow", 0o644)),
        ("a passwd line removed", edit("etc/passwd", "bob:", "gone:")),
        (
            "a group member removed",
            edit("etc/group", "alice,bob", "alice"),
        ),
        (
            "subuid written",
            Box::new(|r: &Path| std::fs::write(r.join("etc/subuid"), "x:1:2\n").unwrap()),
        ),
        (
            "uid-map lost an entry",
            edit("var/lib/nixos/uid-map", "\"svc\"", "\"other\""),
        ),
        (
            "declarative-users edited",
            edit("var/lib/nixos/declarative-users", "bob", "rob"),
        ),
        (
            "the password file changed",
            edit("run/keys/alice", "alicehash", "newhash"),
        ),
        (
            "the password file removed",
            Box::new(|r: &Path| std::fs::remove_file(r.join("run/keys/alice")).unwrap()),
        ),
        ("the home's mode changed", chmod("home/alice", 0o777)),
        (
            "the home removed",
            Box::new(|r: &Path| std::fs::remove_dir(r.join("home/alice")).unwrap()),
        ),
        (
            "the linger file removed",
            Box::new(|r: &Path| {
                std::fs::remove_file(r.join("var/lib/systemd/linger/alice")).unwrap();
            }),
        ),
        (
            "passwd made a link",
            Box::new(|r: &Path| {
                std::fs::rename(r.join("etc/passwd"), r.join("etc/passwd.real")).unwrap();
                std::os::unix::fs::symlink("passwd.real", r.join("etc/passwd")).unwrap();
            }),
        ),
    ]
}

#[test]
fn whatever_changes_on_the_root_a_sealed_root_switches_as_an_unsealed_one() {
    for (what, change) in changes() {
        let (sealed, gen) = settled("seal-change");
        let (planned, gen2) = settled("seal-change-planned");
        std::fs::remove_file(planned.root.join(SEAL)).unwrap();
        change(&sealed.root);
        change(&planned.root);
        let before = state(&planned.root);
        let want = outcome(&planned, &gen2, &[]);
        assert!(
            want.0 != 0 || state(&planned.root) != before,
            "{what}: the change should matter to the users phase:\n{}",
            want.1
        );
        let got = outcome(&sealed, &gen, &[]);
        assert_eq!(got, want, "{what}: the outcomes differ");
        assert_eq!(
            state(&sealed.root),
            state(&planned.root),
            "{what}: the roots differ"
        );
    }
}

#[test]
fn a_seal_left_by_a_switch_that_did_not_commit_is_not_trusted() {
    let extra = [json!({"name": "carol", "group": "users", "home": "/home/carol"})];
    let (reference, _) = settled("seal-kill-reference");
    let want = state(&reference.root);
    let mut sealed_uncommitted = 0;
    for n in 1..40 {
        let (s, gen) = settled("seal-kill");
        let other = s.gen("other", &spec(false, &extra));
        if !etcflip_e2e::switch_killed_at(&s, &other, &[], "renameat", n) {
            break; // the switch got through: every rename was tried
        }
        let seal = std::fs::read_to_string(s.root.join(SEAL)).unwrap_or_default();
        let journal = s.root.join("etc/.etcflip/journal.json").is_file();
        if journal
            && std::fs::read_to_string(s.root.join("etc/passwd"))
                .unwrap()
                .contains("carol")
        {
            sealed_uncommitted += usize::from(!seal.is_empty());
        }
        // Back to the applied generation: its users, whatever the killed switch sealed.
        let out = s.switch_out(&gen, &[]);
        assert_eq!(code(&out), 0, "killed at rename {n}: {}", text_of(&out));
        // The ledgers keep the id the killed switch gave carol (they are never pruned).
        let without_ids = |st: Vec<(String, String)>| -> Vec<(String, String)> {
            st.into_iter()
                .filter(|(rel, _)| !rel.ends_with("id-map"))
                .collect()
        };
        assert_eq!(
            without_ids(state(&s.root)),
            without_ids(want.clone()),
            "killed at rename {n}"
        );
    }
    assert!(
        sealed_uncommitted > 0,
        "some kills left the other generation's seal"
    );
}

#[test]
fn a_switch_to_a_generation_without_users_removes_the_seal() {
    let (s, gen) = settled("seal-without");
    let bare = s.gen("bare", &json!({"etc": {"hosts": {"text": "x\n"}}}));
    s.switch(&bare, &[]);
    assert!(!s.root.join(SEAL).exists());
    s.switch(&gen, &[]);
    assert!(s.root.join(SEAL).is_file());
}

/// A root switched to a generation whose only user, alice, has a home; `setup` runs first.
fn with_home(name: &str, setup: &dyn Fn(&Path)) -> (Scratch, PathBuf) {
    let s = Scratch::with_root_account(name);
    setup(&s.root);
    let alice = json!({"name": "alice", "uid": 1000, "group": "users", "home": "/home/alice",
                       "createHome": true, "homeMode": "750", "description": "ok"});
    let root = json!({"name": "root", "uid": 0, "group": "root", "home": "/root"});
    let spec = json!({
        "etc": {"secret": {"text": "s\n", "mode": "0400", "user": "alice", "group": "users"}},
        "users": {"mutableUsers": false, "users": [root, alice],
                  "groups": [{"name": "root", "gid": 0}, {"name": "users", "gid": 100}]}
    });
    let gen = s.gen("g", &spec);
    s.switch(&gen, &[]);
    (s, gen)
}

#[test]
fn a_home_left_alone_behind_a_link_is_never_sealed_so_it_is_always_reported() {
    let link = |root: &Path| {
        std::fs::create_dir_all(root.join("srv/home/alice")).unwrap();
        std::os::unix::fs::symlink("srv/home", root.join("home")).unwrap();
    };
    let (s, gen) = with_home("seal-unreachable", &link);
    assert!(
        !s.root.join(SEAL).exists(),
        "a plan with something to report is not sealed"
    );
    let out = outcome(&s, &gen, &[]);
    assert!(
        out.1.contains("leave the home /home/alice alone"),
        "{}",
        out.1
    );
}

/// Runs a switch held 1.5 s at its second rename, which is passwd's (the journal is the
/// first): phase 3 has looked at the root again under the lock by then. `meanwhile` runs while
/// it is held (once passwd's temporary file is there), then the switch is waited for.
fn switch_held_at_passwd(s: &Scratch, gen: &Path, meanwhile: impl FnOnce()) {
    let delay = "inject=renameat:delay_enter=1500000:when=2";
    let args = ["-f", "-qq", "-o", "/dev/null", "-e", delay];
    let mut child = etcflip_e2e::switch_under_strace(args, &s.root, gen, &[])
        .spawn()
        .unwrap();
    let staged = s.root.join("etc/.passwd.etcflip-tmp");
    let start = std::time::Instant::now();
    while !staged.exists() {
        assert!(start.elapsed().as_secs() < 30, "passwd was never staged");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    meanwhile();
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_change_made_while_phase_3_writes_is_not_sealed() {
    // The switch is held at its second rename (the users phase) while alice's home is
    // opened to everyone; a program that ignores /etc/.pwd.lock could do the same to a file.
    let (s, gen) = with_home("seal-race", &|_: &Path| {});
    std::fs::remove_file(s.root.join(SEAL)).unwrap();
    std::fs::write(s.root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let home = s.root.join("home/alice");
    switch_held_at_passwd(&s, &gen, || {
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).unwrap();
    });
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        mode(&home),
        0o777,
        "the change came after the switch looked"
    );
    s.switch(&gen, &[]);
    assert_eq!(
        mode(&home),
        0o750,
        "the next switch plans, and gives the home its mode"
    );
}

#[test]
fn a_file_changed_while_phase_3_writes_is_repaired_by_the_next_switch() {
    // A program that ignores /etc/.pwd.lock adds a group while the switch is held at its
    // second rename (passwd, after group was found right): the seal records the files as the
    // plan made them, so the next switch sees the difference and plans.
    let (s, gen) = with_home("seal-race-file", &|_: &Path| {});
    std::fs::write(s.root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let group = s.root.join("etc/group");
    switch_held_at_passwd(&s, &gen, || {
        let mut text = std::fs::read_to_string(&group).unwrap();
        text.push_str("intruder:x:5000:\n");
        std::fs::write(&group, text).unwrap();
    });
    assert!(std::fs::read_to_string(&group)
        .unwrap()
        .contains("intruder"));
    s.switch(&gen, &[]);
    let text = std::fs::read_to_string(&group).unwrap();
    assert!(
        !text.contains("intruder"),
        "without mutableUsers the files are the declaration: {text}"
    );
}

#[test]
fn a_sealed_switch_that_repairs_etc_gives_copies_the_owners_a_planned_one_does() {
    use std::os::unix::fs::MetadataExt as _;
    let (sealed, gen) = with_home("seal-etc-drift", &|_: &Path| {});
    let (planned, gen2) = with_home("seal-etc-drift-planned", &|_: &Path| {});
    std::fs::remove_file(planned.root.join(SEAL)).unwrap();
    for s in [&sealed, &planned] {
        std::fs::remove_file(s.root.join("etc/secret")).unwrap();
    }
    for extra in [&["--dry-run", "--json"][..], &["--json"]] {
        assert_eq!(
            outcome(&sealed, &gen, extra),
            outcome(&planned, &gen2, extra)
        );
    }
    let owner = |s: &Scratch| {
        let m = std::fs::metadata(s.root.join("etc/secret")).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(owner(&sealed), (1000, 100, 0o400));
    assert_eq!(owner(&planned), owner(&sealed));
}

#[test]
fn a_sealed_users_part_is_not_read_and_a_seal_from_another_etcflip_is_not_trusted() {
    let (s, gen) = with_home("seal-version", &|_: &Path| {});
    // The same users part, made invalid in the generation and in the applied state alike
    // (byte for byte the applied generation still): sealed, it is not even read.
    for rel in ["gens/g/manifest.json", "etc/.etcflip/applied.json"] {
        let p = s.root.join(rel);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(r#""description":"ok""#), "{rel}");
        std::fs::write(
            &p,
            text.replace(r#""description":"ok""#, r#""description":"o:k""#),
        )
        .unwrap();
    }
    let out = outcome(&s, &gen, &[]);
    assert_eq!(out.0, 0, "{}", out.1);
    let mut seal: Value =
        serde_json::from_str(&std::fs::read_to_string(s.root.join(SEAL)).unwrap()).unwrap();
    let recorder = seal["etcflip"].as_str().unwrap().to_owned();
    let exe = etcflip_e2e::bin("etcflip");
    assert!(
        recorder.starts_with(env!("CARGO_PKG_VERSION")),
        "{recorder}"
    );
    assert!(recorder.contains(&exe.display().to_string()), "{recorder}");
    // The same version, another build (its executable changed since).
    seal["etcflip"] = json!(format!("{recorder}0"));
    std::fs::write(s.root.join(SEAL), seal.to_string()).unwrap();
    let out = outcome(&s, &gen, &[]);
    assert_eq!(out.0, 2, "{}", out.1);
    assert!(out.1.contains("contains ':'"), "{}", out.1);
}

#[test]
fn the_seal_is_for_root_alone() {
    use std::os::unix::fs::MetadataExt as _;
    let (s, _) = with_home("seal-mode", &|_: &Path| {});
    let m = std::fs::metadata(s.root.join(SEAL)).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o600, 0));
}

#[test]
fn an_initial_password_without_mutable_users_is_the_same_at_every_switch() {
    // A plan of its own result changes nothing, so sealed and planned re-switches agree.
    let dan = json!({"name": "dan", "uid": 1001, "group": "users", "home": "/home/dan",
                     "initialHashedPassword": "$6$s$init"});
    let spec = json!({
        "etc": {},
        "users": {"mutableUsers": false, "users": [
                    {"name": "root", "uid": 0, "group": "root", "home": "/root"}, dan],
                  "groups": [{"name": "root", "gid": 0}, {"name": "users", "gid": 100}]}
    });
    let mut shadows = Vec::new();
    for sealed in [true, false] {
        let s = Scratch::new("seal-initial");
        s.file("root/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
        let gen = s.gen("g", &spec);
        s.switch(&gen, &[]);
        if !sealed {
            std::fs::remove_file(s.root.join(SEAL)).unwrap();
        }
        s.switch(&gen, &[]);
        shadows.push(std::fs::read_to_string(s.root.join("etc/shadow")).unwrap());
    }
    assert!(shadows[1].contains("dan:$6$s$init:"), "{}", shadows[1]);
    assert_eq!(shadows[0], shadows[1]);
}
