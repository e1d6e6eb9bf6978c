//! Hostile roots, odd names and real faults (issue 8): one table of cases, each a scratch
//! root set up to break a promise, run against the real binaries. Every case returns what
//! went wrong; the test fails listing all of them.
//!
//! Races are made deterministic enough with strace's syscall delays: the switch is slowed at
//! the syscalls that matter while the case changes the root from outside, as an attacker with
//! write access to a directory below `/etc` could.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use etcflip_e2e::{bin, code, spec, text, text_of, Scratch};

type Case = (&'static str, fn() -> Result<(), String>);

/// Every case, most severe first (the order of issue 8).
const CASES: &[Case] = &[
    (
        "1 a directory swapped for a link before removal",
        swapped_before_removal,
    ),
    (
        "1 a --root link re-pointed during the switch",
        root_link_repointed,
    ),
    ("2 a non-UTF-8 --root", non_utf8_root),
    (
        "3 overwrite of a foreign directory with a non-UTF-8 name",
        overwrite_odd_names,
    ),
    ("4 the backup of a 250-byte name", backup_of_a_long_name),
    (
        "5 more directories than the open-file limit",
        many_directories,
    ),
    (
        "6 an overlay inside the state directory",
        overlay_in_state_dir,
    ),
    ("6 a top-level overlay", top_level_overlay),
    (
        "6 an admin's own link at the overlay path",
        foreign_overlay_link,
    ),
    (
        "6 an admin's link at /etc/static on a migrated root",
        foreign_overlay_migrated,
    ),
    ("7 a relative --root with ..", relative_root),
    ("8 a non-UTF-8 generation path", non_utf8_generation),
    ("9 umask 077", strict_umask),
    ("10 verify resolves owners as the switch did", verify_owners),
    ("11 a FIFO at /etc/passwd", fifo_passwd),
    (
        "11 a FIFO as a link's source, a foreign file at its target",
        fifo_source,
    ),
    (
        "11 SIGTERM while the lock is held by another",
        sigterm_waiting_for_the_lock,
    ),
    (
        "11 verify and status on a FIFO in the generation",
        fifo_in_generation,
    ),
    ("12 a closed stdout", closed_stdout),
    (
        "12 closed stdout and stderr on a refused switch",
        closed_stderr,
    ),
    ("+ a --root that is missing or a file", bad_root),
    ("+ a payload changed after it was checked", payload_swapped),
    (
        "+ a tampered generation and no systemd-tmpfiles",
        tampered_without_tmpfiles,
    ),
    (
        "+ a refused switch on a root etcflip never touched",
        refused_writes_nothing,
    ),
    ("+ a no-op re-switch on a read-only /etc", read_only_etc),
    (
        "+ a device as a runtime copy's source and as /etc/passwd",
        device_sources,
    ),
];

#[test]
fn hostile_roots() {
    let mut failed = Vec::new();
    for (name, case) in CASES {
        match case() {
            Ok(()) => eprintln!("ok: {name}"),
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    assert!(failed.is_empty(), "\n{}\n", failed.join("\n\n"));
}

/// Fails with `msg` unless `ok`.
fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(msg())
    }
}

/// `etcflip <args…> --root <root>`, run through `shell` when it is not empty (`bash -c
/// '<shell>'` with the command line as its `"$@"`: a limit, a umask or a pipe around it).
fn etcflip_in(shell: &str, root: &Path, args: &[&OsStr]) -> Output {
    let mut cmd = if shell.is_empty() {
        Command::new(bin("etcflip"))
    } else {
        let mut sh = Command::new("bash");
        sh.arg("-c").arg(shell).arg("bash").arg(bin("etcflip"));
        sh
    };
    cmd.args(args)
        .arg("--root")
        .arg(root)
        .output()
        .expect("run etcflip")
}

/// `etcflip switch <gen> --root <root>` under strace, slowed by `delays` (strace `inject`
/// expressions), started in the background.
fn slowed_switch(root: &Path, gen: &Path, delays: &[&str]) -> Child {
    let mut args: Vec<String> = ["-f", "-qq", "-o", "/dev/null"].map(String::from).to_vec();
    for d in delays {
        args.extend(["-e".to_owned(), format!("inject={d}")]);
    }
    etcflip_e2e::switch_under_strace(args, root, gen, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace (apt-get install strace)")
}

/// Once `ready` holds (polled every half millisecond, for at most 20 s), does `act` while
/// `child` runs on, then waits for it.
fn meanwhile(
    mut child: Child,
    what: &str,
    mut ready: impl FnMut() -> bool,
    act: impl FnOnce(),
) -> Result<Output, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    act();
    Ok(child.wait_with_output().expect("wait for the switch"))
}

/// Whether `<root>/etc/static` shows `gen`.
fn shows(root: &Path, gen: &Path) -> bool {
    std::fs::read_link(root.join("etc/static")).is_ok_and(|t| {
        t == gen.join("etc") || root.join(t.strip_prefix("/").unwrap_or(&t)) == gen.join("etc")
    })
}

/// Issue 8.1: A has `pam.d/login` and `pam.d/x`, B only `pam.d/login`. While the switch to B removes
/// `pam.d/x` (slowed there, after the flip), `pam.d` is moved aside and replaced by a link to
/// a directory outside the root that holds an `x` of its own: that file must survive.
fn swapped_before_removal() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-swap");
    let login = ("pam.d/login", text("pam.d/login", "auth\n"));
    let a = s.gen(
        "a",
        &spec(&[login.clone(), ("pam.d/x", text("pam.d/x", "x\n"))]),
    );
    let b = s.gen("b", &spec(&[login]));
    s.switch(&a, &[]);
    let out = s.dir.join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("x"), "not etcflip's\n").unwrap();
    let child = slowed_switch(
        &s.root,
        &b,
        &["unlinkat:delay_enter=300000", "execve:delay_exit=300000"],
    );
    let done = meanwhile(
        child,
        "the flip",
        || shows(&s.root, &b),
        || {
            std::fs::rename(s.etc("pam.d"), s.etc("pd")).unwrap();
            std::os::unix::fs::symlink(&out, s.etc("pam.d")).unwrap();
        },
    )?;
    check(out.join("x").exists(), || {
        format!(
            "a file outside the root was deleted through the swapped directory:\n{}",
            text_of(&done)
        )
    })
}

/// Issue 8.1: the root is given as a link, which is re-pointed at another tree while the switch runs
/// (its tmpfiles child slowed at its start): nothing may be created in the other tree, and
/// the switch makes what it should in the root it opened.
fn root_link_repointed() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-rootlink");
    let a = s.gen("a", &spec(&[("hosts", text("hosts", "h\n"))]));
    let b = s.gen(
        "b",
        &spec(&[
            ("hosts", text("hosts", "h\n")),
            ("new.conf", text("new.conf", "new\n")),
        ]),
    );
    s.switch(&a, &[]);
    let other = s.dir.join("other");
    std::fs::create_dir(&other).unwrap();
    etcflip_e2e::copy_etc(&s.root, &other);
    let link = s.dir.join("root-link");
    std::os::unix::fs::symlink(&s.root, &link).unwrap();
    let child = slowed_switch(&link, &b, &["execve:delay_exit=500000"]);
    let journaled = || s.etc(".etcflip/journal.json").exists();
    let done = meanwhile(child, "the journal", journaled, || {
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&other, &link).unwrap();
    })?;
    check(
        other.join("etc/new.conf").symlink_metadata().is_err(),
        || format!("tmpfiles created in the other tree:\n{}", text_of(&done)),
    )?;
    check(
        code(&done) == 0 && s.etc("new.conf").symlink_metadata().is_ok(),
        || format!("the switch did not finish in its root:\n{}", text_of(&done)),
    )
}

/// Issue 8.2: a root whose name is not UTF-8 (`r\xff`), beside the sibling a lossy conversion would
/// name (`r\u{fffd}`): the switch works on its own root, never on the sibling.
fn non_utf8_root() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-nonutf8");
    let g = s.gen("g", &spec(&[("hosts", text("hosts", "h\n"))]));
    let root = s.dir.join(OsStr::from_bytes(b"r\xff"));
    let lossy = s.dir.join("r\u{fffd}");
    for r in [&root, &lossy] {
        std::fs::create_dir_all(r.join("etc")).unwrap();
    }
    let out = etcflip_in("", &root, &[OsStr::new("switch"), g.as_os_str()]);
    let in_lossy = std::fs::read_dir(lossy.join("etc")).unwrap().count();
    check(in_lossy == 0, || {
        format!(
            "the sibling {} was written ({in_lossy} entries):\n{}",
            lossy.display(),
            text_of(&out)
        )
    })?;
    let made = root.join("etc/hosts").symlink_metadata().is_ok();
    check(
        (code(&out) == 0 && made) || (code(&out) == 2 && !made),
        || {
            format!(
                "neither switched (exit 0, hosts made) nor refused (exit 2, nothing made): {}",
                text_of(&out)
            )
        },
    )
}

/// Issue 8.7: `cd sub; etcflip switch G --root ../r` works like the absolute path.
fn relative_root() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-relroot");
    let g = s.gen("g", &spec(&[("hosts", text("hosts", "h\n"))]));
    let sub = s.dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let rerun = || {
        Command::new(bin("etcflip"))
            .current_dir(&sub)
            .arg("switch")
            .arg(&g)
            .args(["--root", "../root"])
            .output()
            .unwrap()
    };
    let first = rerun();
    check(
        code(&first) == 0 && s.etc("hosts").symlink_metadata().is_ok(),
        || format!("the switch failed: {}", text_of(&first)),
    )?;
    let again = rerun();
    check(
        code(&again) == 0 && !s.etc(".etcflip/journal.json").exists(),
        || {
            format!(
                "the re-switch failed or left a journal: {}",
                text_of(&again)
            )
        },
    )
}

/// Issue 8.8: a generation whose path is not UTF-8 cannot be named by the overlay link (nor
/// recorded in JSON): refused with exit 2, and nothing written, not even the lock.
fn non_utf8_generation() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-nonutf8gen");
    let built = s.gen("g", &spec(&[("hosts", text("hosts", "h\n"))]));
    let g = s.root.join("gens").join(OsStr::from_bytes(b"g\xff"));
    std::fs::rename(&built, &g).unwrap();
    let out = etcflip_in("", &s.root, &[OsStr::new("switch"), g.as_os_str()]);
    let etc = std::fs::read_dir(s.root.join("etc")).map_or(0, Iterator::count);
    check(code(&out) == 2 && etc == 0, || {
        format!(
            "exit {} with {etc} entries in /etc (want 2, none): {}",
            code(&out),
            text_of(&out)
        )
    })
}

/// Issue 8, also: a `--root` that is missing, or a file, is bad usage (exit 2).
fn bad_root() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-badroot");
    let g = s.gen("g", &spec(&[("hosts", text("hosts", "h\n"))]));
    let file = s.file("a-file", "x\n");
    for root in [s.dir.join("missing"), file] {
        let out = etcflip_in("", &root, &[OsStr::new("switch"), g.as_os_str()]);
        check(code(&out) == 2, || {
            format!(
                "--root {}: exit {}: {}",
                root.display(),
                code(&out),
                text_of(&out)
            )
        })?;
    }
    Ok(())
}

/// Every name below `dir` that holds `.etcflip-` (scratch, stage and swap names).
fn scratch_left(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name();
        if name.as_bytes().windows(9).any(|w| w == b".etcflip-") && name != ".etcflip" {
            out.push(e.path().display().to_string());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) && name != ".etcflip" {
            out.extend(scratch_left(&e.path()));
        }
    }
    out
}

/// Issue 8.3: `--on-conflict overwrite` of a foreign directory that holds a name which is not
/// UTF-8 (and a subdirectory with another) replaces it completely, before or after the flip.
fn overwrite_odd_names() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-overwrite");
    let g = s.gen("g", &spec(&[("motd", text("motd", "ours\n"))]));
    let foreign = s.etc("motd");
    std::fs::create_dir_all(foreign.join(OsStr::from_bytes(b"sub\xfe"))).unwrap();
    std::fs::write(foreign.join(OsStr::from_bytes(b"odd\xff")), "theirs\n").unwrap();
    std::fs::write(
        foreign.join(OsStr::from_bytes(b"sub\xfe/deep\xfd")),
        "theirs\n",
    )
    .unwrap();
    let out = s.switch_out(&g, &["--on-conflict", "overwrite"]);
    let left = scratch_left(&s.root.join("etc"));
    check(
        code(&out) == 0 && std::fs::read_link(s.etc("motd")).is_ok() && left.is_empty(),
        || format!("exit {}, leftovers {left:?}: {}", code(&out), text_of(&out)),
    )?;
    let again = s.switch_out(&g, &[]);
    check(code(&again) == 0, || {
        format!("the rerun failed: {}", text_of(&again))
    })
}

/// Issue 8.4: a foreign file at a 250-byte target, under `--on-conflict backup` (NixOS's
/// default): the backup name must fit in 255 bytes, so the switch succeeds and the foreign
/// content survives in a backup.
fn backup_of_a_long_name() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-longbackup");
    let name = "n".repeat(250);
    let g = s.gen("g", &spec(&[(name.as_str(), text(&name, "ours\n"))]));
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    std::fs::write(s.etc(&name), "theirs\n").unwrap();
    let out = s.switch_out(&g, &["--on-conflict", "backup"]);
    let backups: Vec<String> = std::fs::read_dir(s.root.join("etc"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .as_bytes()
                .windows(15)
                .any(|w| w == b".etcflip-backup")
        })
        .filter(|e| std::fs::read(e.path()).is_ok_and(|c| c == b"theirs\n"))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    check(
        code(&out) == 0 && std::fs::read_link(s.etc(&name)).is_ok() && backups.len() == 1,
        || {
            format!(
                "exit {}, backups {backups:?}: {}",
                code(&out),
                text_of(&out)
            )
        },
    )?;
    let left = scratch_left(&s.root.join("etc"));
    check(left.iter().all(|l| l.contains(".etcflip-backup")), || {
        format!("leftovers: {left:?}")
    })
}

/// Issue 8.5: 1,100 managed directories under an open-file limit of 1,024 (soft and hard, so
/// raising it does not help): the first switch, a re-switch, `verify` and a transition work.
fn many_directories() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-nofile");
    let tree = |extra: bool| {
        let mut etc = serde_json::Map::new();
        for i in 0..1100 {
            let t = format!("d{:02}/e{i:04}/f.conf", i % 40);
            etc.insert(t.clone(), text(&t, &format!("{i}\n")));
        }
        if extra {
            etc.insert("new.conf".into(), text("new.conf", "new\n"));
        }
        serde_json::json!({ "etc": etc })
    };
    let a = s.gen("a", &tree(false));
    let b = s.gen("b", &tree(true));
    for (what, args) in [
        ("first switch", vec!["switch", a.to_str().unwrap()]),
        ("re-switch", vec!["switch", a.to_str().unwrap()]),
        ("verify", vec!["verify"]),
        ("transition", vec!["switch", b.to_str().unwrap()]),
    ] {
        let out = etcflip_in(
            "ulimit -S -n 1024 && ulimit -H -n 1024 && exec \"$@\"",
            &s.root,
            &args.iter().map(OsStr::new).collect::<Vec<_>>(),
        );
        check(code(&out) == 0, || format!("{what}: {}", text_of(&out)))?;
    }
    Ok(())
}

/// `etcflip-gen build` of `spec` into `<scratch>/<name>`, whatever its exit code.
fn build(s: &Scratch, name: &str, spec: &serde_json::Value) -> (Output, std::path::PathBuf) {
    let spec_path = s.file(&format!("{name}.json"), &spec.to_string());
    let out_dir = s.root.join("gens").join(name);
    let out = Command::new(bin("etcflip-gen"))
        .args(["build", "--spec"])
        .arg(&spec_path)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    (out, out_dir)
}

/// Issue 8.6: an overlay inside `/etc/.etcflip` is refused when the generation is built
/// (exit 2), and a hand-made generation that says so is refused by the switch (exit 2).
fn overlay_in_state_dir() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-overlay-state");
    let mut sp = spec(&[("hosts", text("hosts", "h\n"))]);
    sp["overlay"] = "/etc/.etcflip/journal.json".into();
    let (out, _) = build(&s, "bad", &sp);
    check(code(&out) == 2, || {
        format!("the generator said {}: {}", code(&out), text_of(&out))
    })?;
    let good = s.gen("good", &spec(&[("hosts", text("hosts", "h\n"))]));
    let manifest = good.join("manifest.json");
    let edited = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("\"/etc/static\"", "\"/etc/.etcflip/journal.json\"");
    std::fs::set_permissions(
        &manifest,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(&manifest, edited).unwrap();
    let sw = s.switch_out(&good, &[]);
    check(code(&sw) == 2 && !s.root.join("etc").exists(), || {
        format!("the switch said {}: {}", code(&sw), text_of(&sw))
    })
}

/// Issue 8.6: a top-level overlay (`/static`) works, a second time too.
fn top_level_overlay() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-overlay-top");
    let mut sp = spec(&[("hosts", text("hosts", "h\n"))]);
    sp["overlay"] = "/static".into();
    let g = s.gen("g", &sp);
    for run in ["first", "second"] {
        let out = s.switch_out(&g, &[]);
        check(code(&out) == 0, || {
            format!("{run} switch: {}", text_of(&out))
        })?;
    }
    let hosts = std::fs::read(s.root.join("gens/g/etc/hosts")).unwrap();
    let via = etcflip_e2e::read_in_root(&s.root, "/etc/hosts");
    check(via.as_deref() == Some(&hosts[..]), || {
        "/etc/hosts does not show the generation through /static".into()
    })
}

/// Issue 8.6: a link of the admin's own at `/etc/static` is a conflict like any other path:
/// refused under `abort` (nothing changed), kept as a backup under `backup`.
fn foreign_overlay_link() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-overlay-foreign");
    let g = s.gen("g", &spec(&[("hosts", text("hosts", "h\n"))]));
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    std::os::unix::fs::symlink("/srv/admins-own", s.etc("static")).unwrap();
    refused_keeping_the_admins_link(&s, &g, "abort")?;
    let out = s.switch_out(&g, &["--on-conflict", "backup"]);
    let kept = std::fs::read_link(s.etc("static.etcflip-backup")).ok();
    check(
        code(&out) == 0 && kept.as_deref() == Some(Path::new("/srv/admins-own")),
        || {
            format!(
                "backup: exit {}, backup -> {kept:?}: {}",
                code(&out),
                text_of(&out)
            )
        },
    )
}

/// Issue 8.9: under `umask 077` every directory etcflip makes (the overlay's parents, the
/// managed directories) is 0755, so every user can read `/etc`.
fn strict_umask() -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let s = Scratch::new_in_memory("hostile-umask");
    let mut sp = spec(&[("ssh/sshd_config", text("ssh/sshd_config", "x\n"))]);
    sp["overlay"] = "/run/etcflip/static".into();
    let g = s.gen("g", &sp);
    let out = etcflip_in(
        "umask 077 && exec \"$@\"",
        &s.root,
        &[OsStr::new("switch"), g.as_os_str()],
    );
    check(code(&out) == 0, || text_of(&out))?;
    for dir in ["run", "run/etcflip", "etc/ssh"] {
        let mode = std::fs::metadata(s.root.join(dir))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        check(mode == 0o755, || format!("{dir} is {mode:o}"))?;
    }
    Ok(())
}

/// Issue 8.10: a generation that ships `passwd` and `group` (with alice) and a copy owned by
/// alice, built outside the root: the switch resolves alice from the generation, and `verify`
/// and `status` must resolve her the same way (no drift, nothing unresolved).
fn verify_owners() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-verify-owners");
    let sp = serde_json::json!({"etc": {
        "passwd": {"text": "root:x:0:0::/root:/bin/sh\nalice:x:1000:100::/home/alice:/bin/sh\n"},
        "group": {"text": "root:x:0:\nusers:x:100:\n"},
        "secret": {"text": "s\n", "mode": "0400", "user": "alice", "group": "users"},
    }});
    let spec_path = s.file("spec.json", &sp.to_string());
    let g = s.dir.join("outside-gen");
    let built = Command::new(bin("etcflip-gen"))
        .args(["build", "--spec"])
        .arg(&spec_path)
        .arg("--out")
        .arg(&g)
        .output()
        .unwrap();
    check(code(&built) == 0, || text_of(&built))?;
    let sw = s.switch_out(&g, &[]);
    check(code(&sw) == 0, || format!("switch: {}", text_of(&sw)))?;
    let v = s.etcflip(&["verify"]);
    check(code(&v) == 0, || format!("verify: {}", text_of(&v)))?;
    let st = s.etcflip(&["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap_or_default();
    check(
        st.get("unresolved")
            .is_none_or(|u| u.as_array().is_some_and(Vec::is_empty)),
        || format!("status: {st}"),
    )
}

/// Runs `etcflip <args> --root <root>`; after `patience` it is sent SIGTERM, and it must then
/// end within two seconds. Returns its output, or what hung.
fn bounded(root: &Path, args: &[&OsStr], patience: Duration) -> Result<Output, String> {
    let mut child = Command::new(bin("etcflip"))
        .args(args)
        .arg("--root")
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut termed = None;
    loop {
        if child.try_wait().unwrap().is_some() {
            return Ok(child.wait_with_output().unwrap());
        }
        if termed.is_none() && started.elapsed() > patience {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            termed = Some(Instant::now());
        }
        if termed.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("it hung, and SIGTERM did not end it".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Issue 8.11: a FIFO at `/etc/passwd`, while a copy is owned by a user name: the switch must
/// not block on it (it ends on its own, within seconds).
fn fifo_passwd() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-fifo-passwd");
    let g = s.gen(
        "g",
        &serde_json::json!({"etc": {"secret": {"text": "s\n", "mode": "0400", "user": "alice"}}}),
    );
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    nix::unistd::mkfifo(
        &s.etc("passwd"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let out = bounded(
        &s.root,
        &[OsStr::new("switch"), g.as_os_str()],
        Duration::from_secs(5),
    )?;
    check(out.status.code().is_some(), || {
        format!("killed by a signal: {}", text_of(&out))
    })
}

/// Issue 8.11: a link entry whose source is a FIFO, with a foreign file at its target (the
/// switch compares contents to see whether the file is identical): it must not block.
fn fifo_source() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-fifo-source");
    let fifo = s.root.join("store/fifo");
    std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let g = s.gen(
        "g",
        &spec(&[("pipe.conf", etcflip_e2e::source("pipe.conf", &fifo))]),
    );
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    std::fs::write(s.etc("pipe.conf"), "foreign\n").unwrap();
    let out = bounded(
        &s.root,
        &[OsStr::new("switch"), g.as_os_str()],
        Duration::from_secs(5),
    )?;
    check(code(&out) == 3, || {
        format!("want a conflict (exit 3): {}", text_of(&out))
    })
}

/// Issue 8.12: `etcflip switch G --root R | true` (and with `--json`): the switch happens and
/// the exit code says so (0), whatever became of the report.
fn closed_stdout() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-epipe");
    let a = s.gen("a", &spec(&[("hosts", text("hosts", "a\n"))]));
    let b = s.gen("b", &spec(&[("hosts", text("hosts", "b\n"))]));
    for (gen, extra) in [(&a, None), (&b, Some("--json"))] {
        let mut args = vec![OsStr::new("switch"), gen.as_os_str()];
        args.extend(extra.map(OsStr::new));
        let out = etcflip_in("set -o pipefail; \"$@\" | true", &s.root, &args);
        check(code(&out) == 0 && shows(&s.root, gen), || {
            format!("{extra:?}: exit {}: {}", code(&out), text_of(&out))
        })?;
    }
    Ok(())
}

/// Issue 8, also: a copy's payload changed after the generation was checked (the switch reads
/// it again to stage it, slowed at its open): an invalid generation, exit 2, before the flip.
fn payload_swapped() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-payload");
    let g = s.gen(
        "g",
        &spec(&[(
            "motd",
            serde_json::json!({"text": "ours\n", "mode": "0644"}),
        )]),
    );
    let payload = g.join("etc/motd");
    let child = slowed_switch(&s.root, &g, &["execve:delay_exit=400000"]);
    let journaled = || s.etc(".etcflip/journal.json").exists();
    let done = meanwhile(child, "the journal", journaled, || {
        std::fs::set_permissions(
            &payload,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        std::fs::write(&payload, "changed\n").unwrap();
    })?;
    check(code(&done) == 2 && !s.etc("static").exists(), || {
        format!("exit {}: {}", code(&done), text_of(&done))
    })
}

/// Issue 8, also: a re-switch to the applied generation on a read-only `/etc` (an image) with
/// nothing to do succeeds: the lock is taken without write access.
fn read_only_etc() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-readonly");
    let g = s.gen("g", &spec(&[("hosts", text("hosts", "h\n"))]));
    s.switch(&g, &[]);
    let out = Command::new("unshare")
        .args(etcflip_e2e::unshare_private())
        .args([
            "sh",
            "-eu",
            "-c",
            "mount --bind \"$R/etc\" \"$R/etc\"; mount -o remount,bind,ro \"$R/etc\"; \
             exec \"$E\" switch \"$G\" --root \"$R\"",
        ])
        .env("R", &s.root)
        .env("G", &g)
        .env("E", bin("etcflip"))
        .output()
        .unwrap();
    check(code(&out) == 0, || text_of(&out))
}

/// Issue 8, also: a character device (`/dev/zero`'s numbers) as the source of a runtime copy,
/// and as `/etc/passwd` while a copy is owned by a name: read only as regular files, so the
/// switch ends at once, naming the source; nothing is read without bound.
fn device_sources() -> Result<(), String> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let s = Scratch::new_in_memory("hostile-devices");
    let g = s.gen(
        "g",
        &serde_json::json!({"store": s.root.join("store"), "etc": {
            "secret": {"source": "/run/secrets/x", "mode": "0400"},
            "owned": {"text": "o\n", "mode": "0644", "user": "alice"},
        }}),
    );
    std::fs::create_dir_all(s.root.join("run/secrets")).unwrap();
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    for at in [s.root.join("run/secrets/x"), s.etc("passwd")] {
        mknod(
            &at,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o644),
            makedev(1, 5),
        )
        .unwrap();
    }
    let out = bounded(
        &s.root,
        &[OsStr::new("switch"), g.as_os_str()],
        Duration::from_secs(5),
    )?;
    check(out.status.code().is_some_and(|c| c != 0), || {
        format!("exit {:?}: {}", out.status.code(), text_of(&out))
    })?;
    check(text_of(&out).contains("not a regular file"), || {
        format!("the message does not say why: {}", text_of(&out))
    })
}

/// Issue 8, also: a refused switch (exit 3) changes nothing at all, not even a lock file, on a
/// root etcflip never touched.
fn refused_writes_nothing() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-refused");
    let g = s.gen("g", &spec(&[("motd", text("motd", "ours\n"))]));
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    std::fs::write(s.etc("motd"), "the admin's\n").unwrap();
    let before = etcflip_e2e::listing(&s.root.join("etc"));
    let out = s.switch_out(&g, &[]);
    let state = s.etc(".etcflip").exists();
    check(
        code(&out) == 3 && !state && etcflip_e2e::listing(&s.root.join("etc")) == before,
        || {
            format!(
                "exit {}, state dir made: {state}: {}",
                code(&out),
                text_of(&out)
            )
        },
    )
}

/// Issue 8.11: SIGTERM stays effective before the flip, also while a switch waits for a lock
/// another holds: it ends at once (exit 1), not after the 10 s wait.
fn sigterm_waiting_for_the_lock() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-sigterm-lock");
    let g = s.gen("g", &spec(&[("hosts", text("hosts", "h\n"))]));
    s.switch(&g, &[]);
    let mut holder = Command::new("flock")
        .arg("-x")
        .arg(s.etc(".etcflip/lock"))
        .args(["sleep", "30"])
        .spawn()
        .expect("flock (util-linux)");
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let out = bounded(
        &s.root,
        &[OsStr::new("switch"), g.as_os_str()],
        Duration::from_millis(300),
    );
    let took = started.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    let out = out?;
    check(code(&out) == 1 && took < Duration::from_secs(3), || {
        format!("exit {} after {took:?}: {}", code(&out), text_of(&out))
    })
}

/// Issue 8.6: on a root migrated from `setup-etc.pl` (etcflip keeps its `/etc/.clean`), a link
/// of the admin's own at `/etc/static` is still a conflict: only a NixOS `…-etc/etc` link is
/// the legacy overlay.
fn foreign_overlay_migrated() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-overlay-migrated");
    std::fs::create_dir_all(s.root.join("store/old-etc/etc")).unwrap();
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    std::os::unix::fs::symlink("/store/old-etc/etc", s.etc("static")).unwrap();
    std::fs::write(s.etc(".clean"), "").unwrap();
    let a = s.gen("a", &spec(&[("hosts", text("hosts", "a\n"))]));
    let b = s.gen("b", &spec(&[("hosts", text("hosts", "b\n"))]));
    let first = s.switch_out(&a, &[]);
    check(code(&first) == 0, || {
        format!("migration: {}", text_of(&first))
    })?;
    std::fs::remove_file(s.etc("static")).unwrap();
    std::os::unix::fs::symlink("/srv/admins-own", s.etc("static")).unwrap();
    refused_keeping_the_admins_link(&s, &b, "migrated")
}

/// A switch to `gen` is refused (exit 3) and `/etc/static` still is the admin's own link.
fn refused_keeping_the_admins_link(s: &Scratch, gen: &Path, what: &str) -> Result<(), String> {
    let out = s.switch_out(gen, &[]);
    let still = std::fs::read_link(s.etc("static")).ok();
    check(
        code(&out) == 3 && still.as_deref() == Some(Path::new("/srv/admins-own")),
        || {
            format!(
                "{what}: exit {}, static -> {still:?}: {}",
                code(&out),
                text_of(&out)
            )
        },
    )
}

/// Issue 8.11: `verify` and `status` read the applied generation's own `passwd` (a copy is
/// owned by a name): a FIFO put there must not block them.
fn fifo_in_generation() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-fifo-gen");
    let g = s.gen(
        "g",
        &serde_json::json!({"etc": {
            "passwd": {"text": "root:x:0:0::/root:/bin/sh\nalice:x:1000:100::/:/bin/sh\n"},
            "secret": {"text": "s\n", "mode": "0400", "user": "alice"},
        }}),
    );
    s.switch(&g, &[]);
    let payload = g.join("etc/passwd");
    std::fs::remove_file(&payload).unwrap();
    nix::unistd::mkfifo(&payload, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    for cmd in ["verify", "status"] {
        let out = bounded(&s.root, &[OsStr::new(cmd)], Duration::from_secs(5))?;
        check(out.status.code().is_some(), || {
            format!("{cmd}: {}", text_of(&out))
        })?;
    }
    Ok(())
}

/// Issue 8.12: stdout and stderr both closed (`2>&1 | true`): a refused switch still exits 3,
/// a missing `--root` still 2.
fn closed_stderr() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-epipe-stderr");
    let g = s.gen("g", &spec(&[("motd", text("motd", "ours\n"))]));
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    std::fs::write(s.etc("motd"), "the admin's\n").unwrap();
    let missing = s.dir.join("missing");
    for (root, want) in [(&s.root, 3), (&missing, 2)] {
        let out = etcflip_in(
            "set -o pipefail; sleep 0.2 | true; \"$@\" 2>&1 | true",
            root,
            &[OsStr::new("switch"), g.as_os_str()],
        );
        check(code(&out) == want, || {
            format!(
                "--root {}: exit {} (want {want})",
                root.display(),
                code(&out)
            )
        })?;
    }
    Ok(())
}

/// Issue 8, also: a tampered generation is an invalid one (exit 2) even when the switch could
/// not have run `systemd-tmpfiles` anyway: the generation is judged first.
fn tampered_without_tmpfiles() -> Result<(), String> {
    let s = Scratch::new_in_memory("hostile-tampered");
    let a = s.gen("a", &spec(&[("hosts", text("hosts", "a\n"))]));
    let b = s.gen(
        "b",
        &spec(&[("motd", serde_json::json!({"text": "b\n", "mode": "0644"}))]),
    );
    s.switch(&a, &[]);
    let payload = b.join("etc/motd");
    std::fs::set_permissions(
        &payload,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(&payload, "tampered\n").unwrap();
    let out = Command::new(bin("etcflip"))
        .arg("switch")
        .arg(&b)
        .arg("--root")
        .arg(&s.root)
        .env("ETCFLIP_TMPFILES", "/nonexistent/systemd-tmpfiles")
        .output()
        .unwrap();
    check(code(&out) == 2, || {
        format!("exit {}: {}", code(&out), text_of(&out))
    })
}
