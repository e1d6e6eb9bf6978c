//! Regression tests for bugs found in review, each named after what it protects. Kill points
//! are made exact with strace's syscall fault injection: the switch is killed at its Nth
//! rename, for every N until it completes.

use std::path::Path;
use std::process::Command;

use etcflip_e2e::{
    absent, bin, code, read_in_root, spec, switch_killed_at, text, text_of, Scratch,
};
use serde_json::json;

/// Every regular file below `dir` whose content is `want`.
fn files_with(dir: &Path, want: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let md = std::fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            out.extend(files_with(&p, want));
        } else if md.is_file() && std::fs::read(&p).unwrap() == want {
            out.push(p.display().to_string());
        }
    }
    out
}

/// A backup is never lost: killed at any rename of a `--on-conflict backup` switch that
/// replaces a user's directory, the rerun still leaves the user's file in a backup.
#[test]
fn backup_of_a_foreign_directory_survives_a_kill_at_any_rename() {
    for n in 1..40 {
        let s = Scratch::new("backup-kill");
        let a = s.gen("a", &spec(&[("a", text("a", "a\n"))]));
        let b = s.gen(
            "b",
            &spec(&[("a", text("a", "a\n")), ("d", text("d", "new d\n"))]),
        );
        s.switch(&a, &[]);
        std::fs::create_dir(s.etc("d")).unwrap();
        std::fs::write(s.etc("d/important.conf"), "precious\n").unwrap();
        let killed = switch_killed_at(&s, &b, &["--on-conflict", "backup"], "renameat2", n)
            | switch_killed_at(&s, &b, &["--on-conflict", "backup"], "renameat", n);
        s.switch(&b, &["--on-conflict", "backup"]);
        let found = files_with(&s.root.join("etc"), b"precious\n");
        assert_eq!(
            found.len(),
            1,
            "kill point {n}: the user's file must survive once: {found:?}"
        );
        assert!(found[0].contains(".etcflip-backup"), "{found:?}");
        assert_eq!(
            read_in_root(&s.root, "/etc/d").as_deref(),
            Some(&b"new d\n"[..])
        );
        if !killed {
            return; // the switch ran to the end: every kill point was covered
        }
    }
    panic!("the switch never completed within 40 kill points");
}

/// A switch stopped between a relink (an ours copy or directory replaced by the overlay link)
/// and the flip converges on the next run, to the same or to the old generation.
#[test]
fn a_switch_stopped_after_a_relink_converges() {
    for back in [false, true] {
        let s = Scratch::new("relink-stop");
        let a = s.gen(
            "a",
            &spec(&[("d", json!({"text": "hello\n", "mode": "0644"}))]),
        );
        let b = s.gen(
            "b",
            &spec(&[("x", text("x", "new\n")), ("y", text("d/y", "y\n"))]),
        );
        s.switch(&a, &[]);
        // The relink is the first rename of the switch after the journal (renameat #2).
        let mut n = 1;
        while switch_killed_at(&s, &b, &[], "renameat", n) {
            let target = if back { &a } else { &b };
            s.switch(target, &[]);
            assert_eq!(code(&s.etcflip(&["verify"])), 0, "kill point {n}");
            s.switch(&a, &[]);
            n += 1;
        }
        assert!(n > 2, "the kill points were exercised");
    }
}

/// Scratch left by a killed run never makes the next run refuse, nor leaves a managed
/// directory behind: killed while a copy's new content sat staged in its directory, a switch
/// to a generation where that directory is a link (`to_link`) or is gone converges.
#[test]
fn scratch_of_a_killed_run_is_not_a_foreign_file() {
    for to_link in [true, false] {
        let s = Scratch::new("scratch");
        let copy = |content: &str| json!({"target": "d/f", "text": content, "mode": "0644"});
        let first = s.gen("a", &spec(&[("f", copy("one\n"))]));
        let second = s.gen("b", &spec(&[("f", copy("two\n")), ("n", text("n", "n\n"))]));
        let units = s.store("dsrc/f", "s\n");
        let last = if to_link {
            s.gen(
                "c",
                &spec(&[(
                    "d",
                    json!({"target": "d", "source": units.parent().unwrap()}),
                )]),
            )
        } else {
            s.gen("c", &spec(&[("n", text("n", "n\n"))]))
        };
        s.switch(&first, &[]);
        let mut n = 1;
        loop {
            assert!(n < 30, "no kill point left a staged file");
            let killed = switch_killed_at(&s, &second, &[], "renameat", n);
            if killed && has_staged(&s.etc("d")) {
                break;
            }
            s.switch(&first, &[]);
            n += 1;
        }
        s.switch(&last, &[]);
        assert_eq!(code(&s.etcflip(&["verify"])), 0);
        if !to_link {
            assert!(
                absent(&s.etc("d")),
                "the managed directory went with its entries"
            );
        }
    }
}

fn has_staged(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".etcflip-stage"))
    })
}

/// Moving the overlay never leaves entries dangling before the flip: killed at any rename,
/// every entry still resolves (to the old or the new generation), and a rerun converges.
#[test]
fn moving_the_overlay_never_leaves_entries_dangling() {
    let mut n = 1;
    loop {
        let s = Scratch::new("overlay-move");
        let entries = [
            ("hosts", text("hosts", "x\n")),
            ("resolv", text("resolv.conf", "y\n")),
        ];
        let a = s.gen("a", &spec(&entries));
        let mut moved = spec(&entries);
        moved["overlay"] = json!("/run/etcflip/static");
        let b = s.gen("b", &moved);
        s.switch(&a, &[]);
        let killed = switch_killed_at(&s, &b, &[], "renameat", n);
        for p in ["/etc/hosts", "/etc/resolv.conf"] {
            assert!(
                read_in_root(&s.root, p).is_some(),
                "kill point {n}: {p} dangles"
            );
        }
        s.switch(&b, &[]);
        assert_eq!(code(&s.etcflip(&["verify"])), 0);
        assert!(absent(&s.etc("static")), "the old overlay went");
        if !killed {
            break;
        }
        n += 1;
        assert!(n < 30);
    }
}

/// A new entry at the old overlay's path is never taken for the old overlay.
#[test]
fn a_new_entry_at_the_old_overlay_path_is_kept() {
    let s = Scratch::new("overlay-entry");
    let a = s.gen("a", &spec(&[("hosts", text("hosts", "x\n"))]));
    let mut b = spec(&[
        ("hosts", text("hosts", "x\n")),
        ("static", text("static", "mine\n")),
    ]);
    b["overlay"] = json!("/run/ef/static");
    let b = s.gen("b", &b);
    s.switch(&a, &[]);
    s.switch(&b, &["--on-conflict", "overwrite"]);
    assert_eq!(
        read_in_root(&s.root, "/etc/static").as_deref(),
        Some(&b"mine\n"[..])
    );
    assert_eq!(code(&s.etcflip(&["verify"])), 0);
}

/// Named owners of copies resolve against the target generation's own user database.
#[test]
fn named_owners_resolve_against_the_new_passwd() {
    let s = Scratch::new("owners");
    let passwd = |uid: u32| format!("root:x:0:0::/root:/bin/sh\nsvc:x:{uid}:{uid}::/:/bin/false\n");
    let group = |gid: u32| format!("root:x:0:\nsvc:x:{gid}:\n");
    let gen = |name: &str, uid: u32, secret: &str| {
        s.gen(
            name,
            &spec(&[
                ("passwd", json!({"text": passwd(uid), "mode": "0644"})),
                ("group", json!({"text": group(uid), "mode": "0644"})),
                (
                    "secret",
                    json!({"text": secret, "mode": "0600", "user": "svc", "group": "svc"}),
                ),
            ]),
        )
    };
    let a = gen("a", 990, "one\n");
    let b = gen("b", 991, "one\n");
    s.switch(&a, &[]);
    let uid = |s: &Scratch| {
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(s.etc("secret")).unwrap())
    };
    if nix::unistd::geteuid().is_root() {
        assert_eq!(uid(&s), 990);
    }
    s.switch(&b, &[]);
    if nix::unistd::geteuid().is_root() {
        assert_eq!(
            uid(&s),
            991,
            "the unchanged copy follows the new id of its owner"
        );
        assert_eq!(code(&s.etcflip(&["verify"])), 0);
    }
}

/// A runtime copy's installed hash is journaled before the first write: killed at any rename
/// of the switch that replaces it, the rerun (to the same generation, the old one, or one
/// without it) still knows the copy is ours, so it is replaced or removed, never left behind
/// as foreign.
#[test]
fn a_runtime_copy_survives_a_kill_at_any_rename() {
    for rerun in ["a", "b", "c"] {
        for n in 1..40 {
            let s = Scratch::new("runtime-kill");
            let store = s.root.join("store");
            let secret = json!({"source": "/run/secrets/db", "mode": "0400"});
            let etc = |m: &str| json!({"store": store, "etc": {"db": secret, "m": {"text": m}}});
            let a = s.gen("a", &etc("a\n"));
            let b = s.gen("b", &etc("b\n"));
            let c = s.gen("c", &json!({"etc": {"m": {"text": "c\n"}}}));
            std::fs::create_dir_all(s.root.join("run/secrets")).unwrap();
            std::fs::write(s.root.join("run/secrets/db"), "one\n").unwrap();
            s.switch(&a, &[]);
            std::fs::write(s.root.join("run/secrets/db"), "two\n").unwrap();
            let killed = switch_killed_at(&s, &b, &[], "renameat", n);
            // The secret is rotated once more before the rerun: what the killed run may have
            // installed ("two") no longer matches the source, so only the journal says it
            // is ours.
            std::fs::write(s.root.join("run/secrets/db"), "three\n").unwrap();
            let (last, want) = match rerun {
                "a" => (&a, Some(&b"three\n"[..])),
                "b" => (&b, Some(&b"three\n"[..])),
                _ => (&c, None),
            };
            s.switch(last, &[]);
            let ctx = format!("kill point {n}, rerun to {rerun}");
            assert_eq!(read_in_root(&s.root, "/etc/db").as_deref(), want, "{ctx}");
            let verify = s.etcflip(&["verify"]);
            let said = String::from_utf8_lossy(&verify.stdout);
            assert_eq!(code(&verify), 0, "{ctx}: {said}");
            for ent in std::fs::read_dir(s.root.join("etc")).unwrap().flatten() {
                let name = ent.file_name().to_string_lossy().into_owned();
                assert!(!name.contains(".etcflip-"), "{ctx}: leftover {name}");
            }
            if !killed {
                break;
            }
        }
    }
}

/// The state records a runtime copy only as what is really there: a switch killed after it
/// installed a new secret, rerun while the source is missing, must still know that file as
/// its own, so that the next switch replaces it instead of refusing it (or, with `backup`,
/// leaving a copy of the secret behind).
#[test]
fn a_runtime_copy_installed_by_a_killed_switch_stays_ours_through_a_missing_source() {
    for n in 1..40 {
        let s = Scratch::new("runtime-kill-missing");
        let store = s.root.join("store");
        let secret = json!({"source": "/run/secrets/db", "mode": "0400"});
        let etc = |m: &str| json!({"store": store, "etc": {"db": secret, "m": {"text": m}}});
        let (a, b) = (s.gen("a", &etc("a\n")), s.gen("b", &etc("b\n")));
        let src = s.root.join("run/secrets/db");
        std::fs::create_dir_all(src.parent().unwrap()).unwrap();
        std::fs::write(&src, "one\n").unwrap();
        s.switch(&a, &[]);
        std::fs::write(&src, "two\n").unwrap();
        let killed = switch_killed_at(&s, &b, &[], "renameat", n);
        std::fs::remove_file(&src).unwrap();
        let rerun = s.switch_out(&b, &[]);
        assert_eq!(code(&rerun), 1, "kill point {n}: incomplete");
        std::fs::write(&src, "three\n").unwrap();
        let out = s.switch_out(&a, &["--on-conflict", "backup"]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(code(&out), 0, "kill point {n}: {said}");
        assert!(!said.contains("backup"), "kill point {n}: {said}");
        assert_eq!(
            read_in_root(&s.root, "/etc/db").as_deref(),
            Some(&b"three\n"[..]),
            "kill point {n}"
        );
        if !killed {
            return;
        }
    }
    panic!("the switch never completed within 40 kill points");
}

/// A switch needs only a bounded number of open files, whatever the number of directories:
/// under systemd's default soft limit of 1,024 (a service, `nixos-rebuild`'s transient unit) a
/// tree of a few hundred directories used to fail with `EMFILE` (every directory fd stayed
/// cached). Here the limit is 64, and the tree has 300 directories: the first switch, a full
/// re-switch, `verify` and a transition all succeed.
#[test]
fn many_directories_fit_in_a_small_open_file_limit() {
    let s = Scratch::new_in_memory("nofile");
    let tree = |version: &str| {
        let entries: Vec<(String, serde_json::Value)> = (0..300)
            .map(|i| {
                let t = format!("d{:02}/e{i:03}/f.conf", i % 30);
                (t.clone(), text(&t, &format!("{version} {i}\n")))
            })
            .collect();
        let refs: Vec<(&str, serde_json::Value)> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        spec(&refs)
    };
    let a = s.gen("a", &tree("a"));
    let mut b_spec = tree("b");
    b_spec["etc"]["extra/new.conf"] = text("extra/new.conf", "new\n");
    let b = s.gen("b", &b_spec);
    let limited = |args: &[&str]| {
        Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 64 && exec \"$@\"")
            .arg("sh")
            .arg(bin("etcflip"))
            .args(args)
            .arg("--root")
            .arg(&s.root)
            .output()
            .expect("sh")
    };
    for (what, args) in [
        ("first switch", vec!["switch", a.to_str().unwrap()]),
        ("re-switch", vec!["switch", a.to_str().unwrap()]),
        ("verify", vec!["verify"]),
        ("transition", vec!["switch", b.to_str().unwrap()]),
        ("verify after", vec!["verify"]),
    ] {
        let out = limited(&args);
        assert_eq!(
            code(&out),
            0,
            "{what} under a limit of 64 open files: {}",
            text_of(&out)
        );
    }
    assert_eq!(
        read_in_root(&s.root, "/etc/extra/new.conf").as_deref(),
        Some(&b"new\n"[..])
    );
}
