//! The switch's exclusive lock.
//!
//! Every switch locks `/etc` itself (an `flock` on its directory, which needs no write
//! access and writes nothing), and also `/etc/.etcflip/lock` once that exists (what etcflip
//! locked before; a switch that is going to write makes it, [`Lock::for_writing`]). So a
//! refused or no-op switch, also on a root etcflip never touched and on a read-only `/etc`,
//! changes nothing at all, and switches still exclude one another and earlier versions.
//!
//! While another etcflip, or a `systemd-tmpfiles` child of a killed one (it inherits the
//! lock and holds it until it dies, see `runner`), holds it, a switch waits up to
//! [`LOCK_WAIT`], then fails: a rerun right after a kill converges instead of failing, and
//! two switches started together run one after the other.

use std::cell::OnceCell;
use std::os::fd::{AsFd as _, BorrowedFd, OwnedFd};

use anyhow::{bail, Context as _, Result};
use nix::fcntl::{openat, Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;

use crate::rootfs::{Node, Root};
use crate::signals::Signals;
use crate::state::{state_dir, sweep};

/// How long a switch waits for another one's lock before it gives up.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The exclusive lock; released when dropped (and the children that inherited it are gone).
pub struct Lock {
    /// `/etc`'s directory, locked by every switch.
    etc: Flock<OwnedFd>,
    /// `/etc/.etcflip/lock`, once it exists.
    file: OnceCell<Flock<OwnedFd>>,
}

impl Lock {
    /// The locked descriptor children inherit (`/etc`'s, which every switch locks).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.etc.as_fd()
    }

    /// Before the first write: makes the state directory and the lock file, and locks it.
    pub fn for_writing(&self, root: &mut Root) -> Result<()> {
        if self.file.get().is_none() {
            root.make_dirs(&state_dir())?;
            let locked = lock_file(root, true, &mut None)?;
            let _ = self.file.set(locked);
            sweep(root, &state_dir())?;
        }
        Ok(())
    }
}

/// Whether [`lock`] writes nothing: `/etc` is there (on a root without it, `/etc` is made).
pub fn writes_nothing(root: &mut Root) -> Result<bool> {
    Ok(matches!(root.node_with("etc", false)?, Node::Dir(_)))
}

/// Takes the lock (see the module comment), and sweeps what a killed run left in the state
/// directory. SIGTERM or SIGINT while it waits (`signals`) ends the wait at once: nothing has
/// been written.
pub fn lock(root: &mut Root, signals: &mut Option<Signals>) -> Result<Lock> {
    if !writes_nothing(root)? {
        root.make_dirs("etc")?;
    }
    let etc = root
        .dir("etc")?
        .try_clone()
        .context("cannot duplicate the descriptor of /etc")?;
    let etc = wait(etc, &root.show("etc"), signals)?;
    let file = OnceCell::new();
    let rel = format!("{}/lock", state_dir());
    if matches!(root.node_with(&rel, false)?, Node::File(_)) {
        let _ = file.set(lock_file(root, false, signals)?);
        sweep(root, &state_dir())?;
    }
    Ok(Lock { etc, file })
}

/// Opens (`create`: or makes) `/etc/.etcflip/lock`, read-only (flock needs no write access),
/// and locks it.
fn lock_file(
    root: &mut Root,
    create: bool,
    signals: &mut Option<Signals>,
) -> Result<Flock<OwnedFd>> {
    let dir = state_dir();
    let shown = root.show(&format!("{dir}/lock"));
    let mut flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if create {
        flags |= OFlag::O_CREAT;
    }
    let fd = openat(
        root.dir(&dir)?,
        "lock",
        flags,
        Mode::from_bits_truncate(0o600),
    )
    .with_context(|| format!("cannot open the lock {shown}"))?;
    wait(fd, &shown, signals)
}

/// Locks `fd` exclusively, waiting up to [`LOCK_WAIT`] unless a signal arrives.
fn wait(mut fd: OwnedFd, shown: &str, signals: &mut Option<Signals>) -> Result<Flock<OwnedFd>> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    // Polled rather than blocking: a blocking flock cannot time out without a signal handler.
    // A dying straggler lets go within milliseconds, so the first pauses are short.
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match Flock::lock(fd, FlockArg::LockExclusiveNonblock) {
            Ok(flock) => return Ok(flock),
            Err((back, nix::errno::Errno::EWOULDBLOCK)) if std::time::Instant::now() < deadline => {
                if let Some(sig) = signals.as_mut().and_then(Signals::pending) {
                    bail!("interrupted by {sig} while waiting for {shown}; nothing was written");
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
                fd = back;
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => bail!(
                "another etcflip is working on this root (it has held {shown} for {} s)",
                LOCK_WAIT.as_secs()
            ),
            Err((_, e)) => bail!("cannot lock {shown}: {e}"),
        }
    }
}
