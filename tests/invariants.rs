//! The README's invariants ("Invariants", "What ours means"), end to end: the real
//! `etcflip` and `etcflip-gen` binaries, the real `systemd-tmpfiles`, temporary roots.
//!
//! Every test is named after the invariant it checks. Nothing here touches the host's `/etc`
//! or `/usr`: planted links that point at the host's `/usr` are only used where the applier is
//! expected to refuse; where it is expected to replace a planted link, the link points at a
//! stand-in tree outside the root, which is checked to be untouched.

// A test crate: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use etcflip::fs::sha256_bytes;
use etcflip_e2e::{
    absent, bin, code, copy_etc, etcflip_env, read_in_root, source, spec, text, text_of, Rng,
    Scratch,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A switch into `root` (not necessarily a Scratch's own), asserting success.
fn switch_ok(root: &Path, gen: &Path) -> Output {
    let out = etcflip_env(root, &["switch", gen.to_str().expect("utf8")], &[]);
    assert_eq!(
        code(&out),
        0,
        "switch to {} failed:\n{}",
        gen.display(),
        text_of(&out)
    );
    out
}

/// The state directory of a root.
fn state_dir(root: &Path) -> PathBuf {
    root.join("etc/.etcflip")
}

/// Bytes of `applied.json`, if any.
fn applied_bytes(root: &Path) -> Option<Vec<u8>> {
    std::fs::read(state_dir(root).join("applied.json")).ok()
}

/// The overlay link text (`/etc/static`).
fn overlay_text(root: &Path) -> Option<String> {
    std::fs::read_link(root.join("etc/static"))
        .ok()
        .map(|p| p.display().to_string())
}

/// `etcflip status --json`, asserting exit 0.
fn status_json(root: &Path) -> Value {
    let out = etcflip_env(root, &["status", "--json"], &[]);
    assert_eq!(code(&out), 0, "status failed:\n{}", text_of(&out));
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

/// `etcflip verify`, asserting exit 0 (no drift).
fn assert_verify_clean(root: &Path) {
    let out = etcflip_env(root, &["verify"], &[]);
    assert_eq!(code(&out), 0, "verify reports drift:\n{}", text_of(&out));
}

/// Every path below `<root>/etc` whose name contains `.etcflip-` (scratch names, backups,
/// temp files), not descending into links.
fn reserved_names(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("etc")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let p = e.path();
            if e.file_name().to_string_lossy().contains(".etcflip-") {
                out.push(p.display().to_string());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Names in the state directory, sorted.
fn state_names(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(state_dir(root))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// No scratch names anywhere under /etc; the state directory holds only the applied
/// generation, its stamps and the lock.
fn assert_no_leftovers(root: &Path, context: &str) {
    let reserved = reserved_names(root);
    assert!(
        reserved.is_empty(),
        "{context}: leftovers with reserved names: {reserved:#?}"
    );
    let mut names = state_names(root);
    names.retain(|n| n != "stamps.json");
    assert_eq!(
        names,
        ["applied.json", "lock"],
        "{context}: the state directory holds more than the applied generation and the lock"
    );
}

/// A file's identity for "untouched": size, mtime, ctime, sha256.
fn fingerprint(p: &Path) -> String {
    let md = std::fs::symlink_metadata(p).expect("lstat");
    format!(
        "size {} mtime {}.{} ctime {}.{} sha256 {}",
        md.size(),
        md.mtime(),
        md.mtime_nsec(),
        md.ctime(),
        md.ctime_nsec(),
        sha256_bytes(&std::fs::read(p).expect("read"))
    )
}

/// The plan steps of a `switch --json` output, as (path, action).
fn json_steps(out: &Output) -> Vec<(String, String)> {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("switch --json output is not JSON ({e}):\n{}", text_of(out)));
    v["plan"]["steps"]
        .as_array()
        .expect("plan.steps")
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap_or_default().to_owned(),
                s["action"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Invariant 4: killed at any instant, the next run converges
// ---------------------------------------------------------------------------------------------

/// Link-farm entries per generation.
const FARM: usize = 220;
/// Copies per generation.
const COPIES: usize = 30;
/// Kill trials.
const TRIALS: u32 = 40;

/// Store files the three generations link to, in the shared scratch.
fn kill_store(g: &Scratch) {
    for i in 0..10 {
        g.store(
            &format!("units-a/u{i}.service"),
            &format!("[Unit]\n# a {i}\n"),
        );
        g.store(
            &format!("units-c/u{i}.service"),
            &format!("[Unit]\n# c {i}\n"),
        );
    }
    g.store("units-a/wants/u0.service", "wanted a\n");
    for i in 0..12 {
        g.store(
            &format!("units-b/u{i}.service"),
            &format!("[Unit]\n# b {i}\n"),
        );
    }
    g.store("fonts/10-a.conf", "<a/>\n");
    g.store("fonts/20-b.conf", "<b/>\n");
    g.store("fonts/README", "not matched\n");
}

/// Generation `which` (`'a'`, `'b'` or `'c'`) of the kill test: a few hundred entries with
/// changed, added and removed links, copies (0640), a direct symlink, a directory link that
/// becomes per-file links (A → B) and back (→ C), symlink ↔ copy, a directory ↔ file, and a
/// nested directory that goes away.
fn kill_spec(g: &Scratch, which: char) -> Value {
    let store = g.root.join("store");
    let mut etc = serde_json::Map::new();
    let mut put = |name: String, v: Value| {
        etc.insert(name, v);
    };
    for i in 0..FARM {
        let present = match which {
            'a' => true,
            'b' => i % 7 != 0,
            _ => i % 5 != 0,
        };
        if !present {
            continue;
        }
        let version = match which {
            'b' if i % 3 == 0 => "b",
            'c' if i % 4 == 0 => "c",
            _ => "a",
        };
        put(
            format!("farm{i}"),
            text(
                &format!("farm/d{:02}/f{i:03}.conf", i % 16),
                &format!("entry {i} {version}\n"),
            ),
        );
    }
    let added = match which {
        'a' => 0..0,
        'b' => 0..20,
        _ => 10..30,
    };
    for i in added {
        put(
            format!("added{i}"),
            text(&format!("added/{which}/n{i}.conf"), &format!("added {i}\n")),
        );
    }
    for i in 0..COPIES {
        let present = match which {
            'a' => i % 6 != 5,
            'b' => i % 5 != 0,
            _ => i % 3 != 1,
        };
        if !present {
            continue;
        }
        let version = match which {
            'b' if i % 2 == 0 => 'b',
            'c' if i % 3 == 0 => 'c',
            _ => 'a',
        };
        put(
            format!("copy{i}"),
            json!({"target": format!("copies/c{i:02}"), "text": format!("copy {i} {version}\n"), "mode": "0640"}),
        );
    }
    match which {
        'a' => {
            put(
                "units".into(),
                source("systemd/system", &store.join("units-a")),
            );
            put(
                "localtime".into(),
                json!({"source": "/usr/share/zoneinfo/UTC", "mode": "direct-symlink"}),
            );
            put("hosts".into(), text("hosts", "127.0.0.1 localhost\n"));
            put("deep1".into(), text("old/nested/deep/file1", "deep 1\n"));
            put("deep2".into(), text("old/nested/deep/file2", "deep 2\n"));
            put("ssh1".into(), text("ssh/ssh_config", "Host *\n"));
            put(
                "ssh2".into(),
                text("ssh/sshd_config", "PermitRootLogin no\n"),
            );
            put(
                "fonts".into(),
                json!({"target": "fonts/conf.d", "source": store.join("fonts/*.conf")}),
            );
        }
        'b' => {
            for i in 0..12 {
                put(
                    format!("unit{i}"),
                    source(
                        &format!("systemd/system/u{i}.service"),
                        &store.join(format!("units-b/u{i}.service")),
                    ),
                );
            }
            put(
                "wants".into(),
                source(
                    "systemd/system/multi-user.target.wants/u1.service",
                    &store.join("units-b/u1.service"),
                ),
            );
            put(
                "localtime".into(),
                json!({"source": "/usr/share/zoneinfo/Europe/Berlin", "mode": "direct-symlink"}),
            );
            put(
                "hosts".into(),
                json!({"target": "hosts", "text": "127.0.0.1 localhost b\n", "mode": "0644"}),
            );
            put("ssh".into(), text("ssh", "ssh is a file now\n"));
        }
        _ => {
            put(
                "units".into(),
                source("systemd/system", &store.join("units-c")),
            );
            put("hosts".into(), text("hosts", "127.0.0.1 localhost c\n"));
            put("other".into(), text("old/nested/other", "other\n"));
            put("ssh1".into(), text("ssh/ssh_config", "Host c\n"));
            put(
                "fonts".into(),
                json!({"target": "fonts/conf.d", "source": store.join("fonts/*.conf")}),
            );
        }
    }
    json!({ "etc": etc })
}

/// Whether any process of process group `pgid` is still alive (not a zombie).
fn group_alive(pgid: i32) -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return false;
    };
    rd.filter_map(Result::ok).any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp …; comm may contain spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().unwrap_or("Z");
        let pgrp = f.nth(1).and_then(|p| p.parse::<i32>().ok());
        state != "Z" && pgrp == Some(pgid)
    })
}

/// Starts `etcflip switch gen` in its own process group, SIGKILLs the whole group (etcflip
/// and any systemd-tmpfiles it runs) after `delay`, and waits until none of it runs.
/// Returns whether the switch had already exited by itself, and its exit code then.
fn switch_killed_after(root: &Path, gen: &Path, delay: Duration) -> Option<i32> {
    let mut child = Command::new(bin("etcflip"))
        .arg("switch")
        .arg(gen)
        .arg("--root")
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn etcflip");
    let pgid = i32::try_from(child.id()).expect("pid fits");
    std::thread::sleep(delay);
    let exited = child.try_wait().expect("try_wait").and_then(|st| st.code());
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::SIGKILL,
    );
    child.wait().expect("wait");
    let deadline = Instant::now() + Duration::from_secs(10);
    while group_alive(pgid) {
        assert!(
            Instant::now() < deadline,
            "process group {pgid} still running 10 s after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    exited
}

/// The three generations of the kill tests (outside every trial root, as the Nix store is,
/// so overlay texts agree and listings compare directly), a root with A applied, and the
/// listings of fresh applies of B and C.
struct Kill {
    _gens_scratch: Scratch,
    gens: Vec<PathBuf>,
    base: Scratch,
    want_b: String,
    want_c: String,
}

impl Kill {
    fn setup(name: &str) -> Kill {
        let g = Scratch::new(&format!("{name}-gens"));
        kill_store(&g);
        let gens: Vec<PathBuf> = ['a', 'b', 'c']
            .iter()
            .map(|w| g.gen(&w.to_string(), &kill_spec(&g, *w)))
            .collect();
        let want_b = etcflip_e2e::fresh_listing_of(&format!("{name}-fresh-b"), &gens[1]);
        let want_c = etcflip_e2e::fresh_listing_of(&format!("{name}-fresh-c"), &gens[2]);
        assert_ne!(want_b, want_c);
        // Every trial starts from a copy of this root (cheaper than a switch).
        let base = Scratch::new(&format!("{name}-base"));
        switch_ok(&base.root, &gens[0]);
        assert_verify_clean(&base.root);
        Kill {
            _gens_scratch: g,
            gens,
            base,
            want_b,
            want_c,
        }
    }
}

/// The run after a kill: exit 0, exactly a fresh apply of `target`, no leftovers, `verify`
/// clean, nothing pending, `target` recorded.
fn assert_rerun_converges(root: &Path, target: &Path, want: &str, context: &str) {
    let out = etcflip_env(root, &["switch", target.to_str().expect("utf8")], &[]);
    assert_eq!(code(&out), 0, "{context}: rerun failed:\n{}", text_of(&out));
    assert_eq!(
        etcflip_e2e::listing(&root.join("etc")),
        want,
        "{context}: differs from a fresh apply"
    );
    assert_no_leftovers(root, context);
    assert_verify_clean(root);
    let st = status_json(root);
    assert_eq!(
        st["pending"].as_array().map(Vec::len),
        Some(0),
        "{context}: {st}"
    );
    assert_eq!(
        st["generation"].as_str(),
        Some(target.display().to_string().as_str()),
        "{context}: {st}"
    );
}

/// Invariant 4: a switch A → B is killed (`SIGKILL`) at pseudo-random instants spread over its whole
/// duration; the next run (to B in half the trials, to C in the other half) exits 0 and ends
/// exactly where a fresh apply of its target ends, with no leftovers, and `verify` is clean.
#[test]
#[allow(clippy::too_many_lines)]
fn invariant_4_killed_at_any_instant_the_next_run_converges() {
    let k = Kill::setup("inv4");
    let (gb, gc) = (&k.gens[1], &k.gens[2]);
    let (base, want_b, want_c) = (&k.base, &k.want_b, &k.want_c);

    // How long an uninterrupted A → B takes here, started exactly as the trials start it
    // (debug build, machine load included).
    let mut durations = Vec::new();
    for n in 0..3 {
        let t = Scratch::new(&format!("inv4-measure-{n}"));
        copy_etc(&base.root, &t.root);
        let start = Instant::now();
        switch_ok(&t.root, gb);
        durations.push(start.elapsed());
        assert_eq!(&t.listing(), want_b);
    }
    durations.sort();
    let span = durations[1];
    eprintln!("uninterrupted A -> B took {durations:?}; kills spread over {span:?}");

    let mut rng = Rng(0x00e7_cf11_9000_0004);
    let (mut pending_seen, mut flipped_seen, mut finished_seen) = (0, 0, 0);
    for trial in 0..TRIALS {
        // Stratified: one delay in each of TRIALS equal slices of the span, jittered.
        let frac = (f64::from(trial) + rng.unit()) / f64::from(TRIALS);
        let delay = span.mul_f64(frac);
        let to_c = trial % 2 == 1;
        let (target, want) = if to_c { (gc, want_c) } else { (gb, want_b) };
        let t = Scratch::new(&format!("inv4-trial-{trial}"));
        copy_etc(&base.root, &t.root);
        let applied_a = applied_bytes(&t.root);
        let exited = switch_killed_after(&t.root, gb, delay);
        let context = format!(
            "trial {trial}: killed after {delay:?} (switch {}), rerun to {}",
            match exited {
                Some(c) => format!("had already exited with {c}"),
                None => "still running".into(),
            },
            if to_c { "C" } else { "B" }
        );
        if let Some(c) = exited {
            assert_eq!(c, 0, "{context}: the uninterrupted switch failed");
            finished_seen += 1;
        }

        // Status after the kill: exit 0, and a journal on disk is reported as pending.
        let journal = state_dir(&t.root).join("journal.json").exists();
        let st = status_json(&t.root);
        let pending = st["pending"].as_array().map_or(0, Vec::len);
        if journal {
            pending_seen += 1;
            assert!(
                pending > 0,
                "{context}: the journal exists but status reports nothing pending: {st}"
            );
        }
        if overlay_text(&t.root) == Some(format!("{}/etc", gb.display()))
            && applied_bytes(&t.root) == applied_a
        {
            flipped_seen += 1;
        }

        assert_rerun_converges(&t.root, target, want, &context);
    }
    eprintln!(
        "{TRIALS} trials: {pending_seen} killed with a journal on disk ({flipped_seen} of them \
         after the flip), {finished_seen} finished before the kill"
    );
    // The kills must actually land inside switches, or this test proves nothing.
    assert!(
        pending_seen >= 3,
        "only {pending_seen} of {TRIALS} kills landed after the journal was written"
    );
}

/// Invariant 4 at fixed points before the flip: the `systemd-tmpfiles` the switch runs (a
/// wrapper around the real one) kills etcflip (`SIGKILL`) just before or just after its
/// `--create` run; the next run, to B or to C, converges. "Before" is once the wrapper has read
/// all its input (it is started earlier, and acts only then: see applier/src/etc/runner.rs).
#[test]
fn invariant_4_killed_around_the_tmpfiles_run_the_next_run_converges() {
    let k = Kill::setup("inv4-fixed");
    let (gb, gc) = (&k.gens[1], &k.gens[2]);
    let real = etcflip_e2e::real_tmpfiles();
    for when in ["before", "after"] {
        for (target, want) in [(gb, &k.want_b), (gc, &k.want_c)] {
            let context = format!(
                "killed {when} the create run of A -> B, rerun to {}",
                target.display()
            );
            let t = Scratch::new(&format!("inv4-fixed-{when}"));
            copy_etc(&k.base.root, &t.root);
            let killer = t.script(
                "bin/killing-tmpfiles",
                &format!(
                    "if [ {when} = after ]; then '{real}' \"$@\"; else cat >/dev/null; fi\n\
                     kill -9 $PPID\nexit 1",
                    real = real.display()
                ),
            );
            let out = etcflip_env(
                &t.root,
                &["switch", gb.to_str().unwrap()],
                &[("ETCFLIP_TMPFILES", killer.as_os_str())],
            );
            assert_eq!(
                out.status.code(),
                None,
                "{context}: etcflip was not killed:\n{}",
                text_of(&out)
            );
            let flipped = overlay_text(&t.root) == Some(format!("{}/etc", gb.display()));
            assert!(!flipped, "{context}: flipped before its links were made");
            let st = status_json(&t.root);
            assert_eq!(
                st["pending"].as_array().map(Vec::len),
                Some(1),
                "{context}: the interrupted switch is reported: {st}"
            );
            assert_rerun_converges(&t.root, target, want, &context);
        }
    }
}

/// Invariant 4 at every removal: the switch A → B is killed (`SIGKILL`, by strace's fault
/// injection on etcflip alone) at each `unlinkat` it makes after the flip, while it removes
/// what is stale, from the last one back to the last one before the flip. Each next run,
/// alternately to B and to C, converges.
#[test]
fn invariant_4_killed_at_every_removal_the_next_run_converges() {
    let k = Kill::setup("inv4-unlink");
    let gb = &k.gens[1];
    let traced = |root: &Path, inject: Option<u32>, log: &Path| {
        let mut args = vec![
            "-qq".into(),
            "-e".into(),
            "trace=unlinkat".into(),
            "-o".into(),
        ];
        args.push(log.as_os_str().to_owned());
        if let Some(n) = inject {
            args.push("-e".into());
            args.push(format!("inject=unlinkat:signal=KILL:when={n}").into());
        }
        etcflip_e2e::switch_under_strace::<std::ffi::OsString>(args, root, gb, &[])
            .output()
            .expect("strace (apt-get install strace)")
    };
    // How many unlinkat calls a whole switch makes.
    let count = Scratch::new("inv4-unlink-count");
    copy_etc(&k.base.root, &count.root);
    let log = count.dir.join("unlinkat.log");
    assert!(traced(&count.root, None, &log).status.success());
    let log = std::fs::read_to_string(&log).unwrap();
    let calls = log.lines().filter(|l| l.starts_with("unlinkat(")).count();
    let calls = u32::try_from(calls).unwrap();
    let mut after_flip = 0;
    for n in (1..=calls).rev() {
        let (target, want) = if n % 2 == 0 {
            (gb, &k.want_b)
        } else {
            (&k.gens[2], &k.want_c)
        };
        let t = Scratch::new(&format!("inv4-unlink-{n}"));
        copy_etc(&k.base.root, &t.root);
        let out = traced(&t.root, Some(n), &t.dir.join("unlinkat.log"));
        assert!(!out.status.success(), "kill point {n} of {calls} missed");
        let flipped = overlay_text(&t.root) == Some(format!("{}/etc", gb.display()));
        let context = format!(
            "killed at unlinkat {n} of {calls} of A -> B, rerun to {}",
            target.display()
        );
        assert_rerun_converges(&t.root, target, want, &context);
        if !flipped {
            break;
        }
        after_flip += 1;
    }
    assert!(
        after_flip >= 5,
        "only {after_flip} removals after the flip were kill points"
    );
}

// ---------------------------------------------------------------------------------------------
// Invariant 2: never remove or overwrite what is not ours
// ---------------------------------------------------------------------------------------------

/// Generation "base": a few entries of each kind.
fn base_spec() -> Value {
    spec(&[
        ("hosts", text("hosts", "127.0.0.1 localhost\n")),
        (
            "sudoers",
            json!({"text": "root ALL=(ALL) ALL\n", "mode": "0440"}),
        ),
        ("issue", text("issue", "welcome\n")),
    ])
}

/// `base` plus `extra`.
fn base_plus(extra: &[(&str, Value)]) -> Value {
    let mut v = base_spec();
    for (k, e) in extra {
        v["etc"][*k] = e.clone();
    }
    v
}

/// Invariant 2a: a foreign regular file where the new generation wants a path refuses the
/// switch (exit 3) naming the path; nothing changes.
#[test]
fn invariant_2_foreign_file_is_a_conflict_and_nothing_changes() {
    let s = Scratch::new("inv2-foreign-file");
    let g0 = s.gen("base", &base_spec());
    let g1 = s.gen("motd", &base_plus(&[("motd", text("motd", "ours\n"))]));
    s.switch(&g0, &[]);
    std::fs::write(s.etc("motd"), "the admin's own motd\n").unwrap();
    let before = etcflip_e2e::stamps(&s.root.join("etc"));
    let listing = s.listing();
    let out = s.switch_out(&g1, &[]);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    assert!(
        text_of(&out).contains("/etc/motd"),
        "the refusal names the path:\n{}",
        text_of(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("already up to date") && !stdout.contains("switched"),
        "a refused switch does not report success:\n{}",
        text_of(&out)
    );
    assert_eq!(s.listing(), listing);
    assert_eq!(
        etcflip_e2e::stamps(&s.root.join("etc")),
        before,
        "something was touched"
    );
    assert_eq!(
        std::fs::read_to_string(s.etc("motd")).unwrap(),
        "the admin's own motd\n"
    );
}

/// Invariant 2b: a copy the user edited is no longer ours: a generation that changes it is
/// refused, and a generation that drops it leaves it alone (`leave`).
#[test]
fn invariant_2_edited_copy_is_not_ours() {
    let s = Scratch::new("inv2-edited-copy");
    let g0 = s.gen("base", &base_spec());
    let changed = base_plus(&[(
        "sudoers",
        json!({"text": "root ALL=(ALL) ALL\n%wheel ALL=(ALL) ALL\n", "mode": "0440"}),
    )]);
    let g1 = s.gen("changed", &changed);
    let mut dropped = base_spec();
    dropped["etc"].as_object_mut().unwrap().remove("sudoers");
    let g2 = s.gen("dropped", &dropped);
    s.switch(&g0, &[]);
    assert!(s.etc("sudoers").symlink_metadata().unwrap().is_file());
    std::fs::write(s.etc("sudoers"), "root ALL=(ALL) NOPASSWD: ALL\n").unwrap();
    let edited = fingerprint(&s.etc("sudoers"));

    let before = etcflip_e2e::stamps(&s.root.join("etc"));
    let out = s.switch_out(&g1, &[]);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    assert!(text_of(&out).contains("/etc/sudoers"), "{}", text_of(&out));
    assert_eq!(
        etcflip_e2e::stamps(&s.root.join("etc")),
        before,
        "a refused switch changed something"
    );

    let out = s.switch_out(&g2, &["--json"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let steps = json_steps(&out);
    assert!(
        steps.contains(&("/etc/sudoers".into(), "leave".into())),
        "the edited copy is left alone: {steps:?}"
    );
    assert_eq!(
        fingerprint(&s.etc("sudoers")),
        edited,
        "the edited copy was touched"
    );
    assert_eq!(
        std::fs::read_to_string(s.etc("sudoers")).unwrap(),
        "root ALL=(ALL) NOPASSWD: ALL\n"
    );
    assert_verify_clean(&s.root);
}

/// Invariant 2c, refused: links planted to the host's `/usr` (a file, and a directory where
/// the generation wants `ssh/sshd_config`) are never followed: the host's bash is untouched
/// and nothing appears in the host's `/usr`.
#[test]
fn invariant_2_planted_links_to_host_usr_are_never_followed() {
    let bash = Path::new("/usr/bin/bash");
    assert!(bash.is_file(), "this test needs /usr/bin/bash");
    let usr_names = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir("/usr")
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert!(!Path::new("/usr/sshd_config").exists());
    let bash_before = fingerprint(bash);
    let usr_before = usr_names();

    let s = Scratch::new("inv2-host-usr");
    let g0 = s.gen("base", &base_spec());
    // foo as a copy (writing through the link would overwrite bash), ssh as a directory.
    let g1 = s.gen(
        "planted",
        &base_plus(&[
            ("foo", json!({"text": "not bash\n", "mode": "0755"})),
            ("ssh", text("ssh/sshd_config", "PermitRootLogin no\n")),
        ]),
    );
    s.switch(&g0, &[]);
    std::os::unix::fs::symlink(bash, s.etc("foo")).unwrap();
    std::os::unix::fs::symlink("/usr", s.etc("ssh")).unwrap();
    let before = etcflip_e2e::stamps(&s.root.join("etc"));
    for extra in [&[][..], &["--dry-run"][..], &["--dry-run", "--json"][..]] {
        // A dry run reports the refusal with the same exit code.
        let out = s.switch_out(&g1, extra);
        assert_eq!(code(&out), 3, "{extra:?}: {}", text_of(&out));
        assert_eq!(
            etcflip_e2e::stamps(&s.root.join("etc")),
            before,
            "{extra:?} changed /etc"
        );
    }
    let out = s.switch_out(&g1, &[]);
    let msg = text_of(&out);
    assert!(
        msg.contains("/etc/foo") && msg.contains("/etc/ssh"),
        "{msg}"
    );
    assert_eq!(fingerprint(bash), bash_before, "the host's bash changed");
    assert_eq!(
        usr_names(),
        usr_before,
        "something appeared in the host's /usr"
    );
    assert!(!Path::new("/usr/sshd_config").exists());
}

/// A stand-in for the host's `/usr`, outside the root: `bin/bash` and `share/doc`.
fn usr_standin(s: &Scratch) -> PathBuf {
    let usr = s.dir.join("host-usr");
    s.file("host-usr/bin/bash", "#!/not/really/bash\n");
    s.file("host-usr/share/doc/README", "docs\n");
    usr
}

/// Invariant 2c, replaced: with `--on-conflict overwrite` or `backup`, planted links (to a
/// stand-in for the host's `/usr`) are replaced or moved aside as links; what they point to
/// is never written, followed or removed.
#[test]
fn invariant_2_planted_links_are_replaced_not_written_through() {
    let planted = base_plus(&[
        ("foo", json!({"text": "not bash\n", "mode": "0755"})),
        ("bar", text("bar", "a link entry\n")),
        ("ssh", text("ssh/sshd_config", "PermitRootLogin no\n")),
    ]);
    let want = etcflip_e2e::fresh_listing("planted", &planted);
    for policy in ["overwrite", "backup"] {
        let s = Scratch::new(&format!("inv2-standin-{policy}"));
        let usr = usr_standin(&s);
        let g0 = s.gen("base", &base_spec());
        let g1 = s.gen("planted", &planted);
        s.switch(&g0, &[]);
        let usr_before = etcflip_e2e::stamps(&usr);
        std::os::unix::fs::symlink(usr.join("bin/bash"), s.etc("foo")).unwrap();
        std::os::unix::fs::symlink(usr.join("bin/bash"), s.etc("bar")).unwrap();
        std::os::unix::fs::symlink(&usr, s.etc("ssh")).unwrap();
        s.switch(&g1, &["--on-conflict", policy]);
        assert_eq!(
            etcflip_e2e::stamps(&usr),
            usr_before,
            "{policy}: the link targets changed"
        );
        assert_eq!(
            std::fs::read_to_string(s.etc("foo")).unwrap(),
            "not bash\n",
            "{policy}"
        );
        assert!(
            s.etc("ssh").symlink_metadata().unwrap().is_dir(),
            "{policy}"
        );
        if policy == "overwrite" {
            assert_eq!(s.listing(), want, "{policy}");
        } else {
            for (name, to) in [
                ("foo", usr.join("bin/bash")),
                ("bar", usr.join("bin/bash")),
                ("ssh", usr.clone()),
            ] {
                let backup = s.etc(&format!("{name}.etcflip-backup"));
                assert_eq!(
                    std::fs::read_link(&backup).ok(),
                    Some(to),
                    "{policy}: the planted {name} link is kept as a link"
                );
            }
        }
        assert_verify_clean(&s.root);
    }
}

/// Invariant 2, removals: stale paths that are no longer what we made are left alone — a
/// foreign file inside a managed directory (the directory stays), a link or copy the admin
/// replaced, and a managed directory replaced by a link to a stand-in for the host's `/usr`
/// (nothing below it is removed through the link).
#[test]
fn invariant_2_stale_paths_not_ours_are_left() {
    let s = Scratch::new("inv2-stale");
    let usr = usr_standin(&s);
    s.file("host-usr/ssh_config", "the host's own\n");
    let g0 = s.gen(
        "old",
        &base_plus(&[
            ("nested", text("old/nested/file", "ours\n")),
            ("motd", text("motd", "ours\n")),
            ("ssh", text("ssh/ssh_config", "Host *\n")),
            ("tz", json!({"target": "localtime", "source": "/usr/share/zoneinfo/UTC", "mode": "direct-symlink"})),
            ("gone", text("gone/file", "ours and going\n")),
        ]),
    );
    let g1 = s.gen("base", &base_spec());
    s.switch(&g0, &[]);
    std::fs::write(s.etc("old/nested/admin.conf"), "admin's\n").unwrap();
    std::fs::remove_file(s.etc("motd")).unwrap();
    std::fs::write(s.etc("motd"), "admin's motd\n").unwrap();
    std::fs::remove_file(s.etc("ssh/ssh_config")).unwrap();
    std::fs::remove_dir(s.etc("ssh")).unwrap();
    std::os::unix::fs::symlink(&usr, s.etc("ssh")).unwrap();
    std::fs::remove_file(s.etc("localtime")).unwrap();
    std::os::unix::fs::symlink("/usr/share/zoneinfo/Europe/Paris", s.etc("localtime")).unwrap();
    let usr_before = etcflip_e2e::stamps(&usr);

    let out = s.switch_out(&g1, &["--json"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let steps = json_steps(&out);
    for p in ["/etc/motd", "/etc/ssh", "/etc/localtime", "/etc/old/nested"] {
        assert!(
            steps.contains(&(p.into(), "leave".into())),
            "{p} is left: {steps:?}"
        );
    }
    assert_eq!(
        etcflip_e2e::stamps(&usr),
        usr_before,
        "something below the planted link changed"
    );
    assert_eq!(
        std::fs::read_to_string(s.etc("old/nested/admin.conf")).unwrap(),
        "admin's\n"
    );
    assert!(absent(&s.etc("old/nested/file")), "our stale link stays");
    assert!(absent(&s.etc("gone")), "our stale directory stays");
    assert_eq!(
        std::fs::read_to_string(s.etc("motd")).unwrap(),
        "admin's motd\n"
    );
    assert_eq!(std::fs::read_link(s.etc("ssh")).ok(), Some(usr.clone()));
    assert_eq!(
        std::fs::read_link(s.etc("localtime")).ok(),
        Some(PathBuf::from("/usr/share/zoneinfo/Europe/Paris"))
    );
    assert_verify_clean(&s.root);
}

/// Invariant 2, replacing a managed directory: a directory we made that now holds the
/// admin's files is not ours to replace (by a file, or by a directory link): refused by
/// default; with `backup` it is moved aside whole, the admin's files inside.
#[test]
fn invariant_2_managed_directory_holding_foreign_files_is_not_replaced() {
    let s = Scratch::new("inv2-managed-dir");
    let units = s.store("units/a.service", "[Service]\n");
    let g0 = s.gen(
        "dirs",
        &base_plus(&[
            ("ssh", text("ssh/ssh_config", "Host *\n")),
            (
                "units",
                text("systemd/system/a.service", "[Service]\nold\n"),
            ),
        ]),
    );
    let g1 = s.gen(
        "flat",
        &base_plus(&[
            ("ssh", text("ssh", "ssh is a file now\n")),
            ("units", source("systemd/system", units.parent().unwrap())),
        ]),
    );
    s.switch(&g0, &[]);
    std::fs::write(s.etc("ssh/my_key"), "admin's key\n").unwrap();
    std::fs::write(s.etc("systemd/system/local.service"), "admin's unit\n").unwrap();
    let before = etcflip_e2e::stamps(&s.root.join("etc"));
    let out = s.switch_out(&g1, &[]);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    let msg = text_of(&out);
    assert!(msg.contains("/etc/ssh/my_key"), "{msg}");
    assert!(msg.contains("/etc/systemd/system/local.service"), "{msg}");
    assert_eq!(
        etcflip_e2e::stamps(&s.root.join("etc")),
        before,
        "a refused switch changed /etc"
    );

    s.switch(&g1, &["--on-conflict", "backup"]);
    assert_eq!(
        std::fs::read_to_string(s.etc("ssh.etcflip-backup/my_key")).unwrap(),
        "admin's key\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.etc("systemd/system.etcflip-backup/local.service")).unwrap(),
        "admin's unit\n"
    );
    assert_eq!(
        read_in_root(&s.root, "/etc/ssh").as_deref(),
        Some(&b"ssh is a file now\n"[..])
    );
    assert_eq!(
        read_in_root(&s.root, "/etc/systemd/system/a.service").as_deref(),
        Some(&b"[Service]\n"[..])
    );
    assert_verify_clean(&s.root);
}

/// Invariant 2d: a foreign file with exactly the content we would install is adopted, not a
/// conflict (a link entry and a copy entry).
#[test]
fn invariant_2_identical_foreign_content_is_adopted() {
    let s = Scratch::new("inv2-identical");
    let g0 = s.gen("base", &base_spec());
    let wanted = base_plus(&[
        ("motd", text("motd", "hello\n")),
        ("secret", json!({"text": "s3cret\n", "mode": "0600"})),
    ]);
    let g1 = s.gen("adopt", &wanted);
    s.switch(&g0, &[]);
    std::fs::write(s.etc("motd"), "hello\n").unwrap();
    std::fs::write(s.etc("secret"), "s3cret\n").unwrap();
    let out = s.switch_out(&g1, &["--json"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let steps = json_steps(&out);
    assert!(
        steps.contains(&("/etc/motd".into(), "adopt".into())),
        "/etc/motd is adopted: {steps:?}"
    );
    // A copy with the right content is ours already; only its mode (0644 → 0600) is fixed.
    assert!(
        steps.contains(&("/etc/secret".into(), "stage".into()))
            || steps.contains(&("/etc/secret".into(), "adopt".into())),
        "/etc/secret is taken over: {steps:?}"
    );
    assert_eq!(s.listing(), etcflip_e2e::fresh_listing("adopt", &wanted));
    assert_no_leftovers(&s.root, "adopt");
    assert_verify_clean(&s.root);
}

/// Invariant 2e: `--on-conflict backup` moves a foreign file to `<path>.etcflip-backup`; a
/// second backup of the same path goes to `.etcflip-backup.1`, never over the first.
#[test]
fn invariant_2_backup_never_overwrites_an_earlier_backup() {
    let s = Scratch::new("inv2-backup");
    let g0 = s.gen("base", &base_spec());
    let g1 = s.gen("motd1", &base_plus(&[("motd", text("motd", "ours 1\n"))]));
    let g2 = s.gen(
        "motd2",
        &base_plus(&[("motd", json!({"text": "ours 2\n", "mode": "0644"}))]),
    );
    s.switch(&g0, &[]);
    std::fs::write(s.etc("motd"), "admin 1\n").unwrap();
    s.switch(&g1, &["--on-conflict", "backup"]);
    assert_eq!(
        std::fs::read_to_string(s.etc("motd.etcflip-backup")).unwrap(),
        "admin 1\n"
    );
    assert_eq!(
        read_in_root(&s.root, "/etc/motd").as_deref(),
        Some(&b"ours 1\n"[..])
    );
    // The admin replaces our link again; the next switch backs it up beside the first.
    std::fs::remove_file(s.etc("motd")).unwrap();
    std::fs::write(s.etc("motd"), "admin 2\n").unwrap();
    let out = s.switch_out(&g2, &[]);
    assert_eq!(code(&out), 3, "default is abort: {}", text_of(&out));
    s.switch(&g2, &["--on-conflict", "backup"]);
    assert_eq!(
        std::fs::read_to_string(s.etc("motd.etcflip-backup")).unwrap(),
        "admin 1\n",
        "the first backup was overwritten"
    );
    assert_eq!(
        std::fs::read_to_string(s.etc("motd.etcflip-backup.1")).unwrap(),
        "admin 2\n"
    );
    assert_eq!(std::fs::read_to_string(s.etc("motd")).unwrap(), "ours 2\n");
    assert!(absent(&s.etc("motd.etcflip-backup.2")));
    assert_verify_clean(&s.root);
}

/// Invariant 2e, later: a backup inside a directory etcflip manages is the admin's, like any
/// foreign file there: replacing that directory is refused, and with `backup` it moves aside
/// whole, the earlier backup inside.
#[test]
fn invariant_2_a_backup_inside_a_managed_directory_is_kept() {
    let s = Scratch::new("inv2-backup-inside");
    let g0 = s.gen("base", &base_spec());
    let g1 = s.gen("dir", &base_plus(&[("x", text("d/x", "ours\n"))]));
    let g2 = s.gen(
        "file",
        &base_plus(&[("d", json!({"text": "d is a file\n", "mode": "0644"}))]),
    );
    s.switch(&g0, &[]);
    std::fs::create_dir_all(s.etc("d")).unwrap();
    std::fs::write(s.etc("d/x"), "admin\n").unwrap();
    s.switch(&g1, &["--on-conflict", "backup"]);
    assert_eq!(
        std::fs::read_to_string(s.etc("d/x.etcflip-backup")).unwrap(),
        "admin\n"
    );
    let out = s.switch_out(&g2, &[]);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    assert!(
        text_of(&out).contains("/etc/d/x.etcflip-backup"),
        "{}",
        text_of(&out)
    );
    s.switch(&g2, &["--on-conflict", "backup"]);
    assert_eq!(
        std::fs::read_to_string(s.etc("d.etcflip-backup/x.etcflip-backup")).unwrap(),
        "admin\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.etc("d")).unwrap(),
        "d is a file\n"
    );
    assert_verify_clean(&s.root);
}

/// Invariant 2f: `--on-conflict overwrite` replaces a foreign file (no backup is left).
#[test]
fn invariant_2_overwrite_replaces_foreign_file() {
    let s = Scratch::new("inv2-overwrite");
    let g0 = s.gen("base", &base_spec());
    let wanted = base_plus(&[
        ("motd", text("motd", "ours\n")),
        ("secret", json!({"text": "s3cret\n", "mode": "0600"})),
    ]);
    let g1 = s.gen("over", &wanted);
    s.switch(&g0, &[]);
    std::fs::write(s.etc("motd"), "admin\n").unwrap();
    std::fs::write(s.etc("secret"), "admin secret\n").unwrap();
    let out = s.switch(&g1, &["--on-conflict", "overwrite"]);
    assert_eq!(
        read_in_root(&s.root, "/etc/motd").as_deref(),
        Some(&b"ours\n"[..]),
        "{out}"
    );
    assert_eq!(s.listing(), etcflip_e2e::fresh_listing("over", &wanted));
    assert_no_leftovers(&s.root, "overwrite");
    assert_verify_clean(&s.root);
}

/// Invariant 2g: a foreign directory where the generation wants a link (a file link, and a
/// directory link) is a conflict; nothing inside it is touched. With `backup` it is moved
/// aside whole.
#[test]
fn invariant_2_foreign_directory_where_a_link_is_wanted_is_a_conflict() {
    let s = Scratch::new("inv2-foreign-dir");
    let units = s.store("units/a.service", "[Service]\n");
    let g0 = s.gen("base", &base_spec());
    let g1 = s.gen(
        "links",
        &base_plus(&[
            ("foo", text("foo", "a file link\n")),
            ("units", source("systemd/system", units.parent().unwrap())),
        ]),
    );
    s.switch(&g0, &[]);
    s.file("root/etc/foo/mine.conf", "admin's\n");
    s.file(
        "root/etc/systemd/system/local.service",
        "[Service]\nlocal\n",
    );
    let before = etcflip_e2e::stamps(&s.root.join("etc"));
    let out = s.switch_out(&g1, &[]);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    let msg = text_of(&out);
    assert!(
        msg.contains("/etc/foo") && msg.contains("/etc/systemd/system"),
        "{msg}"
    );
    assert_eq!(etcflip_e2e::stamps(&s.root.join("etc")), before);

    s.switch(&g1, &["--on-conflict", "backup"]);
    assert_eq!(
        std::fs::read_to_string(s.etc("foo.etcflip-backup/mine.conf")).unwrap(),
        "admin's\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.etc("systemd/system.etcflip-backup/local.service")).unwrap(),
        "[Service]\nlocal\n"
    );
    assert_eq!(
        read_in_root(&s.root, "/etc/systemd/system/a.service").as_deref(),
        Some(&b"[Service]\n"[..])
    );
    assert_verify_clean(&s.root);
}

// ---------------------------------------------------------------------------------------------
// Invariant 3: never advance recorded state after a refused or failed switch
// ---------------------------------------------------------------------------------------------

/// The overlay text, `applied.json` bytes, and what readers see at a few paths.
type Visible = (Option<String>, Option<Vec<u8>>, Vec<Option<Vec<u8>>>);

/// What readers see of `base` plus the overlay and recorded state.
fn visible_state(s: &Scratch) -> Visible {
    let files = ["hosts", "sudoers", "issue"]
        .iter()
        .map(|f| read_in_root(&s.root, &format!("/etc/{f}")))
        .collect();
    (overlay_text(&s.root), applied_bytes(&s.root), files)
}

/// Invariant 3, refused: after a conflict, `status` shows the previous generation and
/// `applied.json` is byte-identical.
#[test]
fn invariant_3_refused_switch_keeps_recorded_state() {
    let s = Scratch::new("inv3-refused");
    let g0 = s.gen("base", &base_spec());
    let g1 = s.gen("motd", &base_plus(&[("motd", text("motd", "ours\n"))]));
    s.switch(&g0, &[]);
    std::fs::write(s.etc("motd"), "admin\n").unwrap();
    let before = visible_state(&s);
    let out = s.switch_out(&g1, &[]);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    assert_eq!(visible_state(&s), before);
    let st = status_json(&s.root);
    assert_eq!(st["generation"].as_str(), Some("/gens/base"), "{st}");
    assert_eq!(st["pending"], json!([]), "{st}");
    assert_verify_clean(&s.root);
}

/// Invariant 3, failed before the flip: a `systemd-tmpfiles` that creates nothing makes the
/// read-back fail (exit 1); the overlay, `applied.json` and what readers see are unchanged,
/// and a rerun with the real tmpfiles finishes the switch.
#[test]
fn invariant_3_failed_switch_keeps_recorded_state() {
    let s = Scratch::new("inv3-failed");
    let g0 = s.gen("base", &base_spec());
    let wanted = spec(&[
        ("hosts", text("hosts", "127.0.0.1 localhost new\n")),
        (
            "sudoers",
            json!({"text": "root ALL=(ALL) ALL\n# new\n", "mode": "0440"}),
        ),
        ("motd", text("motd", "new link\n")),
        ("nested", text("a/b/c", "new nested link\n")),
    ]);
    let g1 = s.gen("next", &wanted);
    s.switch(&g0, &[]);
    let before = visible_state(&s);
    let broken = s.script("bin/broken-tmpfiles", "exit 1");
    let out = etcflip_env(
        &s.root,
        &["switch", g1.to_str().unwrap()],
        &[("ETCFLIP_TMPFILES", broken.as_os_str())],
    );
    assert_eq!(code(&out), 1, "{}", text_of(&out));
    assert!(text_of(&out).contains("read-back"), "{}", text_of(&out));
    assert_eq!(
        visible_state(&s),
        before,
        "a failed switch changed what readers see"
    );
    let st = status_json(&s.root);
    assert_eq!(st["generation"].as_str(), Some("/gens/base"), "{st}");

    s.switch(&g1, &[]);
    assert_eq!(s.listing(), etcflip_e2e::fresh_listing("next", &wanted));
    assert_no_leftovers(&s.root, "after the rerun");
    assert_verify_clean(&s.root);
}

/// Invariant 3, invalid generation: a tampered payload is refused (exit 2) before anything is
/// written: overlay, `applied.json`, journal and /etc are unchanged.
#[test]
fn invariant_3_tampered_generation_keeps_recorded_state() {
    let s = Scratch::new("inv3-tampered");
    let g0 = s.gen("base", &base_spec());
    let g1 = s.gen(
        "tampered",
        &base_plus(&[(
            "sudoers",
            json!({"text": "root ALL=(ALL) ALL\n# 2\n", "mode": "0440"}),
        )]),
    );
    std::fs::write(g1.join("etc/sudoers"), "ALL ALL=(ALL) NOPASSWD: ALL\n").unwrap();
    s.switch(&g0, &[]);
    let before = etcflip_e2e::stamps(&s.root.join("etc"));
    let out = s.switch_out(&g1, &[]);
    assert_eq!(code(&out), 2, "{}", text_of(&out));
    assert!(text_of(&out).contains("sudoers"), "{}", text_of(&out));
    assert_eq!(
        etcflip_e2e::stamps(&s.root.join("etc")),
        before,
        "an invalid generation changed /etc"
    );
    let st = status_json(&s.root);
    assert_eq!(st["generation"].as_str(), Some("/gens/base"), "{st}");
    assert_eq!(st["pending"], json!([]), "{st}");
}

// ---------------------------------------------------------------------------------------------
// Invariant 5: same spec → same bytes; same generation twice → no change
// ---------------------------------------------------------------------------------------------

/// A spec with every kind of entry, sources in the scratch store.
fn rich_spec(s: &Scratch) -> Value {
    let units = s.store("units/a.service", "[Service]\n");
    s.store("units/wants/b.service", "[Service]\nb\n");
    let fonts = s.store("fonts/10-a.conf", "<a/>\n");
    s.store("fonts/20-b.conf", "<b/>\n");
    let profile = s.store("profile", "export PATH\n");
    spec(&[
        ("units", source("systemd/system", units.parent().unwrap())),
        (
            "fonts",
            json!({"target": "fonts/conf.d", "source": fonts.parent().unwrap().join("*.conf")}),
        ),
        ("profile", source("profile", &profile)),
        ("hosts", text("hosts", "127.0.0.1 localhost\n")),
        (
            "sudoers",
            json!({"text": "root ALL=(ALL) ALL\n", "mode": "0440"}),
        ),
        (
            "shadowish",
            json!({"text": "x\n", "mode": "0600", "uid": 0, "gid": 0}),
        ),
        (
            "localtime",
            json!({"source": "/usr/share/zoneinfo/UTC", "mode": "direct-symlink"}),
        ),
        ("deep", text("a/b/c/d.conf", "deep\n")),
        ("spaces", text("with space/and \"quote\"", "odd name\n")),
    ])
}

/// Invariant 5: the same spec built twice gives byte-identical generation trees (manifest,
/// snippet, payload files and link texts, modes).
#[test]
fn invariant_5_same_spec_gives_same_bytes() {
    let s = Scratch::new("inv5-bytes");
    let sp = rich_spec(&s);
    let g1 = s.gen("one", &sp);
    let g2 = s.gen("two", &sp);
    let tree = |top: &Path| -> BTreeMap<String, String> {
        etcflip_e2e::stamps(top)
            .into_iter()
            .map(|(k, v)| {
                // Keep what the bytes are: content/link text and mode; drop inode and times.
                let keep: Vec<&str> = v.split(" ino ").take(1).collect();
                (k, keep.concat())
            })
            .collect()
    };
    let (t1, t2) = (tree(&g1), tree(&g2));
    assert!(t1.contains_key("manifest.json") && t1.contains_key("tmpfiles.d/etcflip.conf"));
    assert!(t1.len() > 10, "{t1:#?}");
    assert_eq!(t1, t2);
    for f in ["manifest.json", "tmpfiles.d/etcflip.conf"] {
        assert_eq!(
            std::fs::read(g1.join(f)).unwrap(),
            std::fs::read(g2.join(f)).unwrap(),
            "{f}"
        );
    }
}

/// Invariant 5: a second switch to the same generation says "already up to date", changes
/// nothing under /etc (state files included: times, inodes, modes) and does not run
/// systemd-tmpfiles at all.
#[test]
fn invariant_5_same_generation_twice_changes_nothing() {
    let s = Scratch::new("inv5-noop");
    let g = s.gen("rich", &rich_spec(&s));
    let marker = s.dir.join("tmpfiles-ran");
    let real = etcflip_e2e::real_tmpfiles();
    let spy = s.script(
        "bin/spy-tmpfiles",
        &format!(
            "touch '{}'\nexec '{}' \"$@\"",
            marker.display(),
            real.display()
        ),
    );
    let env = [("ETCFLIP_TMPFILES", spy.as_os_str())];
    let out = etcflip_env(&s.root, &["switch", g.to_str().unwrap()], &env);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert!(
        marker.exists(),
        "the spy did not see the first switch run tmpfiles"
    );
    std::fs::remove_file(&marker).unwrap();

    let before = etcflip_e2e::stamps(&s.root.join("etc"));
    assert!(before.contains_key(".etcflip/applied.json"));
    let out = etcflip_env(&s.root, &["switch", g.to_str().unwrap()], &env);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already up to date"),
        "{}",
        text_of(&out)
    );
    assert_eq!(
        etcflip_e2e::stamps(&s.root.join("etc")),
        before,
        "a no-op switch changed /etc"
    );
    assert!(!marker.exists(), "a no-op switch started systemd-tmpfiles");
}

// ---------------------------------------------------------------------------------------------
// systemd-tmpfiles missing
// ---------------------------------------------------------------------------------------------

/// A `systemd-tmpfiles` that cannot be run is a clear error (exit 1) naming it; nothing
/// visible changes and the recorded state stays.
#[test]
fn tmpfiles_missing_is_a_clear_error() {
    let s = Scratch::new("tmpfiles-missing");
    let g0 = s.gen("base", &base_spec());
    let g1 = s.gen("motd", &base_plus(&[("motd", text("motd", "new link\n"))]));
    s.switch(&g0, &[]);
    let before = visible_state(&s);
    let missing = OsStr::new("/nonexistent/systemd-tmpfiles");
    let out = etcflip_env(
        &s.root,
        &["switch", g1.to_str().unwrap()],
        &[("ETCFLIP_TMPFILES", missing)],
    );
    assert_eq!(code(&out), 1, "{}", text_of(&out));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("/nonexistent/systemd-tmpfiles") && !msg.contains("panicked"),
        "the error names the missing binary: {msg}"
    );
    assert_eq!(visible_state(&s), before);
    s.switch(&g1, &[]);
    assert_no_leftovers(&s.root, "after the rerun");
}

/// A missing `systemd-tmpfiles` is found out before the flip even when the plan needs it only
/// for removals: otherwise the switch fails half-way (overlay flipped, copies replaced, stale
/// links left, state not committed) for a reason that was knowable in phase 0.
#[test]
fn tmpfiles_missing_is_found_before_the_flip() {
    let s = Scratch::new("tmpfiles-missing-remove");
    let g0 = s.gen("base", &base_plus(&[("old", text("old", "going away\n"))]));
    // Only a changed copy and a removal: no create line for tmpfiles.
    let g1 = s.gen(
        "next",
        &base_plus(&[(
            "sudoers",
            json!({"text": "root ALL=(ALL) ALL\n# 2\n", "mode": "0440"}),
        )]),
    );
    s.switch(&g0, &[]);
    let before = etcflip_e2e::stamps(&s.root.join("etc"));
    let out = etcflip_env(
        &s.root,
        &["switch", g1.to_str().unwrap()],
        &[(
            "ETCFLIP_TMPFILES",
            OsStr::new("/nonexistent/systemd-tmpfiles"),
        )],
    );
    assert_eq!(code(&out), 1, "{}", text_of(&out));
    assert!(
        text_of(&out).contains("/nonexistent/systemd-tmpfiles"),
        "{}",
        text_of(&out)
    );
    let after = etcflip_e2e::stamps(&s.root.join("etc"));
    let changed: Vec<&String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v) && !k.starts_with(".etcflip"))
        .map(|(k, _)| k)
        .collect();
    assert!(
        changed.is_empty(),
        "the switch failed after changing /etc: {changed:?} (overlay now {:?})",
        overlay_text(&s.root)
    );
}
