//! What concurrent readers see while `etcflip switch` runs, and what signals do to a switch.
//!
//! - Invariant 1: hundreds of switches cycling A → B → C → A… while reader threads read every
//!   watched path (resolving links inside the root, like a chrooted process). Every pass must be
//!   explained by the generation sequence: each observation belongs to some generation, the
//!   observed generation only moves forward, and it changes at most once per switch that
//!   overlapped the pass (never within a pass no switch overlapped).
//! - Invariant 6 for `/etc` copies: a poller lists the directories of a 0600 and a 0440 copy
//!   (staging names included) and never sees a file more permissive than its final mode.
//! - SIGTERM/SIGINT mid-switch on a big generation: the switch exits 0 or 1 (never dies of the
//!   signal), never advances the recorded state before its flip, and a rerun converges to
//!   exactly a fresh apply with `verify` clean.
//!
//! The tests in this file run one at a time (they measure time and spin readers on all cores).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use etcflip_e2e::{bin, code, source, spec, text, text_of, Rng, Scratch};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

/// One test at a time: timing-based coverage (signal delays, reader overlap) needs the cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Invariant 1
// ---------------------------------------------------------------------------------------------

/// The generations of the reader test, in switch order: switch `k` goes to `GENS[k % 3]`.
const GENS: [char; 3] = ['A', 'B', 'C'];

/// What a watched path shows in a generation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Exp {
    /// A file whose content is `tag(path, generation)`.
    T,
    /// Nothing (`ENOENT`, or `ENOTDIR` below a file). A dangling link reads the same, so it
    /// only fits generations without the entry.
    M,
    /// A directory.
    D,
}
use Exp::{D, M, T};

/// Watched paths (below `/etc`) and what each generation shows there. Link entries only:
/// copies are renamed after the flip and are not covered by invariant 1.
const WATCHED: &[(&str, [Exp; 3])] = &[
    // Plain links to store files, text entries, nested per-file directories.
    ("plain", [T, T, T]),
    ("text1", [T, T, T]),
    ("deep/er/file", [T, T, T]),
    // Entries in only some generations.
    ("only-a", [T, M, M]),
    ("only-b", [M, T, M]),
    ("not-b", [T, M, T]),
    // A directory link (A) that becomes per-file links (B), then a directory link again (C),
    // read through the link; one file exists only in the per-file form.
    ("dl/f1", [T, T, T]),
    ("dl/f2", [T, T, T]),
    ("dl/sub/f3", [T, T, T]),
    ("dl/b-only", [M, T, M]),
    // Per-file links (A) that become a directory link (B), then nothing (C).
    ("dl2/f", [T, T, M]),
    ("dl2/g", [T, T, M]),
    // Nothing (A), a per-file directory (B), a single file link at the directory's path (C).
    // `pd` itself is not watched: a new managed directory is made (empty, its links dangling)
    // before the flip, which invariant 1 allows: it is about link entries.
    ("pd/one", [M, T, M]),
    ("pd/two", [M, T, M]),
    // A file link (A) that becomes a per-file directory (B, C).
    ("fd", [T, D, D]),
    ("fd/x", [M, T, T]),
];

/// A copy (0644) present in every generation: outside invariant 1, but never missing.
const COPY: &str = "copied";

/// The content of `path` in generation `g`: names both, so a cross-wired link shows.
fn tag(path: &str, g: char) -> String {
    format!("{path} gen={g}\n")
}

/// The spec of generation `g` (see [`WATCHED`]).
fn spec_of(s: &Scratch, g: char) -> Value {
    let lower = g.to_ascii_lowercase();
    let store = |rel: &str, path: &str| s.store(&format!("{lower}/{rel}"), &tag(path, g));
    let store_dir = |name: &str, files: &[&str]| {
        for f in files {
            store(&format!("{name}/{f}"), &format!("{name}/{f}"));
        }
        s.root.join("store").join(lower.to_string()).join(name)
    };
    let t = |path: &str| (path.to_owned(), text(path, &tag(path, g)));
    let mut e: Vec<(String, Value)> = vec![
        ("plain".into(), source("plain", &store("plain", "plain"))),
        t("text1"),
        t("deep/er/file"),
        (
            COPY.into(),
            json!({"target": COPY, "text": tag(COPY, g), "mode": "0644"}),
        ),
    ];
    match g {
        'A' => {
            e.push(t("only-a"));
            e.push(t("not-b"));
            e.push((
                "dl".into(),
                source("dl", &store_dir("dl", &["f1", "f2", "sub/f3"])),
            ));
            e.push(t("dl2/f"));
            e.push(t("dl2/g"));
            e.push(t("fd"));
        }
        'B' => {
            e.push((
                "only-b".into(),
                source("only-b", &store("only-b", "only-b")),
            ));
            e.push(t("dl/f1"));
            e.push(t("dl/f2"));
            e.push((
                "dl/sub/f3".into(),
                source("dl/sub/f3", &store("f3", "dl/sub/f3")),
            ));
            e.push(t("dl/b-only"));
            e.push(("dl2".into(), source("dl2", &store_dir("dl2", &["f", "g"]))));
            e.push(t("pd/one"));
            e.push(t("pd/two"));
            e.push(t("fd/x"));
        }
        _ => {
            e.push(t("not-b"));
            e.push((
                "dl".into(),
                source("dl", &store_dir("dl", &["f1", "f2", "sub/f3"])),
            ));
            e.push(t("pd"));
            e.push(("fd/x".into(), source("fd/x", &store("fd-x", "fd/x"))));
        }
    }
    let pairs: Vec<(&str, Value)> = e.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    spec(&pairs)
}

/// One read of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Obs {
    Content(String),
    Missing,
    Dir,
    Error(Errno),
}

/// Opens `/etc/<path>` resolving every link inside the root (`RESOLVE_IN_ROOT`) and reads it.
fn observe(root: &File, path: &str) -> Obs {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = format!("etc/{path}");
    let fd = loop {
        match openat2(root, rel.as_str(), how) {
            Ok(fd) => break fd,
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Obs::Missing,
            Err(e) => return Obs::Error(e),
        }
    };
    let mut content = Vec::new();
    match File::from(fd).read_to_end(&mut content) {
        Ok(_) => Obs::Content(String::from_utf8_lossy(&content).into_owned()),
        Err(e) if e.raw_os_error() == Some(Errno::EISDIR as i32) => Obs::Dir,
        Err(e) => Obs::Error(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
    }
}

fn expected(path: &str, exp: Exp, g: char) -> Obs {
    match exp {
        T => Obs::Content(tag(path, g)),
        M => Obs::Missing,
        D => Obs::Dir,
    }
}

/// The generations (bit `i` for `GENS[i]`) an observation of watched path `i` fits.
fn gens_of(i: usize, obs: &Obs) -> u8 {
    let (path, exps) = WATCHED[i];
    (0..3)
        .filter(|&g| expected(path, exps[g], GENS[g]) == *obs)
        .fold(0, |m, g| m | 1 << g)
}

fn letters(mask: u8) -> String {
    let s: String = (0..3)
        .filter(|g| mask & (1 << g) != 0)
        .map(|g| GENS[g])
        .collect();
    if s.is_empty() {
        "none".into()
    } else {
        s
    }
}

/// Shared between the switcher and the readers.
struct Shared {
    /// Switches spawned (incremented before the spawn).
    started: AtomicU64,
    /// Switches that exited successfully (incremented after the exit).
    finished: AtomicU64,
    stop: AtomicBool,
    failures: Mutex<Vec<String>>,
}

impl Shared {
    fn fail(&self, msg: String) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(msg);
        self.stop.store(true, SeqCst);
    }
}

#[derive(Default, Debug)]
struct ReaderStats {
    passes: u64,
    reads: u64,
    /// Passes that at least one switch overlapped.
    overlapped: u64,
    /// Passes no switch overlapped: they must show exactly one generation.
    quiet: u64,
    /// Passes whose observations span more than one generation (allowed by the overlap).
    mixed: u64,
    /// Most generation changes seen within one pass.
    max_changes: u64,
}

fn switcher(s: &Scratch, gens: &[PathBuf; 3], n: u64, sh: &Shared) {
    for k in 1..=n {
        if sh.stop.load(SeqCst) {
            break;
        }
        sh.started.fetch_add(1, SeqCst);
        let g = gens[usize::try_from(k % 3).unwrap()].to_str().unwrap();
        let out = s.etcflip(&["switch", g]);
        if !out.status.success() {
            sh.fail(format!("switch #{k} to {g} failed:\n{}", text_of(&out)));
            break;
        }
        sh.finished.fetch_add(1, SeqCst);
        // A short quiet spell now and then: passes no switch overlaps are checked too.
        if k % 4 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    sh.stop.store(true, SeqCst);
}

fn reader(root: &Path, order: &[usize], sh: &Shared) -> ReaderStats {
    let dir = File::open(root).unwrap();
    let mut st = ReaderStats::default();
    // Index in the switch sequence of the generation last seen (0 = the initial A).
    let mut last_k = 0u64;
    let mut obs: Vec<(usize, Obs)> = Vec::with_capacity(order.len());
    while !sh.stop.load(SeqCst) {
        let f0 = sh.finished.load(SeqCst);
        obs.clear();
        for &i in order {
            obs.push((i, observe(&dir, WATCHED[i].0)));
        }
        let copy = observe(&dir, COPY);
        let s1 = sh.started.load(SeqCst);
        st.passes += 1;
        st.reads += u64::try_from(obs.len()).unwrap() + 1;
        if s1 > f0 {
            st.overlapped += 1;
        } else {
            st.quiet += 1;
        }
        if !GENS.iter().any(|&g| copy == Obs::Content(tag(COPY, g))) {
            sh.fail(format!(
                "/etc/{COPY} (a copy) read as {copy:?}: it must never be missing"
            ));
            break;
        }
        let masks = obs.iter().map(|(i, o)| gens_of(*i, o));
        let (first, k) = match explain(masks, last_k.max(f0), s1) {
            Ok(range) => range,
            Err((n, why)) => {
                let seen = GENS[usize::try_from(last_k % 3).unwrap()];
                let mut msg = format!(
                    "pass {} (switches finished before it {f0}, started by its end {s1}, \
                     index already seen {last_k} = {seen}): observation #{n} {why}\n",
                    st.passes
                );
                for (i, o) in &obs {
                    let _ = writeln!(
                        msg,
                        "  /etc/{:<14} {o:?} -> {}",
                        WATCHED[*i].0,
                        letters(gens_of(*i, o))
                    );
                }
                sh.fail(msg);
                break;
            }
        };
        let changes = k - first;
        if changes > 0 {
            st.mixed += 1;
            st.max_changes = st.max_changes.max(changes);
        }
        last_k = k;
    }
    st
}

/// Explains a pass: gives each observation (as a mask of the generations it fits) an index in
/// the switch sequence (index `k` shows `GENS[k % 3]`), non-decreasing, within `from..=to`.
/// The generation at any instant of a pass is the one of some index in [switches finished
/// before it, switches started by its end], and only moves forward; greedy earliest matching
/// finds such an explanation whenever one exists. Returns the first and last index used, or
/// the observation that cannot be explained and why.
fn explain(
    masks: impl IntoIterator<Item = u8>,
    from: u64,
    to: u64,
) -> Result<(u64, u64), (usize, &'static str)> {
    let mut k = from;
    let mut first = None;
    for (n, mask) in masks.into_iter().enumerate() {
        if mask == 0 {
            return Err((n, "fits no generation"));
        }
        while k <= to && mask & (1 << (k % 3)) == 0 {
            k += 1;
        }
        if k > to {
            return Err((
                n,
                "needs a generation the switches overlapping this pass cannot give",
            ));
        }
        first.get_or_insert(k);
    }
    Ok((first.unwrap_or(from), k))
}

/// The checker itself rejects what it must: mixes without a switch, going back, skipping.
#[test]
fn pass_checker_rejects_mixes() {
    const A: u8 = 1;
    const B: u8 = 2;
    const C: u8 = 4;
    // No switch overlapped (from == to): one generation only.
    assert_eq!(explain([A, A | C, A], 0, 0), Ok((0, 0)));
    assert!(explain([A, B], 0, 0).is_err());
    assert!(explain([A, B], 3, 3).is_err());
    // One switch (A -> B) overlapped: A then B is fine, B then A is a mix.
    assert_eq!(explain([A, B, B], 0, 1), Ok((0, 1)));
    assert_eq!(explain([B | C, A], 0, 1).map_err(|e| e.0), Err(1));
    assert_eq!(explain([A, B, A], 0, 1).map_err(|e| e.0), Err(2));
    // A -> B -> C needs two switches.
    assert!(explain([A, C], 0, 1).is_err());
    assert_eq!(explain([A, C], 0, 2), Ok((0, 2)));
    // Already past A (index 1 = B seen): A again needs the whole cycle.
    assert!(explain([A], 1, 2).is_err());
    assert_eq!(explain([A], 1, 3), Ok((3, 3)));
    // Fits nothing.
    assert_eq!(explain([A, 0], 0, 9).map_err(|e| e.0), Err(1));
}

/// Every watched path shows exactly generation `g` (no switch running).
fn assert_shows(root: &Path, g: usize) {
    let dir = File::open(root).unwrap();
    for (path, exps) in WATCHED {
        assert_eq!(
            observe(&dir, path),
            expected(path, exps[g], GENS[g]),
            "/etc/{path} in generation {}",
            GENS[g]
        );
    }
    assert_eq!(observe(&dir, COPY), Obs::Content(tag(COPY, GENS[g])));
}

#[test]
fn readers_see_old_or_new_never_a_mix() {
    const SWITCHES: u64 = 240;
    let _serial = serial();
    let s = Scratch::new("readers");
    let gens: [PathBuf; 3] = GENS.map(|g| s.gen(&g.to_string(), &spec_of(&s, g)));
    // Every transition once with nobody watching: the table above is what the root shows.
    for g in [0, 1, 2, 0] {
        s.switch(&gens[g], &[]);
        assert_shows(&s.root, g);
    }
    let sh = Shared {
        started: AtomicU64::new(0),
        finished: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        failures: Mutex::new(Vec::new()),
    };
    let forward: Vec<usize> = (0..WATCHED.len()).collect();
    let backward: Vec<usize> = forward.iter().rev().copied().collect();
    let t0 = Instant::now();
    let stats = std::thread::scope(|sc| {
        let readers = [&forward, &backward].map(|order| {
            let (root, sh) = (&s.root, &sh);
            sc.spawn(move || reader(root, order, sh))
        });
        sc.spawn(|| switcher(&s, &gens, SWITCHES, &sh));
        readers.map(|r| r.join().unwrap())
    });
    let elapsed = t0.elapsed();
    let failures = sh.failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let done = sh.finished.load(SeqCst);
    for (n, st) in stats.iter().enumerate() {
        println!(
            "reader {n}: {} passes, {} reads, {} overlapped a switch, {} quiet, {} mixed \
             (allowed), at most {} generation change(s) in one pass",
            st.passes, st.reads, st.overlapped, st.quiet, st.mixed, st.max_changes
        );
    }
    println!("{done} switches in {elapsed:.1?}");
    assert_eq!(done, SWITCHES);
    let reads: u64 = stats.iter().map(|s| s.reads).sum();
    let overlapped: u64 = stats.iter().map(|s| s.overlapped).sum();
    let mixed: u64 = stats.iter().map(|s| s.mixed).sum();
    assert!(
        reads >= 10_000,
        "only {reads} reads: the test proved little"
    );
    assert!(
        overlapped >= SWITCHES,
        "only {overlapped} passes overlapped a switch"
    );
    assert!(
        mixed >= 1,
        "no pass ever straddled a flip: the readers did not race the switches"
    );
    // The last switch went to GENS[SWITCHES % 3]; nothing is left half-done.
    assert_shows(&s.root, usize::try_from(SWITCHES % 3).unwrap());
    let v = s.etcflip(&["verify"]);
    assert_eq!(code(&v), 0, "{}", text_of(&v));
}

// ---------------------------------------------------------------------------------------------
// Invariant 6 for copies
// ---------------------------------------------------------------------------------------------

/// (directory below /etc, copy name, its mode): each directory holds nothing but that copy.
const SECRETS: [(&str, &str, u32); 2] = [("secret", "shadow", 0o600), ("sudo", "sudoers", 0o440)];

fn secrets_spec(g: u32) -> Value {
    let mut etc = serde_json::Map::new();
    for (dir, name, mode) in SECRETS {
        let target = format!("{dir}/{name}");
        etc.insert(
            target.clone(),
            json!({
                "target": target,
                // Changes every generation, and large enough that staging takes a moment.
                "text": format!("{target} generation {g}\n{}", "x".repeat(64 * 1024)),
                "mode": format!("{mode:04o}"),
            }),
        );
    }
    etc.insert("filler".into(), text("filler", &format!("{g}\n")));
    json!({ "etc": etc })
}

#[derive(Default, Debug)]
struct PollStats {
    polls: u64,
    files: u64,
    scratch_files: u64,
}

fn poll_secrets(s: &Scratch, stop: &AtomicBool) -> (PollStats, Vec<String>) {
    let mut st = PollStats::default();
    let mut bad = Vec::new();
    while !stop.load(SeqCst) && bad.len() < 20 {
        st.polls += 1;
        for (dir, name, mode) in SECRETS {
            let d = s.etc(dir);
            match std::fs::symlink_metadata(d.join(name)) {
                Ok(md) if md.is_file() => {}
                other => bad.push(format!("/etc/{dir}/{name} is not a file: {other:?}")),
            }
            let entries = match std::fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) => {
                    bad.push(format!("cannot list /etc/{dir}: {e}"));
                    continue;
                }
            };
            for ent in entries.filter_map(Result::ok) {
                let Ok(md) = std::fs::symlink_metadata(ent.path()) else {
                    continue; // renamed away between the listing and the lstat
                };
                if !md.is_file() {
                    continue;
                }
                st.files += 1;
                let fname = ent.file_name().to_string_lossy().into_owned();
                if fname.starts_with(".etcflip-") {
                    st.scratch_files += 1;
                }
                let have = md.permissions().mode() & 0o7777;
                if have & !mode != 0 {
                    bad.push(format!(
                        "/etc/{dir}/{fname} had mode {have:04o}; the copy's mode is {mode:04o}"
                    ));
                }
            }
        }
    }
    (st, bad)
}

#[test]
fn copies_are_never_more_permissive_than_their_mode() {
    const SWITCHES: u32 = 30;
    let _serial = serial();
    let s = Scratch::new("secrets");
    let gens: Vec<PathBuf> = (0..2)
        .map(|g| s.gen(&format!("s{g}"), &secrets_spec(g)))
        .collect();
    s.switch(&gens[0], &[]);
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let (stats, bad) = std::thread::scope(|sc| {
        let poller = sc.spawn(|| poll_secrets(&s, &stop));
        for k in 1..=SWITCHES {
            if poller.is_finished() {
                break;
            }
            s.switch(&gens[usize::try_from(k % 2).unwrap()], &[]);
        }
        stop.store(true, SeqCst);
        poller.join().unwrap()
    });
    println!(
        "{SWITCHES} switches in {:.1?}: {} polls, {} files looked at, {} of them staging files",
        t0.elapsed(),
        stats.polls,
        stats.files,
        stats.scratch_files
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(
        stats.scratch_files > 0,
        "the poller never saw a staging file: it proved nothing"
    );
    let last = SWITCHES % 2;
    for (dir, name, mode) in SECRETS {
        let p = s.etc(&format!("{dir}/{name}"));
        let md = std::fs::symlink_metadata(&p).unwrap();
        assert!(md.is_file());
        assert_eq!(md.permissions().mode() & 0o7777, mode, "{}", p.display());
        let content = std::fs::read_to_string(&p).unwrap();
        assert!(
            content.starts_with(&format!("{dir}/{name} generation {last}\n")),
            "{}",
            p.display()
        );
        // Nothing but the copy is left in its directory.
        let names: Vec<_> = std::fs::read_dir(s.etc(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [name], "leftovers in /etc/{dir}");
    }
}

// ---------------------------------------------------------------------------------------------
// SIGTERM / SIGINT mid-switch
// ---------------------------------------------------------------------------------------------

const BIG: usize = 2000;

/// A big generation: `BIG` text links in 30 directories, a 0600 copy, a per-file directory
/// and a directory link that trade places between `x` and `y`.
fn big_spec(s: &Scratch, g: char) -> Value {
    let mut etc = serde_json::Map::new();
    for i in 0..BIG {
        if g == 'y' && i % 3 == 0 {
            continue; // removed in y
        }
        let content = if g == 'y' && i % 2 == 0 {
            format!("{i} y\n")
        } else {
            format!("{i}\n")
        };
        etc.insert(
            format!("e{i}"),
            text(&format!("big/d{}/f{i}", i % 30), &content),
        );
    }
    if g == 'y' {
        for i in 0..300 {
            etc.insert(
                format!("n{i}"),
                text(&format!("big/new{}/n{i}", i % 10), "new\n"),
            );
        }
    }
    etc.insert(
        "secret".into(),
        json!({"target": "secret", "text": format!("secret {g}\n"), "mode": "0600"}),
    );
    let (per_file, dir_link) = if g == 'x' {
        ("units", "conf")
    } else {
        ("conf", "units")
    };
    for j in 0..40 {
        let t = format!("{per_file}/u{j}");
        etc.insert(t.clone(), text(&t, &format!("{t} {g}\n")));
        s.store(
            &format!("{g}/{dir_link}/u{j}"),
            &format!("{dir_link}/u{j} {g}\n"),
        );
    }
    etc.insert(
        dir_link.into(),
        source(dir_link, &s.root.join(format!("store/{g}/{dir_link}"))),
    );
    json!({ "etc": etc })
}

fn status(s: &Scratch) -> Value {
    let out = s.etcflip(&["status", "--json"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn overlay(s: &Scratch) -> String {
    std::fs::read_link(s.etc("static"))
        .unwrap()
        .display()
        .to_string()
}

/// Starts `etcflip switch gen`, sends `sig` after `delay`, and returns its output.
fn interrupted_switch(s: &Scratch, gen: &Path, sig: Signal, delay: Duration) -> Output {
    let child = Command::new(bin("etcflip"))
        .arg("switch")
        .arg(gen)
        .arg("--root")
        .arg(&s.root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    // Not yet reaped, so the pid is still this child's even if it has exited.
    kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), sig).unwrap();
    child.wait_with_output().unwrap()
}

#[derive(Default, Debug)]
struct SignalStats {
    trials: u32,
    finished_first: u32,
    stopped_before_flip: u32,
    finished_after_flip: u32,
    /// Trials where the process died of the signal (each also described in `killed_at`).
    killed: u32,
    killed_at: Vec<String>,
}

/// One trial: interrupt a switch to `to`, then rerun it and compare with a fresh apply.
fn signal_trial(
    s: &Scratch,
    to: &Path,
    fresh: &str,
    sig: Signal,
    delay: Duration,
    st: &mut SignalStats,
) {
    let what = format!("{sig} after {delay:.0?}");
    let old_link = overlay(s);
    let out = interrupted_switch(s, to, sig, delay);
    st.trials += 1;
    let c = out.status.code();
    let now = overlay(s);
    if c.is_none() {
        // Reported at the end, after every trial ran: the rerun must converge all the same.
        st.killed += 1;
        st.killed_at.push(format!(
            "{what}: {} ({})",
            out.status,
            if now == old_link {
                "before its flip"
            } else {
                "after its flip"
            }
        ));
    } else if c == Some(1) {
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(sig.as_str()),
            "{what}: exit 1 must be the signal's doing:\n{}",
            text_of(&out)
        );
        if now == old_link {
            st.stopped_before_flip += 1;
            // Invariant 3: stopped before its flip, the switch did not advance the state.
            let stat = status(s);
            assert_eq!(
                format!("{}/etc", stat["generation"].as_str().unwrap_or("")),
                old_link,
                "{what}: stopped before the flip but the recorded state moved: {stat}"
            );
        } else {
            st.finished_after_flip += 1;
        }
    } else {
        assert_eq!(
            c,
            Some(0),
            "{what}: unexpected exit code:\n{}",
            text_of(&out)
        );
        st.finished_first += 1;
        assert_ne!(now, old_link, "{what}: exit 0 but the overlay did not move");
    }
    let rerun = s.etcflip(&["switch", to.to_str().unwrap()]);
    assert_eq!(
        code(&rerun),
        0,
        "{what}: the rerun failed:\n{}",
        text_of(&rerun)
    );
    assert_eq!(
        s.listing(),
        fresh,
        "{what}: the rerun differs from a fresh apply"
    );
    let v = s.etcflip(&["verify"]);
    assert_eq!(
        code(&v),
        0,
        "{what}: verify after the rerun:\n{}",
        text_of(&v)
    );
    let stat = status(s);
    assert_eq!(stat["pending"], json!([]), "{what}: {stat}");
    assert!(
        to.ends_with(stat["generation"].as_str().unwrap().trim_start_matches('/')),
        "{what}: {stat}"
    );
}

#[test]
fn sigterm_and_sigint_mid_switch_converge() {
    const TRIALS: u32 = 6;
    let _serial = serial();
    let t_setup = Instant::now();
    let s = Scratch::new("signals");
    let gx = s.gen("x", &big_spec(&s, 'x'));
    let gy = s.gen("y", &big_spec(&s, 'y'));
    // Fresh applies of each generation: x on this root (empty so far), y on a root that
    // never saw x.
    s.switch(&gx, &[]);
    let fresh_x = s.listing();
    let f = Scratch::new("signals-fresh");
    etcflip_e2e::copy_tree(&gy, &f.root.join("gens/y"), false);
    f.switch(&f.root.join("gens/y"), &[]);
    let fresh_y = f.listing();
    drop(f);
    // How long an uninterrupted switch takes, each way.
    let mut dur = Duration::ZERO;
    for (g, want) in [(&gy, &fresh_y), (&gx, &fresh_x)] {
        let t = Instant::now();
        s.switch(g, &[]);
        dur = dur.max(t.elapsed());
        assert_eq!(
            &s.listing(),
            want,
            "an uninterrupted switch differs from a fresh apply"
        );
    }
    let setup = t_setup.elapsed();
    let gens = [(&gx, &fresh_x), (&gy, &fresh_y)];
    let mut st = SignalStats::default();
    let mut rng = Rng(0x00e7_cf11_5eed);
    // Stratified delays: trial i lands somewhere in the i-th slice of 15 ms + [0, 1.2 ×
    // duration], so the whole switch (loading, preparing, the flip, the removals, the commit)
    // is covered. Not earlier than 15 ms after the spawn: a signal that arrives before the
    // process has run any code at all cannot be handled by it.
    let span = dur.mul_f64(1.2);
    let mut trials: Vec<(Signal, Duration)> = (0..TRIALS)
        .map(|i| {
            let slice = (f64::from(i) + rng.unit()) / f64::from(TRIALS);
            (
                Signal::SIGTERM,
                Duration::from_millis(15) + span.mul_f64(slice),
            )
        })
        .collect();
    // A signal during phase 0 (loading and checking the generation), and one SIGINT.
    trials.push((Signal::SIGTERM, Duration::from_millis(20)));
    trials.push((
        Signal::SIGINT,
        Duration::from_millis(15) + span.mul_f64(rng.unit()),
    ));
    let t_trials = Instant::now();
    for (n, (sig, delay)) in trials.into_iter().enumerate() {
        // Alternate: x -> y, y -> x, ...
        let (to, fresh) = gens[(n + 1) % 2];
        signal_trial(&s, to, fresh, sig, delay, &mut st);
    }
    println!(
        "setup {setup:.1?} (switch duration {dur:.0?}); trials in {:.1?}: {st:?}",
        t_trials.elapsed()
    );
    assert!(
        st.killed == 0,
        "etcflip switch must exit 0 (done before the signal) or 1 (stopped at a consistent \
         point), never die of SIGTERM/SIGINT; it died in {} of {} trials:\n  {}",
        st.killed,
        st.trials,
        st.killed_at.join("\n  ")
    );
    assert!(
        st.stopped_before_flip + st.finished_after_flip > 0,
        "no signal ever arrived during a switch: the test proved nothing"
    );
}
