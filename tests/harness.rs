//! Test harness shared by the end-to-end tests: both real binaries, the real
//! `systemd-tmpfiles`, and a fresh temporary root per test.
//!
//! The binaries are the workspace's own build outputs (`target/<profile>/etcflip` and
//! `etcflip-gen`); the test command builds them first. Generations are built *inside* the
//! root (`<root>/gens/<name>`), so the overlay points at an in-root path and every link can be
//! resolved inside the root with `openat2(RESOLVE_IN_ROOT)`, as a process chrooted there would.

pub mod tmpfiles_bins;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

pub use tmpfiles_bins::repo_root;

/// The directory holding the workspace's binaries for this test profile.
pub fn bin_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    target.join(profile)
}

/// A workspace binary, which must have been built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace{})",
        p.display(),
        if cfg!(debug_assertions) {
            ""
        } else {
            " --release"
        }
    );
    p
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A scratch directory with a root inside, removed on drop (unless `ETCFLIP_KEEP_SCRATCH=1`).
pub struct Scratch {
    /// The scratch directory.
    pub dir: PathBuf,
    /// `<dir>/root`, the root switches operate on.
    pub root: PathBuf,
}

impl Scratch {
    /// A fresh scratch dir named after the test, in `$ETCFLIP_TEST_TMP` or the temp dir.
    pub fn new(name: &str) -> Scratch {
        let base =
            std::env::var_os("ETCFLIP_TEST_TMP").map_or_else(std::env::temp_dir, PathBuf::from);
        Scratch::new_in(&base, name)
    }

    /// [`Scratch::new`] in `$ETCFLIP_TEST_TMP`, else in `/dev/shm` when that is a tmpfs: for
    /// tests whose runtime is many small switches, which a busy disk slows tenfold.
    pub fn new_in_memory(name: &str) -> Scratch {
        let shm = Path::new("/dev/shm");
        let tmpfs = nix::sys::statfs::statfs(shm)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC);
        match std::env::var_os("ETCFLIP_TEST_TMP") {
            None if tmpfs => Scratch::new_in(shm, name),
            _ => Scratch::new(name),
        }
    }

    /// [`Scratch::new`] with a user database holding only root (`passwd`) and the groups
    /// root (0) and users (100): where the users tests start.
    pub fn with_root_account(name: &str) -> Scratch {
        let s = Scratch::new(name);
        s.file("root/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
        s.file("root/etc/group", "root:x:0:\nusers:x:100:\n");
        s
    }

    /// A fresh scratch dir named after the test, below `base`.
    pub fn new_in(base: &Path, name: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = base.join(format!("etcflip-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("gens")).expect("create scratch root");
        // `<root>/<host path of root>` -> `/`: a host-absolute path below the root (a source
        // in `<root>/store`) then resolves to the same file inside the root as on the host.
        let inner = root.join(root.strip_prefix("/").expect("absolute temp dir"));
        std::fs::create_dir_all(inner.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink("/", &inner).expect("self link");
        Scratch { dir, root }
    }

    /// Writes a store file `<root>/store/<rel>`, returning its host path (which also resolves
    /// inside the root).
    pub fn store(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.root.join("store").join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        p
    }

    /// Writes a file below the scratch dir (creating parents), returning its path.
    pub fn file(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        p
    }

    /// Builds a generation from a spec value into `<root>/gens/<name>`; panics on failure.
    pub fn gen(&self, name: &str, spec: &serde_json::Value) -> PathBuf {
        let out = self.gen_output(name, spec);
        assert!(
            out.status.success(),
            "etcflip-gen failed for {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.root.join("gens").join(name)
    }

    /// Runs `etcflip-gen build` on a spec value, returning its output.
    pub fn gen_output(&self, name: &str, spec: &serde_json::Value) -> Output {
        let spec_path = self.dir.join(format!("spec-{name}.json"));
        std::fs::write(
            &spec_path,
            serde_json::to_string_pretty(spec).expect("json"),
        )
        .expect("write spec");
        Command::new(bin("etcflip-gen"))
            .arg("build")
            .arg("--spec")
            .arg(&spec_path)
            .arg("--out")
            .arg(self.root.join("gens").join(name))
            .output()
            .expect("run etcflip-gen")
    }

    /// `etcflip <args> --root <root>`.
    pub fn etcflip(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin("etcflip"));
        cmd.args(args).arg("--root").arg(&self.root);
        cmd.output().expect("run etcflip")
    }

    /// `etcflip switch <gen> <extra…>`, whatever its exit code.
    pub fn switch_out(&self, gen: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["switch", gen.to_str().expect("utf8")];
        args.extend_from_slice(extra);
        self.etcflip(&args)
    }

    /// An executable shell script `<dir>/<rel>` (a stand-in for a program).
    pub fn script(&self, rel: &str, body: &str) -> PathBuf {
        let p = self.file(rel, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }

    /// `etcflip switch <gen>`, asserting success; returns stdout.
    pub fn switch(&self, gen: &Path, extra: &[&str]) -> String {
        let out = self.switch_out(gen, extra);
        assert!(
            out.status.success(),
            "switch to {} failed ({}):\n{}{}",
            gen.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A listing of `<root>/etc` (names, types, modes, link texts, file hashes), excluding
    /// the state directory: two roots in the same state give the same listing.
    pub fn listing(&self) -> String {
        listing(&self.root.join("etc"))
    }

    /// `<root>/etc/<rel>`.
    pub fn etc(&self, rel: &str) -> PathBuf {
        self.root.join("etc").join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("ETCFLIP_KEEP_SCRATCH").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Waits until the real-time clock is in a later whole second: what a switch changed before
/// then is settled, and the next switch's commit may stamp it (applier/src/etc/stamps.rs).
pub fn settle() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    let rest = 1_000_000_000 - u64::from(now.subsec_nanos());
    std::thread::sleep(std::time::Duration::from_nanos(rest + 20_000_000));
}

/// `unshare` arguments for a private mount namespace, in which the tests mount: normally
/// `-m --propagation private`. That needs `/` to be a mount point, which a bare chroot's is
/// not (a fresh-machine check runs the suite in one); when, moreover, no mount in
/// sight propagates (every one is private already, as there), `--propagation unchanged` is
/// just as private. Anywhere else the private form is used, and fails with unshare's message.
pub fn unshare_private() -> &'static [&'static str] {
    static ARGS: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    ARGS.get_or_init(|| {
        const PRIVATE: &[&str] = &["-m", "--propagation", "private"];
        const UNCHANGED: &[&str] = &["-m", "--propagation", "unchanged"];
        let works = Command::new("unshare")
            .args(PRIVATE)
            .arg("true")
            .output()
            .is_ok_and(|o| o.status.success());
        let nothing_shared = std::fs::read_to_string("/proc/self/mountinfo")
            .is_ok_and(|m| !m.is_empty() && !m.contains(" shared:"));
        if !works && nothing_shared {
            UNCHANGED
        } else {
            PRIVATE
        }
    })
}

/// Copies `<from>/etc` to `<to>/etc` exactly (links, modes, owners, times).
pub fn copy_etc(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from.join("etc"))
        .arg(to.join("etc"))
        .status()
        .expect("run cp");
    assert!(st.success(), "cp -a failed");
}

/// Runs `etcflip switch <gen> --root <root> <extra…>` with every `unlinkat` it makes failing
/// (`EPERM`, by strace's fault injection): a switch whose removals the kernel refuses, which
/// stops it after the flip when it has nothing to remove before (callers check that it did).
pub fn switch_with_failing_unlinkat(root: &Path, gen: &Path, extra: &[&str]) -> Output {
    let args = ["-qq", "-o", "/dev/null", "-e", "trace=unlinkat"];
    let args = args.iter().chain(&["-e", "inject=unlinkat:error=EPERM"]);
    switch_under_strace(args, root, gen, extra)
        .output()
        .expect("strace (apt-get install strace)")
}

/// `strace <strace_args…> etcflip switch <gen> <extra…> --root <root>`, ready to run: a real
/// switch under strace's syscall fault injection (kills, errors, delays).
pub fn switch_under_strace<A: AsRef<std::ffi::OsStr>>(
    strace_args: impl IntoIterator<Item = A>,
    root: &Path,
    gen: &Path,
    extra: &[&str],
) -> Command {
    let mut cmd = Command::new("strace");
    cmd.args(strace_args)
        .arg(bin("etcflip"))
        .arg("switch")
        .arg(gen)
        .args(extra)
        .arg("--root")
        .arg(root);
    cmd
}

/// `etcflip <args> --root <root>` with extra environment, whatever its exit code.
pub fn etcflip_env(root: &Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut cmd = Command::new(bin("etcflip"));
    cmd.args(args).arg("--root").arg(root);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run etcflip")
}

/// Copies a tree (files, directories, links as links); `writable` makes the files 0644, so
/// that a copied generation's payload can be edited.
pub fn copy_tree(from: &Path, to: &Path, writable: bool) {
    std::fs::create_dir_all(to).expect("mkdir");
    for ent in std::fs::read_dir(from).expect("read_dir") {
        let ent = ent.expect("entry");
        let (src, dst) = (ent.path(), to.join(ent.file_name()));
        let md = std::fs::symlink_metadata(&src).expect("lstat");
        if md.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).expect("readlink"), &dst)
                .expect("symlink");
        } else if md.is_dir() {
            copy_tree(&src, &dst, writable);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
            if writable {
                std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o644))
                    .expect("chmod");
            }
        }
    }
}

/// The real `systemd-tmpfiles`, as the applier finds it (`ETCFLIP_TMPFILES`, else `PATH`).
pub fn real_tmpfiles() -> PathBuf {
    etcflip::etc::find_tmpfiles().expect("systemd-tmpfiles is installed")
}

/// Whether nothing is at `p`, not even a dangling link (`Path::exists` follows links, and the
/// links etcflip makes point into the root, so they dangle from the host).
pub fn absent(p: &Path) -> bool {
    p.symlink_metadata().is_err()
}

/// Takes a process-associated fcntl write lock on all of `ARGV[0]`, as `lckpwdf` does, and
/// says `locked`, or `busy` (then exits); holds it until its input closes. `struct flock` on
/// 64-bit Linux: `short` type and whence, padding, `off_t` start and length, `pid_t`, padding.
pub const LCKPWDF: &str = r#"
use Fcntl qw(F_SETLK F_WRLCK SEEK_SET);
$| = 1;
open(my $fh, '+<', $ARGV[0]) or die "open $ARGV[0]: $!";
my $fl = pack('s s x4 q q l x4', F_WRLCK, SEEK_SET, 0, 0, 0);
if (!fcntl($fh, F_SETLK, $fl)) { print "busy\n"; exit 0; }
print "locked\n";
<STDIN>;
"#;

/// A deterministic listing of a tree (see [`Scratch::listing`]).
pub fn listing(top: &Path) -> String {
    let mut out = String::new();
    walk(top, top, &mut out);
    out
}

fn walk(top: &Path, dir: &Path, out: &mut String) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    names.sort();
    for p in names {
        let rel = p
            .strip_prefix(top)
            .expect("below top")
            .display()
            .to_string();
        if rel == ".etcflip" {
            continue;
        }
        let md = std::fs::symlink_metadata(&p).expect("lstat");
        let mode = md.permissions().mode() & 0o7777;
        if md.file_type().is_symlink() {
            let t = std::fs::read_link(&p).expect("readlink");
            let _ = writeln!(out, "{rel} -> {}", t.display());
        } else if md.is_dir() {
            let _ = writeln!(out, "{rel}/ {mode:04o}");
            walk(top, &p, out);
        } else {
            let content = std::fs::read(&p).expect("read");
            let _ = writeln!(
                out,
                "{rel} {mode:04o} {}:{} sha256:{}",
                md.uid(),
                md.gid(),
                &etcflip::fs::sha256_bytes(&content)[..16]
            );
        }
    }
}

/// Reads `path` (absolute in the root's namespace) resolving every link inside `root`, as a
/// process chrooted there would. `None` when it does not resolve to a readable file.
pub fn read_in_root(root: &Path, path: &str) -> Option<Vec<u8>> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let dir = std::fs::File::open(root).ok()?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = loop {
        match openat2(&dir, path.trim_start_matches('/'), how) {
            Ok(fd) => break fd,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(_) => return None,
        }
    };
    let mut out = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut out).ok()?;
    Some(out)
}

/// A spec entry for `environment.etc`, NixOS-shaped, with a text payload.
pub fn text(target: &str, content: &str) -> serde_json::Value {
    serde_json::json!({ "target": target, "text": content })
}

/// A spec entry linking `target` to `source`.
pub fn source(target: &str, source: &Path) -> serde_json::Value {
    serde_json::json!({ "target": target, "source": source })
}

/// A spec `{"etc": {...}}` from (attribute, entry) pairs.
pub fn spec(entries: &[(&str, serde_json::Value)]) -> serde_json::Value {
    let mut etc = serde_json::Map::new();
    for (name, e) in entries {
        etc.insert((*name).to_owned(), e.clone());
    }
    serde_json::json!({ "etc": etc })
}

/// Exit code of an output (`-1` when killed by a signal).
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// stdout + stderr as one string, for assertion messages.
pub fn text_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// splitmix64: deterministic pseudo-random numbers from a fixed seed (kill instants, delays),
/// so a failing run can be replayed.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    #[allow(clippy::cast_precision_loss)]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What any change to `p` would alter, never following it: type, inode, mode, owner, size,
/// link count, mtime and ctime to the nanosecond, and the link text or content hash.
pub fn stamp(p: &Path) -> String {
    let md = std::fs::symlink_metadata(p).expect("lstat");
    let what = if md.file_type().is_symlink() {
        format!("-> {}", std::fs::read_link(p).expect("readlink").display())
    } else if md.is_dir() {
        "dir".to_owned()
    } else if md.is_file() {
        etcflip::fs::sha256_bytes(&std::fs::read(p).expect("read"))
    } else {
        "special".to_owned()
    };
    format!(
        "{what} mode {:o} {}:{} ino {} size {} nlink {} mtime {}.{} ctime {}.{}",
        md.mode(),
        md.uid(),
        md.gid(),
        md.ino(),
        md.size(),
        md.nlink(),
        md.mtime(),
        md.mtime_nsec(),
        md.ctime(),
        md.ctime_nsec()
    )
}

/// [`stamp`] of every path below `top`, by relative path: any write below `top` (even one
/// that is undone) changes it.
pub fn stamps(top: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![top.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for p in rd.filter_map(Result::ok).map(|e| e.path()) {
            let md = std::fs::symlink_metadata(&p).expect("lstat");
            if md.is_dir() {
                stack.push(p.clone());
            }
            let rel = p.strip_prefix(top).expect("below").display().to_string();
            out.insert(rel, stamp(&p));
        }
    }
    out
}

/// The listing of a fresh apply of `spec` into a new scratch root (the generation inside it
/// as `/gens/<name>`, so overlay link texts match a root that used the same name).
pub fn fresh_listing(name: &str, spec: &serde_json::Value) -> String {
    let fresh = Scratch::new(&format!("fresh-{name}"));
    let g = fresh.gen(name, spec);
    fresh.switch(&g, &[]);
    fresh.listing()
}

/// The listing of a fresh apply of the generation `gen` (wherever it is) into a new scratch
/// root named after `name`.
pub fn fresh_listing_of(name: &str, gen: &Path) -> String {
    let fresh = Scratch::new(name);
    fresh.switch(gen, &[]);
    fresh.listing()
}

/// Runs `etcflip switch gen` killed (SIGKILL) at its `n`th `syscall`; true if it was killed.
pub fn switch_killed_at(s: &Scratch, gen: &Path, extra: &[&str], syscall: &str, n: u32) -> bool {
    let inject = format!("inject={syscall}:signal=KILL:when={n}");
    let args = ["-f", "-qq", "-o", "/dev/null", "-e", &inject];
    let out = switch_under_strace(args, &s.root, gen, extra)
        .output()
        .expect("strace (apt-get install strace)");
    !out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("switched")
}

/// The target the wrapper tests run: it prints its argv, its ids, its ambient capabilities
/// and its environment.
pub const SHOW: &str = r#"
#include <stdio.h>
#include <string.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv) {
    printf("argv0=%s\n", argv[0]);
    for (int i = 1; i < argc; i++) printf("arg=%s\n", argv[i]);
    printf("ids=%d %d %d %d\n", (int)getuid(), (int)geteuid(), (int)getgid(), (int)getegid());
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "CapAmb:", 7)) fputs(line, stdout);
    for (char **e = environ; *e; e++) printf("env=%s\n", *e);
    return 0;
}
"#;

/// Compiles [`SHOW`] into `dir` (made, with `top`, enterable by others); returns its path.
pub fn show_program(top: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    for d in [top, dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::write(dir.join("show.c"), SHOW).expect("write show.c");
    let show = dir.join("show");
    let out = Command::new("cc")
        .args(["-O", "-o"])
        .arg(&show)
        .arg(dir.join("show.c"))
        .output()
        .expect("cc");
    assert!(out.status.success(), "{}", text_of(&out));
    show
}

/// Runs `path args…` as nobody, with `env` added.
pub fn as_nobody(path: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command_as(true, path)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("setpriv (util-linux)")
}

/// A command running `program`, as nobody (through `setpriv`, no groups) when `nobody`, else
/// as the caller.
pub fn command_as(nobody: bool, program: &Path) -> Command {
    if nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// The value of `key=` in the target's output.
pub fn field<'t>(t: &'t str, key: &str) -> Vec<&'t str> {
    t.lines().filter_map(|l| l.strip_prefix(key)).collect()
}

pub fn ambient(t: &str) -> u64 {
    let hex = field(t, "CapAmb:");
    assert_eq!(hex.len(), 1, "{t}");
    u64::from_str_radix(hex[0].trim(), 16).expect("CapAmb is hex")
}

/// The start of a script for [`in_private_namespace`] that gives `root` what a booted image
/// gives it: the squashfs `img` mounted on `<root>/img`, its `etc` bound read-only on
/// `<root>/etc`, and an empty tmpfs on `<root>/run`. Makes those directories.
pub fn image_as_etc(img: &Path, root: &Path) -> String {
    for d in ["etc", "run", "img"] {
        std::fs::create_dir_all(root.join(d)).expect("the sysroot's directories");
    }
    let r = root.display();
    format!(
        "mount -o ro,loop {} {r}/img && mount --bind {r}/img/etc {r}/etc && \
         mount -o remount,ro,bind {r}/etc && mount -t tmpfs tmpfs {r}/run",
        img.display()
    )
}

/// `unshare` with the options of a private mount namespace ([`unshare_private`]): add the
/// program to run in it and its arguments. Whatever it mounts vanishes with it.
pub fn unshared() -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(unshare_private());
    cmd
}

/// `sh -c SCRIPT` in a private mount namespace (its mounts go with it).
pub fn in_private_namespace(script: &str) -> Output {
    unshared()
        .args(["sh", "-c", script])
        .output()
        .expect("unshare (util-linux)")
}

/// `etcflip image GEN --root TREE [--squashfs IMG] [extra…]`, as nobody when `nobody`.
pub fn etcflip_image(
    (gen, tree): (&Path, &Path),
    img: Option<&Path>,
    nobody: bool,
    extra: &[&std::ffi::OsStr],
) -> Output {
    let mut cmd = command_as(nobody, &bin("etcflip"));
    cmd.arg("image").arg(gen).arg("--root").arg(tree);
    if let Some(img) = img {
        cmd.arg("--squashfs").arg(img);
    }
    cmd.args(extra).output().expect("etcflip image")
}

/// A directory of nobody's in the scratch (`<dir>/work`), as a Nix build user has, with the
/// scratch and `open` enterable by others (nobody reads the generation through them).
pub fn nobodys_work(s: &Scratch, open: &[&Path]) -> PathBuf {
    let work = s.dir.join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    std::os::unix::fs::chown(&work, Some(65534), Some(65534)).expect("chown work");
    for p in std::iter::once(s.dir.as_path()).chain(open.iter().copied()) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    work
}
