//! The switch's exclusive lock.
//!
//! Every switch locks `/etc` itself (an `flock` on its directory, which needs no write
//! access and writes nothing), and also `/etc/.etcflip/lock` once that exists (what etcflip
//! locked before; a switch that is going to write makes it, [`Lock::for_writing`]). So a
//! refused or no-op switch, also on a root etcflip never touched and on a read-only `/etc`,
//! changes nothing at all, and switches still exclude one another and earlier versions: an
//! earlier etcflip locks only the file, so a switch that finds the file made by someone else
//! while it planned stops there, with nothing written.
//!
//! Where a directory cannot be `flock`ed (NFS emulates flock with POSIX locks, which need a
//! file open for writing), the lock file alone is the lock, made at once, as before.
//!
//! While another etcflip, or a `systemd-tmpfiles` child of a killed one (it inherits the
//! lock and holds it until it dies, see `txn/children.rs`), holds it, a switch waits up to
//! `LOCK_WAIT` (10 s), then fails: a rerun right after a kill converges instead of failing, and
//! two switches started together run one after the other.

use std::cell::OnceCell;
use std::os::fd::{AsFd as _, BorrowedFd, OwnedFd};

use anyhow::{bail, Context as _, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, Flock, OFlag};
use nix::sys::stat::Mode;

use crate::fs::lock::{Interrupted, NotLocked};
use crate::fs::{Node, Root};
use crate::txn::state::state_dir;

/// Removes what a killed run left, once the lock is held (the domains know what that is: see
/// [`crate::txn::state::sweep`]). Nothing else writes there while we hold the lock.
pub(crate) type Leftovers = fn(&mut Root) -> Result<()>;

/// How long a switch waits for another one's lock before it gives up.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The exclusive lock; released when dropped (and the children that inherited it are gone).
pub(crate) struct Lock {
    /// `/etc`'s directory, locked by every switch (`None` where it cannot be, see the module
    /// comment; the file is then locked from the start).
    etc: Option<Flock<OwnedFd>>,
    /// `/etc/.etcflip/lock`, once it exists.
    file: OnceCell<Flock<OwnedFd>>,
    /// Swept when the lock file is locked.
    leftovers: Leftovers,
}

impl Lock {
    /// The locked descriptor children inherit.
    pub(crate) fn fd(&self) -> Result<BorrowedFd<'_>> {
        match (&self.etc, self.file.get()) {
            (Some(etc), _) => Ok(etc.as_fd()),
            (None, Some(file)) => Ok(file.as_fd()),
            (None, None) => bail!("internal: a lock holds neither /etc nor its lock file"),
        }
    }

    /// Before the first write: makes the state directory and the lock file, and locks it. A
    /// lock file someone else made while this switch planned means an earlier etcflip (which
    /// locks only the file) may have changed the root meanwhile: the switch stops, having
    /// written nothing but the state directory, and a rerun plans again.
    pub(crate) fn for_writing(&self, root: &mut Root) -> Result<()> {
        if self.file.get().is_none() {
            root.make_dirs(&state_dir())?;
            let (locked, made) = lock_file(root, Make::Exclusive, &mut || None)?;
            if !made {
                bail!(
                    "another etcflip worked on {} while this switch planned; run it again",
                    root.show("etc")
                );
            }
            let _ = self.file.set(locked);
            (self.leftovers)(root)?;
        }
        Ok(())
    }
}

/// Whether [`lock`] writes nothing: `/etc` is there (on a root without it, `/etc` is made).
pub(crate) fn writes_nothing(root: &mut Root) -> Result<bool> {
    Ok(matches!(root.node_with("etc", false)?, Node::Dir(_)))
}

/// Takes the lock (see the module comment), and sweeps what a killed run left (`leftovers`)
/// once the lock file is locked. A signal while it waits (`interrupted` says which) ends the
/// wait at once: nothing has been written.
pub(crate) fn lock(
    root: &mut Root,
    interrupted: Interrupted,
    leftovers: Leftovers,
) -> Result<Lock> {
    root.make_dirs("etc")?; // only where it is missing
    let etc = root
        .dir("etc")?
        .try_clone()
        .context("cannot duplicate the descriptor of /etc")?;
    let etc = wait(etc, &root.show("etc"), interrupted)?;
    let file = OnceCell::new();
    let rel = format!("{}/lock", state_dir());
    if etc.is_none() {
        root.make_dirs(&state_dir())?;
        let _ = file.set(lock_file(root, Make::IfMissing, interrupted)?.0);
        leftovers(root)?;
    } else if matches!(root.node_with(&rel, false)?, Node::File(_)) {
        let _ = file.set(lock_file(root, Make::No, interrupted)?.0);
        leftovers(root)?;
    }
    Ok(Lock {
        etc,
        file,
        leftovers,
    })
}

/// Whether [`lock_file`] may make the file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Make {
    No,
    IfMissing,
    /// Only if missing, and say whether it was (`O_EXCL`).
    Exclusive,
}

/// Opens `/etc/.etcflip/lock` (making it as `make` says) and locks it; also says whether this
/// call made it. Opened for writing where it can be (NFS needs it for a lock), else read-only
/// (a read-only `/etc`: flock itself needs no write access).
fn lock_file(
    root: &mut Root,
    make: Make,
    interrupted: Interrupted,
) -> Result<(Flock<OwnedFd>, bool)> {
    let dir = state_dir();
    let shown = root.show(&format!("{dir}/lock"));
    let base = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let open = |root: &mut Root, flags: OFlag| -> Result<Result<OwnedFd, Errno>> {
        Ok(openat(
            root.dir(&dir)?,
            "lock",
            base | flags,
            Mode::from_bits_truncate(0o600),
        ))
    };
    let (fd, created) = match make {
        Make::Exclusive => match open(root, OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL)? {
            Ok(fd) => (Ok(fd), true),
            Err(Errno::EEXIST) => (open(root, OFlag::O_RDWR)?, false),
            Err(e) => (Err(e), false),
        },
        Make::IfMissing => (open(root, OFlag::O_RDWR | OFlag::O_CREAT)?, false),
        Make::No => match open(root, OFlag::O_RDWR)? {
            Err(Errno::EROFS | Errno::EACCES) => (open(root, OFlag::O_RDONLY)?, false),
            other => (other, false),
        },
    };
    let fd = fd.map_err(|e| anyhow::anyhow!("cannot open the lock {shown}: {e}"))?;
    match wait(fd, &shown, interrupted)? {
        Some(locked) => Ok((locked, created)),
        None => bail!("cannot lock {shown}: flock is not supported there"),
    }
}

/// Locks `fd` exclusively (see [`crate::fs::lock::flock`]), waiting up to `LOCK_WAIT` unless a
/// signal arrives; `None` when the file system cannot `flock` it (see the module comment).
fn wait(fd: OwnedFd, shown: &str, interrupted: Interrupted) -> Result<Option<Flock<OwnedFd>>> {
    match crate::fs::lock::flock(fd, (shown, LOCK_WAIT), interrupted)? {
        Ok(held) => Ok(Some(held)),
        Err(NotLocked::Unsupported) => Ok(None),
        Err(NotLocked::Busy) => bail!(
            "another etcflip is working on this root (it has held {shown} for {} s)",
            LOCK_WAIT.as_secs()
        ),
        Err(NotLocked::Interrupted(why)) => {
            bail!("interrupted by {why} while waiting for {shown}; nothing was written")
        }
    }
}
