//! Runs `systemd-tmpfiles`, feeding it its lines through a pipe (`systemd-tmpfiles --create -`,
//! read by 252, 254 and 257 alike): no snippet file, and a child can be started before its
//! lines are known, so that its start-up (5-9 ms) overlaps with etcflip's own work. tmpfiles
//! reads all of its input before it acts, so an idle child changes nothing. Its exit code is
//! advisory (a data error in one line can mask a create error in another), so callers always
//! read back what they asked for.
//!
//! Each child runs below `<root>/etc` (`--root=<where that directory is now>`, see
//! [`Engine::start`]; lines name `/<path below etc>`): everything etcflip hands tmpfiles is
//! below `/etc`, and each path component less saves tmpfiles about eight system calls per line
//! (it walks every path twice, component by component). `<root>/etc` is a real directory by
//! then: the lock lives below it, and [`Root`] opens it without following links.
//!
//! A child never outlives the switch, and never runs unlocked (README, invariant 8): it
//! gets `PR_SET_PDEATHSIG` (SIGKILL), and it inherits the switch's lock, an `flock` on one open
//! file description, which stays held until the last process holding it is gone. A rerun
//! after a SIGKILL of etcflip alone therefore waits for the straggler (see `txn/lock.rs`)
//! instead of racing it (`tests/orphans.rs`).

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::os::fd::{AsRawFd as _, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};

use anyhow::{bail, Context as _, Result};

use crate::fs::Root;
use crate::txn::children::Tied;
use crate::txn::lock::Lock;

/// Environment variable naming a specific `systemd-tmpfiles` binary (tests use 252/254/257).
pub(crate) const TMPFILES_ENV: &str = "ETCFLIP_TMPFILES";

/// Where `systemd-tmpfiles` is looked for after `PATH` (activation may run with a bare PATH).
const FALLBACK_DIRS: [&str; 3] = ["/usr/bin", "/bin", "/run/current-system/sw/bin"];

const INSTALL_HINT: &str = "etcflip needs it to create /etc links. Install it: \
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
pub(crate) struct Engine<'l> {
    bin: PathBuf,
    lock: BorrowedFd<'l>,
    /// `<root>/etc`, the children's root (see [`Engine::start`]).
    etc: OwnedFd,
}

impl<'l> Engine<'l> {
    /// Children of `bin` will hold `lock` (the switch's) for as long as they live, and work
    /// in the root's `etc`, as `root` has it open now.
    pub(crate) fn new(bin: PathBuf, lock: &'l Lock, root: &mut Root) -> Result<Engine<'l>> {
        let etc = root
            .dir("etc")?
            .try_clone()
            .context("cannot duplicate the descriptor of the root's /etc")?;
        Ok(Engine {
            bin,
            lock: lock.fd()?,
            etc,
        })
    }
}

/// A path below the root as a child sees it: `etc/a/b` is `/a/b` (see the module comment).
pub(crate) fn in_etc(rel: &str) -> String {
    format!("/{}", rel.strip_prefix("etc/").unwrap_or(rel))
}

/// At most this much is written to a pipe at once, always whole lines: the kernel writes up
/// to `PIPE_BUF` bytes atomically, so a child whose parent dies mid-feed (it then sees the end
/// of its input just before its death signal) never reads half a line, such as a link target
/// cut short.
const PIPE_BUF: usize = 4096;

/// The most a pipe is grown to (Linux's default `pipe-max-size`), so that a whole part fits
/// and feeding one child never waits for it to parse while the next has nothing yet.
const PIPE_MAX: usize = 1 << 20;

/// One running `systemd-tmpfiles`, reading its lines from a pipe. Dropped unfinished (an
/// error elsewhere), it is killed and reaped ([`Tied`]): nothing runs on after the switch gave
/// up.
pub(crate) struct Tmpfiles {
    child: Tied,
    stdin: Option<ChildStdin>,
    stderr: File,
    shown: String,
}

impl Engine<'_> {
    /// Where the root's `etc` that etcflip opened is now (see [`Engine::start`]).
    fn etc_path(&self) -> Result<PathBuf> {
        std::fs::read_link(format!("/proc/self/fd/{}", self.etc.as_raw_fd()))
            .context("cannot read back where the root's /etc is (is /proc mounted?)")
    }

    /// Starts `systemd-tmpfiles --create -` below `<root>/etc`; it acts once
    /// [`Tmpfiles::finish`] closes its input.
    ///
    /// Its root is the `etc` directory etcflip opened (without following links), named by
    /// where that open directory is now (read back from its descriptor at the spawn, as bytes):
    /// never through the `--root` the user gave, so a link re-pointed meanwhile, or a root
    /// whose name is not UTF-8, cannot make it work on another tree. (`/proc/self/fd/N` of an
    /// inherited descriptor would also do, and all of 252, 254 and 257 take it, but then every
    /// path tmpfiles walks starts in procfs: ≈ 20% more time per line, measured on 10,000.)
    pub(crate) fn start(&self) -> Result<Tmpfiles> {
        let shown = format!("{} --create", self.bin.display());
        let errors = nix::sys::memfd::memfd_create(
            c"etcflip-tmpfiles-stderr",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .context("cannot make a buffer for systemd-tmpfiles' messages")?;
        let stderr = File::from(errors);
        let mut root_arg = std::ffi::OsString::from("--root=");
        root_arg.push(self.etc_path()?);
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--create")
            .arg(root_arg)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(
                stderr
                    .try_clone()
                    .context("cannot duplicate a descriptor")?,
            );
        let mut child = Tied::spawn(&mut cmd, self.lock)
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        let stdin = child.get().stdin.take();
        Ok(Tmpfiles {
            child,
            stdin,
            stderr,
            shown,
        })
    }
}

impl Tmpfiles {
    /// Sends `lines` (whole lines, each ending in a newline).
    pub(crate) fn feed(&mut self, lines: &str) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .context("internal: input already closed")?;
        if lines.len() > 1 << 16 {
            // Only a speed-up: a smaller pipe just makes the writes below wait for the child.
            let size = i32::try_from(lines.len().min(PIPE_MAX)).unwrap_or(i32::MAX);
            let _ = nix::fcntl::fcntl(&*stdin, nix::fcntl::FcntlArg::F_SETPIPE_SZ(size));
        }
        let mut rest = lines.as_bytes();
        while !rest.is_empty() {
            let cut = if rest.len() <= PIPE_BUF {
                rest.len()
            } else {
                // The last newline within PIPE_BUF, else (one line longer than that, which
                // cannot be atomic) the end of that line.
                match rest[..PIPE_BUF].iter().rposition(|&b| b == b'\n') {
                    Some(i) => i + 1,
                    None => rest
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(rest.len(), |i| i + 1),
                }
            };
            let (chunk, next) = rest.split_at(cut);
            match stdin.write_all(chunk) {
                // The child is gone: its exit status and the read-back tell the rest.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                r => r.with_context(|| format!("cannot send lines to {}", self.shown))?,
            }
            rest = next;
        }
        Ok(())
    }

    /// Closes the input: tmpfiles reads all of it before acting, so this is what sets the
    /// child to work.
    pub(crate) fn close(&mut self) {
        drop(self.stdin.take());
    }

    /// Closes the input (if still open) and waits. Returns tmpfiles' complaints (stderr)
    /// when it exits non-zero; the caller's read-back decides whether that matters.
    pub(crate) fn finish(mut self) -> Result<Option<String>> {
        self.close();
        let status = self
            .child
            .wait()
            .with_context(|| format!("cannot wait for {}", self.shown))?;
        if status.success() {
            return Ok(None);
        }
        if status.code().is_none() {
            bail!("{} was killed ({status})", self.shown);
        }
        let mut said = String::new();
        self.stderr.rewind().ok();
        let _ = self.stderr.read_to_string(&mut said);
        Ok(Some(format!(
            "{} exited with {status}: {}",
            self.shown,
            said.trim()
        )))
    }
}

impl Drop for Tmpfiles {
    /// Dropped unfinished, the child is killed *before* its input closes: at the end of its
    /// input, tmpfiles would start acting on the lines it had so far.
    fn drop(&mut self) {
        self.child.stop();
    }
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
