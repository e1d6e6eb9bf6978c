//! Exclusive locks on open files, taken with a bounded wait.
//!
//! Two kinds, because Linux keeps them apart: a `flock(2)` and an `fcntl(2)` record lock on the
//! same file do not exclude each other.
//! - [`flock`]: what etcflip's own switch lock is (see `txn/lock.rs`); it needs no write
//!   access, so it also works on a read-only `/etc`.
//! - [`RecordLock`]: an `fcntl` write lock on the whole file, the kind glibc's and
//!   shadow-utils' `lckpwdf` take on `/etc/.pwd.lock` before they touch the user database.
//!   It is an open-file-description lock (`F_OFD_SETLK`): it conflicts with their
//!   process-associated locks as with other OFD locks, and unlike those it is not dropped when
//!   some other descriptor of the same file is closed in this process.
//!
//! Both are polled rather than blocking: a blocking lock cannot time out without a signal
//! handler. A dying holder lets go within milliseconds, so the first pauses are short.

use std::os::fd::{AsFd as _, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, Flock, FlockArg};

/// How a wait for a lock ends early: called between attempts, it returns why the caller wants
/// to stop (a signal arrived), or `None` to keep waiting.
pub type Interrupted<'a> = &'a mut dyn FnMut() -> Option<String>;

/// How long to wait for a lock, and how to name it in errors.
#[derive(Debug, Clone, Copy)]
pub struct Waiting<'a> {
    /// The locked file as the user knows it.
    pub shown: &'a str,
    /// Who holds it when it is busy ("another etcflip").
    pub holder: &'a str,
    /// How long to wait before giving up.
    pub limit: Duration,
}

/// What one attempt at a lock gave: the lock `H`, or the file `T` back.
enum Attempt<H, T> {
    Held(H),
    /// Someone else holds it; here is the file back.
    Busy(T),
    /// This file system cannot lock it this way.
    Unsupported,
}

/// Tries `attempt` until it succeeds, `w.limit` passes, or `interrupted` says to stop.
fn poll<H, T>(
    mut fd: T,
    mut attempt: impl FnMut(T) -> Result<Attempt<H, T>>,
    w: Waiting,
    interrupted: Interrupted,
) -> Result<Option<H>> {
    let deadline = Instant::now() + w.limit;
    let mut pause = Duration::from_millis(1);
    loop {
        match attempt(fd)? {
            Attempt::Held(held) => return Ok(Some(held)),
            Attempt::Unsupported => return Ok(None),
            Attempt::Busy(_) if Instant::now() >= deadline => bail!(
                "{} is working on this root (it has held {} for {} s)",
                w.holder,
                w.shown,
                w.limit.as_secs()
            ),
            Attempt::Busy(back) => {
                if let Some(why) = interrupted() {
                    bail!(
                        "interrupted by {why} while waiting for {}; nothing was written",
                        w.shown
                    );
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
                fd = back;
            }
        }
    }
}

/// Locks `fd` exclusively with `flock`, waiting up to `w.limit`; `None` when the file system
/// cannot `flock` it (NFS emulates flock with record locks, which need a file open for
/// writing). `shown` names the file in errors.
pub fn flock(fd: OwnedFd, w: Waiting, interrupted: Interrupted) -> Result<Option<Flock<OwnedFd>>> {
    let attempt = |fd| match Flock::lock(fd, FlockArg::LockExclusiveNonblock) {
        Ok(held) => Ok(Attempt::Held(held)),
        Err((back, Errno::EWOULDBLOCK)) => Ok(Attempt::Busy(back)),
        Err((_, Errno::EBADF | Errno::ENOLCK | Errno::EOPNOTSUPP)) => Ok(Attempt::Unsupported),
        Err((_, e)) => bail!("cannot lock {}: {e}", w.shown),
    };
    poll(fd, attempt, w, interrupted)
}

/// An `fcntl` write lock on a whole file (see the module comment); released when dropped.
#[derive(Debug)]
pub struct RecordLock {
    fd: OwnedFd,
}

impl RecordLock {
    /// Locks all of `fd` (open for writing: a write lock needs it), waiting up to `w.limit`.
    pub fn take(fd: OwnedFd, w: Waiting, interrupted: Interrupted) -> Result<RecordLock> {
        let attempt = |fd: OwnedFd| match fcntl(&fd, FcntlArg::F_OFD_SETLK(&whole(libc::F_WRLCK))) {
            Ok(_) => Ok(Attempt::Held(fd)),
            Err(Errno::EAGAIN | Errno::EACCES) => Ok(Attempt::Busy(fd)),
            Err(e) => bail!("cannot lock {}: {e}", w.shown),
        };
        match poll(fd, attempt, w, interrupted)? {
            Some(fd) => Ok(RecordLock { fd }),
            None => bail!("cannot lock {}", w.shown),
        }
    }

    /// The locked descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for RecordLock {
    fn drop(&mut self) {
        // Closing the descriptor would release it too; unlocking first says so explicitly and
        // does not depend on no duplicate being left open.
        let _ = fcntl(&self.fd, FcntlArg::F_OFD_SETLK(&whole(libc::F_UNLCK)));
    }
}

/// A `struct flock` of type `kind` over the whole file: start 0, length 0 (whatever it grows
/// to); `l_pid` must be 0 for OFD locks.
fn whole(kind: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: libc::c_short::try_from(kind).unwrap_or(libc::c_short::MAX),
        l_whence: 0, // SEEK_SET
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}
