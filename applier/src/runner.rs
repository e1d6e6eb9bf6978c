//! Runs `systemd-tmpfiles` on a transient snippet.
//!
//! The snippet is written to the state directory and passed by absolute path (tmpfiles reads a
//! config named on its command line from the host, and never installs it), then deleted. Its
//! exit code is advisory (research: a data error can mask a create error), so callers always
//! read back what they asked for.
//!
//! A child never outlives the switch, and never runs unlocked (DESIGN.md, invariant 8): it
//! gets `PR_SET_PDEATHSIG` (SIGKILL), and it inherits the switch's lock, an `flock` on one open
//! file description, which stays held until the last process holding it is gone. A rerun
//! after a SIGKILL of etcflip alone therefore waits for the straggler (see `state::lock`)
//! instead of racing it (`tests/orphans.rs`).

use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, RawFd};
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::rootfs::{Owner, Root};
use crate::state::{state_dir, Lock};

/// Environment variable naming a specific `systemd-tmpfiles` binary (tests use 252/254/257).
pub const TMPFILES_ENV: &str = "ETCFLIP_TMPFILES";

/// Where `systemd-tmpfiles` is looked for after `PATH` (activation may run with a bare PATH).
const FALLBACK_DIRS: [&str; 3] = ["/usr/bin", "/bin", "/run/current-system/sw/bin"];

const INSTALL_HINT: &str = "etcflip needs it to create and remove /etc links. Install it: \
    Debian/Ubuntu `apt-get install systemd` (or the smaller `systemd-standalone-tmpfiles`), \
    Fedora `dnf install systemd`; on NixOS it is part of systemd";

/// Finds `systemd-tmpfiles` (`$ETCFLIP_TMPFILES`, then `PATH`, then the usual directories),
/// or says which package provides it. Called before a switch's first write.
pub fn find_tmpfiles() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(FALLBACK_DIRS.map(PathBuf::from))
        .collect();
    find_in(std::env::var_os(TMPFILES_ENV).map(PathBuf::from), &dirs)
}

fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The search itself, separate so that the messages can be tested.
fn find_in(over: Option<PathBuf>, dirs: &[PathBuf]) -> Result<PathBuf> {
    if let Some(p) = over {
        if is_executable(&p) {
            return Ok(p);
        }
        bail!(
            "{TMPFILES_ENV}={} is not an executable systemd-tmpfiles; {INSTALL_HINT}",
            p.display()
        );
    }
    dirs.iter()
        .map(|d| d.join("systemd-tmpfiles"))
        .find(|p| is_executable(p))
        .with_context(|| format!("systemd-tmpfiles was not found in PATH; {INSTALL_HINT}"))
}

/// The `systemd-tmpfiles` a switch runs, and the lock its children hold.
pub struct Engine<'l> {
    bin: PathBuf,
    lock: BorrowedFd<'l>,
}

impl<'l> Engine<'l> {
    /// Children of `bin` will hold `lock` (the switch's) for as long as they live.
    pub fn new(bin: PathBuf, lock: &'l Lock) -> Engine<'l> {
        Engine {
            bin,
            lock: lock.fd(),
        }
    }
}

/// Makes the child of `cmd` die with this process (SIGKILL) and hold the lock open at
/// `lock_fd` until it exits.
///
/// The kernel sends the parent-death signal when the *thread* that forked the child exits,
/// not the process: spawn only from a thread that lives as long as the switch (the main
/// thread; `apply` runs there).
#[allow(unsafe_code)]
fn tie_to_switch(cmd: &mut std::process::Command, lock_fd: RawFd) {
    use std::os::unix::process::CommandExt as _;
    // Taken before the fork: in the child, a different parent means that this process died
    // before the death signal was armed, and the child must not run at all.
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // calls are allowed. It makes three plain system calls (prctl, getppid, fcntl) through
    // nix's thin wrappers, which neither allocate nor lock; an error becomes an io::Error
    // from a raw errno (no allocation either), which std reports to the parent and then
    // _exits. `lock_fd` is open in the child: it is a copy of the parent's descriptor table,
    // and the parent keeps the lock open while it spawns (`Engine` borrows the `Lock`).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            // Clears close-on-exec in the child's copy of the table only: tmpfiles keeps the
            // lock's open file description, and with it the lock, until it exits.
            let fd = BorrowedFd::borrow_raw(lock_fd);
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )?;
            Ok(())
        });
    }
}

/// `--create` or `--remove`.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Create links and directories.
    Create,
    /// Remove paths (`r` lines).
    Remove,
}

/// Runs tmpfiles over `lines` below `root`. Returns tmpfiles' complaints (stderr) when it
/// exits non-zero; the caller's read-back decides whether that matters.
pub fn run(root: &mut Root, engine: &Engine, mode: Mode, lines: &str) -> Result<Option<String>> {
    let bin = &engine.bin;
    let (flag, name) = match mode {
        Mode::Create => ("--create", "create.conf"),
        Mode::Remove => ("--remove", "remove.conf"),
    };
    // Transient, read once by tmpfiles and removed: no rename needed (a killed run's copy is
    // swept with the state directory under the lock).
    let rel = format!("{}/{name}", state_dir());
    root.remove_tree_if_present(&rel)?;
    root.write_new(&rel, &[lines.as_bytes()], 0o644, Owner::current())?;
    let conf = root.host_path().join(&rel);
    let mut cmd = Command::new(bin);
    cmd.arg(flag);
    if root.host_path() != std::path::Path::new("/") {
        cmd.arg(format!("--root={}", root.host_path().display()));
    }
    cmd.arg(&conf);
    tie_to_switch(&mut cmd, engine.lock.as_fd().as_raw_fd());
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", bin.display()));
    root.unlink(&rel)?;
    let out = out?;
    if out.status.success() {
        return Ok(None);
    }
    if out.status.code().is_none() {
        bail!("{} was killed ({})", bin.display(), out.status);
    }
    Ok(Some(format!(
        "{} {flag} exited with {}: {}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tmpfiles_names_the_package() {
        let err = find_in(None, &[PathBuf::from("/nonexistent")]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("not found in PATH"), "{msg}");
        assert!(msg.contains("apt-get install systemd"), "{msg}");
        let err = find_in(Some(PathBuf::from("/nonexistent/tmpfiles")), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("ETCFLIP_TMPFILES=/nonexistent/tmpfiles"));
    }

    #[test]
    fn found_in_the_first_directory_that_has_it() {
        let dirs = [PathBuf::from("/nonexistent"), PathBuf::from("/usr/bin")];
        if std::path::Path::new("/usr/bin/systemd-tmpfiles").exists() {
            assert_eq!(
                find_in(None, &dirs).unwrap(),
                PathBuf::from("/usr/bin/systemd-tmpfiles")
            );
        }
    }
}
