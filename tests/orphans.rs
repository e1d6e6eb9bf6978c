//! Invariant 8: no process of a switch outlives it, and a rerun never races a leftover child.
//!
//! `etcflip` alone (not its process group: what the OOM killer or a `kill -9 <pid>` does) is
//! killed (`SIGKILL`) at pseudo-random instants of a switch between two generations, and the
//! next switch is started at once. Before the fix, the `systemd-tmpfiles` child lived on and
//! raced the rerun (`cannot remove …/.etcflip-swap-…: ENOTEMPTY`, or links appearing after the
//! rerun's read-back).

// A test crate: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use etcflip_e2e::{absent, bin, code, copy_etc, listing, source, text, text_of, Rng, Scratch};
use serde_json::json;

/// Kill trials (the issue asks for at least 200).
const TRIALS: u32 = 200;

fn etcflip(root: &Path, args: &[&str]) -> Output {
    etcflip_e2e::etcflip_env(root, args, &[])
}

fn switch(root: &Path, gen: &Path) -> Output {
    etcflip(root, &["switch", gen.to_str().expect("utf8")])
}

/// Links the switch to B builds inside a directory that replaces A's directory link: all of
/// them through one `systemd-tmpfiles --create` run, long enough (≈ 50 ms here) that a rerun
/// started at once, even from a debug build, meets an orphan still at work.
const BUILT: usize = 1000;

/// Generation `which` (`'a'` or `'b'`) into `<root>/gens/<which>` of its own scratch (outside
/// every trial root, as the Nix store is, so listings compare directly). A → B turns the
/// directory link `units` into per-file links (built aside, then exchanged: `.etcflip-swap-`),
/// removes ten files (after the flip), adds ten and changes a copy.
fn gen(s: &Scratch, which: char) -> PathBuf {
    let store = s.root.join("store");
    let mut etc = serde_json::Map::new();
    if which == 'a' {
        for i in 0..BUILT {
            s.store(
                &format!("units/u{i:04}.service"),
                &format!("[Unit]\n# {i}\n"),
            );
        }
        etc.insert(
            "units".into(),
            source("systemd/system", &store.join("units")),
        );
    } else {
        for i in 0..BUILT {
            let name = format!("systemd/system/u{i:04}.service");
            let unit = store.join(format!("units/u{i:04}.service"));
            etc.insert(name.clone(), source(&name, &unit));
        }
    }
    for i in 0..10 {
        let name = format!("{which}/f{i}.conf");
        etc.insert(name.clone(), text(&name, &format!("{which} {i}\n")));
    }
    etc.insert(
        "hosts".into(),
        json!({"text": format!("127.0.0.1 {which}\n"), "mode": "0644"}),
    );
    s.gen(&which.to_string(), &json!({ "etc": etc }))
}

/// Processes (other than zombies) whose command line mentions `root`: what a switch into
/// that root started (`systemd-tmpfiles --root=<root>`, `etcflip … --root <root>`).
fn processes_on(root: &Path) -> Vec<String> {
    let needle = root.as_os_str().as_encoded_bytes();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
    {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if cmdline.windows(needle.len()).any(|w| w == needle) {
            let shown = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            out.push(format!("{}: {shown}", e.file_name().to_string_lossy()));
        }
    }
    out
}

/// Names under `<root>/etc` containing `.etcflip-` (scratch), and what the state directory
/// holds besides the applied generation and the lock.
fn leftovers(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("etc")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().contains(".etcflip-") {
                out.push(e.path().display().to_string());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    for e in std::fs::read_dir(root.join("etc/.etcflip")).expect("state dir") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        if !matches!(name.as_str(), "applied.json" | "lock" | "stamps.json") {
            out.push(format!("state: {name}"));
        }
    }
    out
}

/// What is wrong after the rerun to `target` (empty: it converged).
fn rerun_problems(root: &Path, target: &Path, want: &str) -> Vec<String> {
    let out = switch(root, target);
    let mut wrong = Vec::new();
    if code(&out) != 0 {
        wrong.push(format!("rerun exited {}: {}", code(&out), text_of(&out)));
    }
    if listing(&root.join("etc")) != want {
        wrong.push("the root differs from a fresh apply".into());
    }
    wrong.extend(leftovers(root));
    let verify = etcflip(root, &["verify"]);
    if code(&verify) != 0 {
        wrong.push(format!("verify: {}", text_of(&verify)));
    }
    wrong.extend(
        processes_on(root)
            .into_iter()
            .map(|p| format!("still running: {p}")),
    );
    wrong
}

/// Invariant 8: SIGKILL of the etcflip process alone at a pseudo-random instant of a switch
/// A → B, then at once a switch to B (even trials) or back to A (odd ones): every
/// rerun exits 0 and ends exactly where a fresh apply ends, with no scratch left, `verify`
/// clean, and no process of either switch still running.
#[test]
fn a_switch_killed_alone_leaves_nothing_running_and_the_rerun_converges() {
    let g = Scratch::new_in_memory("orphans-gens");
    let (gen_a, gen_b) = (gen(&g, 'a'), gen(&g, 'b'));
    let base = Scratch::new_in_memory("orphans-base");
    assert_eq!(code(&switch(&base.root, &gen_a)), 0);
    let want_a = base.listing();
    let fresh_b = Scratch::new_in_memory("orphans-fresh_b");
    assert_eq!(code(&switch(&fresh_b.root, &gen_b)), 0);
    let want_b = fresh_b.listing();

    // How long an uninterrupted gen_a → gen_b takes here (build profile and load included).
    let mut durations: Vec<Duration> = (0..3)
        .map(|n| {
            let t = Scratch::new_in_memory(&format!("orphans-measure-{n}"));
            copy_etc(&base.root, &t.root);
            let start = Instant::now();
            assert_eq!(code(&switch(&t.root, &gen_b)), 0);
            start.elapsed()
        })
        .collect();
    durations.sort();
    let span = durations[1];

    let mut rng = Rng(0x0e7c_f11b_0000_0008);
    let (mut failures, mut journaled) = (Vec::new(), 0);
    let started = Instant::now();
    for trial in 0..TRIALS {
        // Stratified over the span, jittered: every part of the switch gets its kills.
        let delay = span.mul_f64((f64::from(trial) + rng.unit()) / f64::from(TRIALS));
        let t = Scratch::new_in_memory(&format!("orphans-{trial}"));
        copy_etc(&base.root, &t.root);
        let mut child = Command::new(bin("etcflip"))
            .arg("switch")
            .arg(&gen_b)
            .arg("--root")
            .arg(&t.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn etcflip");
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL of that one process; it may have finished already
        child.wait().expect("wait");
        if t.root.join("etc/.etcflip/journal.json").exists() {
            journaled += 1;
        }
        let (target, want) = if trial % 2 == 0 {
            (&gen_b, &want_b)
        } else {
            (&gen_a, &want_a)
        };
        let wrong = rerun_problems(&t.root, target, want);
        if !wrong.is_empty() {
            failures.push(format!(
                "trial {trial} (killed after {delay:?}, rerun to {}): {wrong:#?}",
                target.display()
            ));
        }
    }
    eprintln!(
        "{TRIALS} trials over {span:?} each in {:?}: {journaled} killed with a journal on disk, \
         {} failed",
        started.elapsed(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {TRIALS} reruns did not converge; the first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n")
    );
    // The kills must land inside switches, or this proves nothing.
    assert!(
        journaled >= TRIALS / 4,
        "only {journaled} of {TRIALS} kills landed after the journal was written"
    );
}

/// Polls `done` every 5 ms for up to `limit`; whether it became true.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// The child dies with the switch: a stand-in for `systemd-tmpfiles` that would sleep for a
/// minute is gone within seconds of a SIGKILL of etcflip alone, and the rerun (with the real
/// tmpfiles) converges.
#[test]
fn the_child_dies_with_a_killed_switch() {
    let g = Scratch::new_in_memory("orphans-pdeathsig-gens");
    let (a, b) = (gen(&g, 'a'), gen(&g, 'b'));
    let s = Scratch::new_in_memory("orphans-pdeathsig");
    assert_eq!(code(&switch(&s.root, &a)), 0);
    let pid_file = s.dir.join("child.pid");
    let slow = s.script(
        "bin/slow-tmpfiles",
        &format!("echo $$ > '{}'\nexec sleep 60", pid_file.display()),
    );
    let mut etcflip = Command::new(bin("etcflip"))
        .args(["switch", b.to_str().unwrap(), "--root"])
        .arg(&s.root)
        .env("ETCFLIP_TMPFILES", &slow)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn etcflip");
    let started = within(Duration::from_secs(30), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'))
    });
    assert!(started, "the switch never started its tmpfiles");
    let child: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    etcflip.kill().unwrap();
    etcflip.wait().unwrap();
    let died = within(Duration::from_secs(5), || !alive(child));
    if !died {
        // Ours to clean up: the stand-in this test started.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(died, "the child {child} outlived the killed switch by 5 s");
    let want = {
        let fresh = Scratch::new_in_memory("orphans-pdeathsig-fresh");
        assert_eq!(code(&switch(&fresh.root, &b)), 0);
        fresh.listing()
    };
    assert_eq!(rerun_problems(&s.root, &b, &want), Vec::<String>::new());
}

/// A switch started while the lock is held (here by the test, as a straggler would hold it)
/// waits for it instead of failing, and then converges.
#[test]
fn a_switch_waits_for_the_lock() {
    use nix::fcntl::{Flock, FlockArg};
    let g = Scratch::new_in_memory("orphans-lock-gens");
    let (a, b) = (gen(&g, 'a'), gen(&g, 'b'));
    let s = Scratch::new_in_memory("orphans-lock");
    assert_eq!(code(&switch(&s.root, &a)), 0);
    let lock = std::fs::File::open(s.root.join("etc/.etcflip/lock")).unwrap();
    let flock = Flock::lock(lock, FlockArg::LockExclusiveNonblock).unwrap();
    let hold = Duration::from_millis(400);
    let release = std::thread::spawn(move || {
        std::thread::sleep(hold);
        drop(flock);
    });
    let start = Instant::now();
    let out = switch(&s.root, &b);
    let took = start.elapsed();
    release.join().unwrap();
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert!(
        took >= hold,
        "the switch did not wait for the lock ({took:?})"
    );
    assert_eq!(etcflip(&s.root, &["verify"]).status.code(), Some(0));
}

/// A switch feeds only the children it needs: none for a no-op, and none for a plan that
/// creates nothing through tmpfiles (here: a copy's content changes, a file goes away;
/// removal is etcflip's own, never a tmpfiles run). A switch to another generation may start
/// one before it knows (see applier/src/etc/apply/children.rs, `Children::speculative`); unused, it is
/// killed before it was given a line. The spy reads its whole input first, as tmpfiles does,
/// and logs only what it was given.
#[test]
fn a_plan_that_creates_nothing_feeds_no_tmpfiles() {
    let g = Scratch::new_in_memory("orphans-spy-gens");
    let s = Scratch::new_in_memory("orphans-spy");
    let copy = |content: &str| json!({"text": content, "mode": "0644"});
    let a = g.gen(
        "a",
        &json!({"etc": {"hosts": copy("a\n"), "motd": text("motd", "hi\n")}}),
    );
    let b = g.gen("b", &json!({"etc": {"hosts": copy("b\n")}}));
    assert_eq!(code(&switch(&s.root, &a)), 0);
    let log = s.dir.join("tmpfiles.log");
    let spy = s.script(
        "bin/spy-tmpfiles",
        &format!(
            "input=$(mktemp -p '{}')\ncat > \"$input\"\n\
             echo \"$* $(wc -l < \"$input\")\" >> '{}'\nexec '{}' \"$@\" < \"$input\"",
            s.dir.display(),
            log.display(),
            etcflip_e2e::real_tmpfiles().display()
        ),
    );
    let spied = |gen: &Path| {
        let env = [("ETCFLIP_TMPFILES", spy.as_os_str())];
        let out = etcflip_e2e::etcflip_env(&s.root, &["switch", gen.to_str().unwrap()], &env);
        assert_eq!(code(&out), 0, "{}", text_of(&out));
    };
    spied(&b);
    spied(&b);
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(ran, "", "no systemd-tmpfiles should have been fed");
    assert!(absent(&s.root.join("etc/motd")), "the stale link is gone");
    // The spy does see a run that creates: back to A makes motd, one line.
    spied(&a);
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        ran.lines().count() == 1 && ran.contains("--create") && ran.ends_with(" 1\n"),
        "{ran:?}"
    );
}
