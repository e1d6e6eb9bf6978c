//! The wrappers phase, for real: generations with `security.wrappers` switched onto scratch
//! roots, their wrappers run as nobody (`setpriv`), watched by a reader during switches, and
//! killed (`SIGKILL`, one process) in the middle of it.

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use etcflip_e2e::{ambient, as_nobody, code, field, show_program, text_of, Scratch};

/// A root with root, nobody and the group users (100), and the target program in `<dir>/bin`.
fn setup(name: &str) -> (Scratch, PathBuf) {
    let s = Scratch::new(name);
    s.file(
        "root/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
    );
    s.file(
        "root/etc/group",
        "root:x:0:\nusers:x:100:\nnogroup:x:65534:\n",
    );
    let show = show_program(&s.dir, &s.dir.join("bin"));
    (s, show)
}

fn spec(wrappers: &Value) -> Value {
    json!({"etc": {"hosts": {"text": "127.0.0.1 localhost\n"}}, "wrappers": wrappers})
}

/// NixOS's shape of one wrapper of `source`, with `extra` fields.
fn wrapper(source: &Path, extra: &Value) -> Value {
    let mut w = json!({"source": source, "owner": "root", "group": "root"});
    for (k, v) in extra.as_object().unwrap() {
        w[k] = v.clone();
    }
    w
}

/// The directory `/run/wrappers/bin` points at, on the host.
fn bin_dir(root: &Path) -> PathBuf {
    let text = std::fs::read_link(root.join("run/wrappers/bin")).unwrap();
    let name = text.strip_prefix("/run/wrappers").unwrap();
    root.join("run/wrappers").join(name)
}

/// Program → (mode, uid, gid) of the directory `bin` points at.
fn installed(root: &Path) -> Vec<(String, u32, u32, u32)> {
    let mut out: Vec<_> = std::fs::read_dir(bin_dir(root))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let name = e.file_name().into_string().unwrap();
            (name, m.mode() & 0o7777, m.uid(), m.gid())
        })
        .collect();
    out.sort();
    out
}

/// The `wrappers.*` directories of the root's `/run/wrappers`.
fn wrapper_dirs(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root.join("run/wrappers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "bin")
        .collect();
    out.sort();
    out
}

#[test]
fn declared_wrappers_run_as_nobody_with_their_privileges_and_nothing_else() {
    let (s, show) = setup("wrappers-run");
    let g = s.gen(
        "a",
        &spec(&json!({
            "su-show": wrapper(&show, &json!({"setuid": true})),
            "sg-show": wrapper(&show, &json!({"group": "users", "setgid": true})),
            "cap-show": wrapper(&show, &json!({"capabilities": "cap_net_raw+ep"})),
        })),
    );
    let out = s.switch(&g, &[]);
    assert!(
        out.contains("wrappers: add /run/wrappers/bin/su-show (4511 root:root"),
        "{out}"
    );
    assert_eq!(
        installed(&s.root),
        [
            ("cap-show".into(), 0o511, 0, 0),
            ("sg-show".into(), 0o2511, 0, 100),
            ("su-show".into(), 0o4511, 0, 0),
        ]
    );
    let env = [
        ("LD_PRELOAD", "/nonexistent/x.so"),
        ("LD_LIBRARY_PATH", "/nonexistent"),
        ("MALLOC_CHECK_", "3"),
        ("MALLOC_ARENA_MAX", "1"),
        ("KEEP_ME", "yes"),
    ];
    let dir = bin_dir(&s.root);
    // (program, the ids the target sees, its ambient set)
    let cases = [
        ("su-show", "65534 0 65534 65534", 0),
        ("sg-show", "65534 65534 65534 100", 0),
        ("cap-show", "65534 65534 65534 65534", 1u64 << 13),
    ];
    for (program, ids, amb) in cases {
        let path = dir.join(program);
        let out = as_nobody(&path, &["an arg"], &env);
        let t = text_of(&out);
        assert_eq!(code(&out), 0, "{program}: {t}");
        assert_eq!(field(&t, "ids="), [ids], "{program}: {t}");
        assert_eq!(ambient(&t), amb, "{program}: {t}");
        assert_eq!(ambient(&t) >> 8 & 1, 0, "{program}: never CAP_SETPCAP: {t}");
        assert_eq!(
            field(&t, "argv0="),
            [path.to_str().unwrap()],
            "{program}: {t}"
        );
        assert_eq!(field(&t, "arg="), ["an arg"], "{program}: {t}");
        let vars = field(&t, "env=");
        assert!(vars.contains(&"KEEP_ME=yes"), "{program}: {t}");
        for (name, _) in &env[..4] {
            let gone = !vars.iter().any(|v| v.starts_with(&format!("{name}=")));
            assert!(gone, "{program} passed on {name}: {t}");
        }
    }
    // Unchanged means untouched: the same directory, the same files.
    let before = std::fs::metadata(dir.join("su-show")).unwrap();
    let again = s.switch(&g, &[]);
    assert!(again.contains("already up to date"), "{again}");
    assert_eq!(bin_dir(&s.root), dir);
    let after = std::fs::metadata(dir.join("su-show")).unwrap();
    assert_eq!(
        (before.ino(), before.ctime_nsec()),
        (after.ino(), after.ctime_nsec())
    );
    let v = s.etcflip(&["verify"]);
    assert_eq!(code(&v), 0, "{}", text_of(&v));
}

#[test]
fn a_removed_wrapper_is_gone_and_the_old_directory_with_it() {
    let (s, show) = setup("wrappers-remove");
    let three = json!({
        "a": wrapper(&show, &json!({"setuid": true})),
        "b": wrapper(&show, &json!({})),
        "c": wrapper(&show, &json!({"capabilities": "cap_net_raw+ep"})),
    });
    let ga = s.gen("a", &spec(&three));
    let gb = s.gen(
        "b",
        &spec(&json!({"a": wrapper(&show, &json!({"setuid": true}))})),
    );
    let gn = s.gen("none", &json!({"etc": {"hosts": {"text": "x\n"}}}));
    s.switch(&ga, &[]);
    assert_eq!(installed(&s.root).len(), 3);
    let out = s.switch(&gb, &[]);
    for gone in ["b", "c"] {
        assert!(
            out.contains(&format!("wrappers: remove /run/wrappers/bin/{gone}")),
            "{out}"
        );
    }
    assert_eq!(installed(&s.root), [("a".into(), 0o4511, 0, 0)]);
    assert_eq!(
        wrapper_dirs(&s.root).len(),
        1,
        "{:?}",
        wrapper_dirs(&s.root)
    );
    // A generation without wrappers after one with them: none are left.
    let out = s.switch(&gn, &[]);
    assert!(
        out.contains("wrappers: remove /run/wrappers/bin/a"),
        "{out}"
    );
    assert_eq!(installed(&s.root), []);
    assert_eq!(wrapper_dirs(&s.root).len(), 1);
    let again = s.switch(&gn, &[]);
    assert!(again.contains("already up to date"), "{again}");
}

#[test]
fn a_reader_never_sees_bin_missing_or_a_directory_half_built() {
    let (s, show) = setup("wrappers-atomic");
    let a = json!({
        "a": wrapper(&show, &json!({"setuid": true})),
        "b": wrapper(&show, &json!({})),
        "c": wrapper(&show, &json!({"capabilities": "cap_net_raw+ep"})),
    });
    let b = json!({
        "a": wrapper(&show, &json!({"setgid": true, "group": "users"})),
        "d": wrapper(&show, &json!({})),
    });
    let gens = [s.gen("a", &spec(&a)), s.gen("b", &spec(&b))];
    let sets: [BTreeSet<(String, u32)>; 2] = [
        [("a", 0o4511), ("b", 0o511), ("c", 0o511)]
            .map(|(n, m)| (n.to_owned(), m))
            .into(),
        [("a", 0o2511), ("d", 0o511)]
            .map(|(n, m)| (n.to_owned(), m))
            .into(),
    ];
    s.switch(&gens[0], &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (root, stop, sets) = (s.root.clone(), stop.clone(), sets.clone());
        std::thread::spawn(move || observe(&root, &stop, &sets))
    };
    for i in 0..30 {
        s.switch(&gens[(i + 1) % 2], &[]);
    }
    stop.store(true, Ordering::SeqCst);
    let (samples, seen, bad) = watcher.join().unwrap();
    assert_eq!(bad, Vec::<String>::new(), "after {samples} samples");
    assert!(
        samples > 100,
        "only {samples} samples: the reader proved nothing"
    );
    assert_eq!(seen, [true, true], "the reader saw both sets");
    assert_eq!(wrapper_dirs(&s.root).len(), 1);
}

/// Samples `/run/wrappers/bin` until `stop`: a sample whose link stayed the same while its
/// directory was listed must show one of `sets` exactly (names and modes). Returns the number
/// of such samples, which sets were seen, and what was wrong.
fn observe(
    root: &Path,
    stop: &AtomicBool,
    sets: &[BTreeSet<(String, u32)>; 2],
) -> (u32, [bool; 2], Vec<String>) {
    let (mut samples, mut seen, mut bad) = (0, [false; 2], Vec::new());
    let link = root.join("run/wrappers/bin");
    while !stop.load(Ordering::SeqCst) {
        let Ok(before) = std::fs::read_link(&link) else {
            bad.push("bin missing".into());
            continue;
        };
        let dir = root.join(before.strip_prefix("/").unwrap());
        let listed: Option<BTreeSet<(String, u32)>> = std::fs::read_dir(&dir).ok().and_then(|d| {
            d.map(|e| {
                let e = e.ok()?;
                let mode = e.metadata().ok()?.permissions().mode() & 0o7777;
                Some((e.file_name().into_string().ok()?, mode))
            })
            .collect()
        });
        if std::fs::read_link(&link).ok().as_ref() != Some(&before) {
            continue; // flipped while listed: the old directory may be going
        }
        samples += 1;
        match listed.and_then(|l| sets.iter().position(|s| *s == l).ok_or(l).ok()) {
            Some(i) => seen[i] = true,
            None => bad.push(format!("{} incomplete or wrong", before.display())),
        }
    }
    (samples, seen, bad)
}

#[test]
fn bad_wrappers_are_refused_with_every_problem_and_nothing_written() {
    let (s, show) = setup("wrappers-bad");
    let bad = spec(&json!({
        "x": wrapper(&show, &json!({"program": "a/b"})),
        "y": wrapper(Path::new("bin/sudo"), &json!({})),
        "z": wrapper(&show, &json!({"permissions": "u+rwx,o+w", "setuid": true})),
        "w": wrapper(&show, &json!({"setuid": true, "capabilities": "cap_net_raw+ep"})),
        "v": wrapper(&show, &json!({"capabilities": "cap_nope+ep"})),
        "u": wrapper(&show, &json!({"capabilities": "cap_setpcap+ep"})),
        "t": wrapper(&show, &json!({"program": "z"})),
    }));
    let out = s.gen_output("bad", &bad);
    let t = text_of(&out);
    assert_eq!(code(&out), 2, "{t}");
    for want in [
        "\"a/b\" holds '/'",
        "source \"bin/sudo\": must be an absolute path",
        "group- or world-writable",
        "setuid or setgid together with capabilities",
        "\"cap_nope\" is not a capability",
        "cap_setpcap is never passed on",
        "wrappers.\"t\" and wrappers.\"z\": both name the program \"z\"",
    ] {
        assert!(t.contains(want), "{want:?} missing: {t}");
    }
    assert!(!s.root.join("gens/bad").exists());
}

#[test]
fn a_generation_whose_wrapper_does_not_match_its_manifest_changes_nothing() {
    let (s, show) = setup("wrappers-tampered");
    let two = spec(&json!({
        "a": wrapper(&show, &json!({"setuid": true})),
        "b": wrapper(&show, &json!({"capabilities": "cap_net_raw+ep"})),
    }));
    // The first payload is hashed, the others compared with it: a byte changed in either,
    // at either end, is found.
    for (program, at_end) in [("a", true), ("a", false), ("b", true), ("b", false)] {
        let g = s.gen(&format!("{program}-{at_end}"), &two);
        let payload = g.join("wrappers").join(program);
        std::fs::set_permissions(&payload, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut bytes = std::fs::read(&payload).unwrap();
        let at = if at_end { bytes.len() - 1 } else { 100 };
        bytes[at] ^= 1;
        std::fs::write(&payload, bytes).unwrap();
        let before = etcflip_e2e::listing(&s.root);
        let out = s.switch_out(&g, &[]);
        let t = text_of(&out);
        assert_eq!(code(&out), 2, "{program} {at_end}: {t}");
        let want = format!("wrappers/{program}: content does not match its sha256");
        assert!(t.contains(&want), "{program} {at_end}: {t}");
        assert_eq!(etcflip_e2e::listing(&s.root), before, "nothing written");
    }
}

#[test]
fn a_foreign_bin_refuses_the_switch_and_an_unknown_owner_leaves_one_wrapper_out() {
    let (s, show) = setup("wrappers-foreign");
    let g = s.gen(
        "a",
        &spec(&json!({
            "a": wrapper(&show, &json!({"owner": "alice", "setuid": true})),
            "b": wrapper(&show, &json!({})),
        })),
    );
    std::fs::create_dir_all(s.root.join("run/wrappers/bin")).unwrap();
    let before = etcflip_e2e::listing(&s.root);
    let out = s.switch_out(&g, &[]);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    assert!(text_of(&out).contains("/run/wrappers/bin is a directory, not the link"));
    assert_eq!(etcflip_e2e::listing(&s.root), before);
    std::fs::remove_dir(s.root.join("run/wrappers/bin")).unwrap();
    // alice is nobody yet: the other wrapper is made, the switch says it is incomplete.
    let out = s.switch_out(&g, &[]);
    let t = text_of(&out);
    assert_eq!(code(&out), 1, "{t}");
    assert!(
        t.contains("/run/wrappers/bin/a: user \"alice\" not in passwd/group"),
        "{t}"
    );
    assert_eq!(installed(&s.root), [("b".into(), 0o511, 0, 0)]);
    let passwd = s.root.join("etc/passwd");
    let mut text = std::fs::read_to_string(&passwd).unwrap();
    text.push_str("alice:x:1000:100::/home/alice:/bin/sh\n");
    std::fs::write(&passwd, text).unwrap();
    let out = s.switch(&g, &[]);
    assert!(
        out.contains("wrappers: add /run/wrappers/bin/a (4511 alice:root"),
        "{out}"
    );
    assert_eq!(
        installed(&s.root),
        [("a".into(), 0o4511, 1000, 0), ("b".into(), 0o511, 0, 0)]
    );
}

#[test]
fn killed_in_the_wrappers_phase_the_next_run_converges_to_one_directory() {
    let (base, show) = setup("wrappers-kill");
    let a = spec(&json!({
        "a": wrapper(&show, &json!({"setuid": true})),
        "b": wrapper(&show, &json!({"capabilities": "cap_net_raw+ep"})),
    }));
    let b = spec(&json!({
        "a": wrapper(&show, &json!({"setgid": true, "group": "users"})),
        "c": wrapper(&show, &json!({})),
    }));
    let (ga, gb) = (base.gen("a", &a), base.gen("b", &b));
    let want_a = [
        ("a".to_owned(), 0o4511, 0, 0),
        ("b".to_owned(), 0o511, 0, 0),
    ];
    let want_b = [
        ("a".to_owned(), 0o2511, 0, 100),
        ("c".to_owned(), 0o511, 0, 0),
    ];
    let mut killed = 0;
    for syscall in [
        "mkdirat",
        "fchown",
        "fsetxattr",
        "fchmod",
        "symlinkat",
        "renameat",
        "unlinkat",
        "rmdir",
    ] {
        for n in 1..=12 {
            let (s, _) = setup("wrappers-kill-trial");
            s.switch(&ga, &[]);
            if !etcflip_e2e::switch_killed_at(&s, &gb, &[], syscall, n) {
                break;
            }
            killed += 1;
            // Every other rerun goes back to A: a different generation finishes it too.
            let (again, want) = if n % 2 == 0 {
                (&gb, &want_b)
            } else {
                (&ga, &want_a)
            };
            let out = s.switch_out(again, &[]);
            assert_eq!(code(&out), 0, "{syscall} #{n}: {}", text_of(&out));
            assert_eq!(installed(&s.root), *want, "{syscall} #{n}");
            assert_eq!(
                wrapper_dirs(&s.root).len(),
                1,
                "{syscall} #{n}: {:?}",
                wrapper_dirs(&s.root)
            );
            let v = s.etcflip(&["verify"]);
            assert_eq!(code(&v), 0, "{syscall} #{n}: {}", text_of(&v));
        }
    }
    assert!(killed > 10, "only {killed} kills landed");
}

#[test]
fn the_wrappers_command_makes_them_after_a_switch_that_left_them_alone() {
    let (s, show) = setup("wrappers-command");
    let g = s.gen(
        "a",
        &spec(&json!({"a": wrapper(&show, &json!({"setuid": true}))})),
    );
    let out = s.switch(&g, &["--no-wrappers"]);
    assert!(!out.contains("wrappers:"), "{out}");
    assert!(
        !s.root.join("run").exists(),
        "--no-wrappers leaves /run/wrappers alone"
    );
    let gen = g.to_str().unwrap();
    let dry = s.etcflip(&["wrappers", gen, "--dry-run"]);
    assert_eq!(code(&dry), 0, "{}", text_of(&dry));
    assert!(text_of(&dry).contains("wrappers: would add /run/wrappers/bin/a (4511 root:root"));
    assert!(!s.root.join("run").exists(), "a dry run writes nothing");
    let done = s.etcflip(&["wrappers", gen]);
    assert_eq!(code(&done), 0, "{}", text_of(&done));
    assert!(text_of(&done).contains("switched"), "{}", text_of(&done));
    assert_eq!(installed(&s.root), [("a".into(), 0o4511, 0, 0)]);
    let again = s.etcflip(&["wrappers", gen]);
    assert!(
        text_of(&again).contains("already up to date"),
        "{}",
        text_of(&again)
    );
    // The switch after it finds them current, and verify agrees.
    assert!(s.switch(&g, &[]).contains("already up to date"));
    assert_eq!(code(&s.etcflip(&["verify"])), 0);
}

/// Wrappers owned by root (as NixOS's all are) need no user database: `etcflip wrappers`, run
/// at every boot, does not read one. Here `passwd` and `group` are directories, which any read
/// would fail on.
#[test]
fn root_owned_wrappers_need_no_user_database() {
    let (s, show) = setup("wrappers-no-db");
    let g = s.gen(
        "a",
        &spec(&json!({"a": wrapper(&show, &json!({"setuid": true}))})),
    );
    s.switch(&g, &["--no-wrappers"]);
    for f in ["passwd", "group"] {
        std::fs::remove_file(s.etc(f)).unwrap();
        std::fs::create_dir(s.etc(f)).unwrap();
    }
    let done = s.etcflip(&["wrappers", g.to_str().unwrap()]);
    assert_eq!(code(&done), 0, "{}", text_of(&done));
    assert_eq!(installed(&s.root), [("a".into(), 0o4511, 0, 0)]);
}

/// Two wrappers: a setuid one and a capability one.
/// `etcflip wrappers`, run at every boot, reads the manifest's overlay and wrappers, never its
/// entries: an entry spoiled after the switch is not its business (the next switch's is).
#[test]
fn the_wrappers_command_reads_no_entry() {
    let (s, show) = setup("wrappers-head");
    let mut sp = spec(&json!({"a": wrapper(&show, &json!({"setuid": true}))}));
    sp["etc"]["later"] = json!({"text": "x\n"});
    let g = s.gen("a", &sp);
    s.switch(&g, &["--no-wrappers"]);
    let manifest = g.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("\"target\":\"later\"", "\"tarXet\":\"later\""),
    )
    .unwrap();
    let done = s.etcflip(&["wrappers", g.to_str().unwrap()]);
    assert_eq!(code(&done), 0, "{}", text_of(&done));
    assert_eq!(installed(&s.root), [("a".into(), 0o4511, 0, 0)]);
}

/// A wrapper owned by a user of the `passwd` the generation ships among its entries: `etcflip
/// wrappers` resolves it there, as the switch did, also when the generation lies outside the
/// root (the Nix store), where the root's `/etc/passwd` link cannot be followed.
#[test]
fn the_wrappers_command_resolves_names_in_the_generations_passwd() {
    let (s, show) = setup("wrappers-shipped-db");
    let mut sp = spec(
        &json!({"a": wrapper(&show, &json!({"owner": "alice", "group": "users",
                                                          "setuid": true}))}),
    );
    sp["etc"]["passwd"] =
        json!({"text": "root:x:0:0::/root:/bin/sh\nalice:x:1000:100::/:/bin/sh\n"});
    sp["etc"]["group"] = json!({"text": "root:x:0:\nusers:x:100:\n"});
    let g = s.gen("a", &sp);
    let outside = s.dir.join("gen");
    std::fs::rename(&g, &outside).unwrap();
    for f in ["passwd", "group"] {
        std::fs::remove_file(s.etc(f)).unwrap();
    }
    s.switch(&outside, &[]);
    assert_eq!(installed(&s.root), [("a".into(), 0o4511, 1000, 100)]);
    let again = s.etcflip(&["wrappers", outside.to_str().unwrap()]);
    let t = text_of(&again);
    assert_eq!(code(&again), 0, "{t}");
    assert!(t.contains("already up to date"), "{t}");
    assert_eq!(installed(&s.root), [("a".into(), 0o4511, 1000, 100)]);
}

fn pair(show: &Path) -> Value {
    spec(&json!({
        "a": wrapper(show, &json!({"setuid": true})),
        "b": wrapper(show, &json!({"capabilities": "cap_net_raw+ep"})),
    }))
}

#[test]
fn a_wrappers_directory_others_may_write_or_a_wrapper_written_since_is_rebuilt() {
    type Damage = fn(&Path);
    let (s, show) = setup("wrappers-drift");
    let g = s.gen("a", &pair(&show));
    s.switch(&g, &[]);
    let dir = bin_dir(&s.root);
    // (what, the damage, the line a dry run shows)
    let cases: [(&str, Damage, &str); 3] = [
        (
            "a directory anyone may write",
            |d| std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap(),
            "its directory is mode 0777",
        ),
        (
            "/run/wrappers owned by a user",
            |d| std::os::unix::fs::chown(d.parent().unwrap(), Some(1000), None).unwrap(),
            "/run/wrappers is mode 0755, owner 1000:0",
        ),
        (
            "four bytes of a wrapper overwritten, its size, mode and owner kept",
            |d| {
                use std::os::unix::fs::FileExt as _;
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(d.join("a"))
                    .unwrap();
                f.write_all_at(b"evil", 4096).unwrap();
            },
            "change /run/wrappers/bin/a: written since it was built",
        ),
    ];
    for (what, damage, line) in cases {
        let dir = bin_dir(&s.root);
        damage(&dir);
        let v = s.etcflip(&["verify"]);
        assert_eq!(code(&v), 1, "{what}: {}", text_of(&v));
        let dry = s.switch(&g, &["--dry-run"]);
        assert!(dry.contains(line), "{what}: {dry}");
        s.switch(&g, &[]);
        let v = s.etcflip(&["verify"]);
        assert_eq!(code(&v), 0, "{what}: {}", text_of(&v));
        assert_eq!(wrapper_dirs(&s.root).len(), 1, "{what}");
    }
    assert_ne!(bin_dir(&s.root), dir, "rebuilt");
}

#[test]
fn a_generation_whose_manifest_misstates_a_wrapper_or_whose_payload_is_odd_is_refused() {
    let (s, show) = setup("wrappers-misstated");
    // b's recorded sha256 is not its copy's: the copy itself is the first's with b's target.
    let other = s.dir.join("bin/other");
    std::fs::copy(&show, &other).unwrap();
    let two = spec(&json!({
        "a": wrapper(&show, &json!({"setuid": true})),
        "b": wrapper(&other, &json!({})),
    }));
    let g = s.gen("a", &two);
    let manifest = g.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let b_sha = text
        .lines()
        .find(|l| l.contains("\"program\":\"b\""))
        .unwrap();
    let sha = b_sha.split("\"sha256\":\"").nth(1).unwrap()[..64].to_owned();
    std::fs::set_permissions(&manifest, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&manifest, text.replace(&sha, &"f".repeat(64))).unwrap();
    // A payload that is a directory.
    let g2 = s.gen("b", &pair(&show));
    std::fs::remove_file(g2.join("wrappers/b")).unwrap();
    std::fs::create_dir(g2.join("wrappers/b")).unwrap();
    for (g, want) in [
        (&g, "wrappers/b: content does not match its sha256"),
        (&g2, "wrappers/b: not a regular file"),
    ] {
        let before = etcflip_e2e::listing(&s.root);
        let out = s.switch_out(g, &[]);
        assert_eq!(code(&out), 2, "{}", text_of(&out));
        assert!(text_of(&out).contains(want), "{}", text_of(&out));
        assert_eq!(etcflip_e2e::listing(&s.root), before, "nothing written");
    }
}

#[test]
fn leftovers_are_shown_by_a_dry_run_and_what_cannot_go_is_noted_not_fatal() {
    let (s, show) = setup("wrappers-leftovers");
    let g = s.gen("a", &pair(&show));
    s.switch(&g, &[]);
    // A directory and a link a killed run could leave, one setuid file in the directory.
    let old = s.root.join("run/wrappers/wrappers.leftover");
    std::fs::create_dir_all(old.join("sub")).unwrap();
    std::fs::write(old.join("evil"), "x").unwrap();
    std::fs::set_permissions(old.join("evil"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::symlink(
        "/run/wrappers/nowhere",
        s.root.join("run/wrappers/bin.etcflip-new"),
    )
    .unwrap();
    let v = s.etcflip(&["verify"]);
    assert_eq!(code(&v), 1, "{}", text_of(&v));
    let dry = s.switch(&g, &["--dry-run"]);
    for line in [
        "wrappers: would remove the leftover directory /run/wrappers/wrappers.leftover",
        "wrappers: would remove the leftover link /run/wrappers/bin.etcflip-new",
    ] {
        assert!(dry.contains(line), "{line:?}: {dry}");
    }
    assert!(old.join("evil").exists(), "a dry run writes nothing");
    // A mount inside the leftover: the switch commits, says what it left, and the next one,
    // once the mount is gone, finishes.
    let root = s.root.to_str().unwrap();
    let script = format!(
        "mount -t tmpfs none {root}/run/wrappers/wrappers.leftover/sub && {} switch {} --root {root}",
        etcflip_e2e::bin("etcflip").display(),
        g.display()
    );
    let out = etcflip_e2e::in_private_namespace(&script);
    let t = text_of(&out);
    assert_eq!(code(&out), 0, "{t}");
    assert!(
        t.contains("note: /run/wrappers/wrappers.leftover was left, closed to others:"),
        "{t}"
    );
    assert!(!s.root.join("run/wrappers/bin.etcflip-new").exists(), "{t}");
    let st = etcflip_e2e::etcflip_env(&s.root, &["status"], &[]);
    assert!(
        !text_of(&st).contains("pending"),
        "committed: {}",
        text_of(&st)
    );
    let out = s.switch(&g, &[]);
    assert!(out.contains("remove the leftover directory"), "{out}");
    assert_eq!(wrapper_dirs(&s.root).len(), 1);
}

#[test]
fn wrappers_left_by_a_generation_are_removed_after_switches_that_skipped_them() {
    let (s, show) = setup("wrappers-skipped");
    let with = s.gen("a", &pair(&show));
    let without = s.gen("c", &json!({"etc": {"hosts": {"text": "x\n"}}}));
    s.switch(&with, &[]);
    // NixOS's activation skips the wrappers; its unit then runs `etcflip wrappers`.
    s.switch(&without, &["--no-wrappers"]);
    assert_eq!(installed(&s.root).len(), 2);
    let out = s.etcflip(&["wrappers", without.to_str().unwrap()]);
    let t = text_of(&out);
    assert!(t.contains("wrappers: remove /run/wrappers/bin/a"), "{t}");
    assert_eq!(installed(&s.root), []);
    assert_eq!(code(&s.etcflip(&["verify"])), 0);
}

#[test]
fn the_wrappers_command_names_the_program_a_wrapper_runs_now() {
    let (s, show) = setup("wrappers-retarget");
    let other = s.dir.join("bin/other");
    std::fs::copy(&show, &other).unwrap();
    let ga = s.gen(
        "a",
        &spec(&json!({"a": wrapper(&show, &json!({"setuid": true}))})),
    );
    let gb = s.gen(
        "b",
        &spec(&json!({"a": wrapper(&other, &json!({"setuid": true}))})),
    );
    s.etcflip(&["wrappers", ga.to_str().unwrap()]);
    let out = s.etcflip(&["wrappers", gb.to_str().unwrap(), "--dry-run"]);
    let want = format!(
        "wrappers: would change /run/wrappers/bin/a: runs {} (was {})",
        other.display(),
        show.display()
    );
    assert!(text_of(&out).contains(&want), "{}", text_of(&out));
}

#[test]
fn a_foreign_bin_is_backed_up_or_overwritten_when_asked() {
    let (s, show) = setup("wrappers-foreign-bin");
    let g = s.gen("a", &pair(&show));
    for (flag, kept) in [("backup", true), ("overwrite", false)] {
        let bin = s.root.join("run/wrappers/bin");
        let _ = std::fs::remove_file(&bin);
        std::fs::create_dir_all(bin.join("mine")).unwrap();
        let out = s.switch(&g, &["--on-conflict", flag]);
        assert!(
            out.contains(&format!(
                "wrappers: {} /run/wrappers/bin (a directory)",
                if kept { "back up" } else { "overwrite" }
            )),
            "{out}"
        );
        assert_eq!(installed(&s.root).len(), 2, "{flag}");
        let backup = s.root.join("run/wrappers/bin.etcflip-backup/mine");
        assert_eq!(backup.exists(), kept, "{flag}");
        let _ = std::fs::remove_dir_all(s.root.join("run/wrappers/bin.etcflip-backup"));
    }
    // A second backup never overwrites the first, and is named as /etc's are.
    for n in 0..2 {
        let bin = s.root.join("run/wrappers/bin");
        std::fs::remove_file(&bin).unwrap();
        std::fs::create_dir_all(bin.join(format!("mine{n}"))).unwrap();
        s.switch(&g, &["--on-conflict", "backup"]);
    }
    let wrappers = s.root.join("run/wrappers");
    assert!(wrappers.join("bin.etcflip-backup/mine0").is_dir());
    assert!(wrappers.join("bin.etcflip-backup.1/mine1").is_dir());
}

/// Whether nobody can run `path`. The lookup is made by a shell already running as nobody:
/// `setpriv` itself keeps root's capabilities until its own exec.
fn nobody_reaches(path: &Path) -> bool {
    let out = as_nobody(
        Path::new("/bin/sh"),
        &["-c", "exec \"$0\"", path.to_str().unwrap()],
        &[],
    );
    code(&out) == 0
}

#[test]
fn a_directory_not_flipped_in_or_not_removable_runs_nothing_for_others() {
    let (s, show) = setup("wrappers-closed");
    let g1 = s.gen("a", &pair(&show));
    let g0 = s.gen("none", &json!({"etc": {"hosts": {"text": "x\n"}}}));
    // Stopped (SIGTERM) while building, so before the flip: what was built stays closed.
    let args = [
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "inject=fsetxattr:signal=TERM:when=1",
    ];
    let out = etcflip_e2e::switch_under_strace(args, &s.root, &g1, &[])
        .output()
        .unwrap();
    assert!(
        text_of(&out).contains("before the flip"),
        "{}",
        text_of(&out)
    );
    let left = wrapper_dirs(&s.root);
    assert_eq!(left.len(), 1, "{left:?}");
    let dir = s.root.join("run/wrappers").join(&left[0]);
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
    assert!(!nobody_reaches(&dir.join("a")), "nobody cannot run it");
    // A generation without wrappers removes etcflip's leftover, and makes no bin.
    let out = s.switch(&g0, &[]);
    assert!(
        out.contains("wrappers: remove the leftover directory"),
        "{out}"
    );
    assert_eq!(wrapper_dirs(&s.root), Vec::<String>::new());
    // The old directory holds a mount when the next switch replaces it: left, but closed.
    s.switch(&g1, &[]);
    let old = bin_dir(&s.root);
    std::fs::create_dir(old.join("sub")).unwrap();
    let g2 = s.gen("b", &spec(&json!({"a": wrapper(&show, &json!({}))})));
    let script = format!(
        "mount -t tmpfs none {} && {} switch {} --root {}",
        old.join("sub").display(),
        etcflip_e2e::bin("etcflip").display(),
        g2.display(),
        s.root.display()
    );
    let out = etcflip_e2e::in_private_namespace(&script);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert!(
        text_of(&out).contains("was left, closed to others"),
        "{}",
        text_of(&out)
    );
    assert_eq!(std::fs::metadata(&old).unwrap().mode() & 0o7777, 0o700);
    assert!(!nobody_reaches(&old.join("a")), "the old setuid wrapper");
    s.switch(&g2, &[]);
    assert_eq!(wrapper_dirs(&s.root).len(), 1);
    assert!(
        nobody_reaches(&bin_dir(&s.root).join("a")),
        "what bin points at, nobody runs"
    );
}

#[test]
fn what_cannot_be_replaced_at_bin_refuses_the_switch_whatever_on_conflict_says() {
    let (s, show) = setup("wrappers-blocked");
    let g = s.gen("a", &pair(&show));
    let root = s.root.to_str().unwrap();
    let etcflip = etcflip_e2e::bin("etcflip");
    // bin a mount point; /run/wrappers a link.
    std::fs::create_dir_all(s.root.join("run/wrappers/bin")).unwrap();
    let script = format!(
        "mount -t tmpfs none {root}/run/wrappers/bin && {} switch {} --root {root} --on-conflict overwrite",
        etcflip.display(),
        g.display()
    );
    let before = etcflip_e2e::listing(&s.root);
    let out = etcflip_e2e::in_private_namespace(&script);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    assert!(
        text_of(&out).contains("is a mount point or not a directory"),
        "{}",
        text_of(&out)
    );
    assert_eq!(etcflip_e2e::listing(&s.root), before);
    std::fs::remove_dir_all(s.root.join("run")).unwrap();
    std::fs::create_dir(s.root.join("run")).unwrap();
    std::os::unix::fs::symlink(s.dir.join("elsewhere"), s.root.join("run/wrappers")).unwrap();
    let out = s.switch_out(&g, &["--on-conflict", "backup"]);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    assert!(!s.root.join("etc/.etcflip/journal.json").exists());
    // A bin directory with a mount inside is overwritten: exchanged, then removed but that.
    std::fs::remove_file(s.root.join("run/wrappers")).unwrap();
    std::fs::create_dir_all(s.root.join("run/wrappers/bin/sub")).unwrap();
    let script = format!(
        "mount -t tmpfs none {root}/run/wrappers/bin/sub && {} switch {} --root {root} --on-conflict overwrite",
        etcflip.display(),
        g.display()
    );
    let out = etcflip_e2e::in_private_namespace(&script);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert!(
        text_of(&out).contains("/run/wrappers/bin.etcflip-old was left"),
        "{}",
        text_of(&out)
    );
    assert_eq!(installed(&s.root).len(), 2);
}

#[test]
fn odd_names_and_a_restored_modification_time_do_not_fool_a_switch() {
    let (s, show) = setup("wrappers-odd");
    let g = s.gen("a", &pair(&show));
    s.switch(&g, &[]);
    // A name that is not UTF-8 in the directory: rebuilt, not an error.
    let dir = bin_dir(&s.root);
    let odd = std::ffi::OsStr::from_bytes(b"bad\xff");
    std::fs::write(dir.join(odd), "x").unwrap();
    let out = s.switch(&g, &[]);
    assert!(out.contains("wrappers: "), "{out}");
    assert_ne!(bin_dir(&s.root), dir);
    assert_eq!(code(&s.etcflip(&["verify"])), 0);
    // Another binary put in place with the built time restored (`touch -d @1`, `cp -p` of a
    // store file): its status changed after the directory's, so it is seen.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let dir = bin_dir(&s.root);
    let a = dir.join("a");
    let mut bytes = std::fs::read(&a).unwrap();
    bytes[4096] ^= 1;
    std::fs::write(&a, bytes).unwrap();
    let t = nix::sys::time::TimeSpec::new(1, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &a,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o4511)).unwrap();
    let dry = s.switch(&g, &["--dry-run"]);
    assert!(
        dry.contains("change /run/wrappers/bin/a: written since it was built"),
        "{dry}"
    );
    s.switch(&g, &[]);
    assert_eq!(code(&s.etcflip(&["verify"])), 0);
}
