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

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, Flock, FlockArg};

/// How a wait for a lock ends early: called between attempts, it returns why the caller wants
/// to stop (a signal arrived), or `None` to keep waiting.
pub type Interrupted<'a> = &'a mut dyn FnMut() -> Option<String>;

/// Why a wait ended without the lock (the caller says what that means for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotLocked {
    /// Someone else held it for the whole wait.
    Busy,
    /// The caller asked to stop (`Interrupted` said why).
    Interrupted(String),
    /// This file system cannot lock the file this way.
    Unsupported,
}

/// What one attempt at a lock gave: the lock `H`, or the file `T` back.
enum Attempt<H, T> {
    Held(H),
    /// Someone else holds it; here is the file back.
    Busy(T),
    /// This file system cannot lock it this way.
    Unsupported,
}

/// Tries `attempt` until it succeeds, `limit` passes, or `interrupted` says to stop.
fn poll<H, T>(
    mut fd: T,
    mut attempt: impl FnMut(T) -> Result<Attempt<H, T>>,
    limit: Duration,
    interrupted: Interrupted,
) -> Result<Result<H, NotLocked>> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        match attempt(fd)? {
            Attempt::Held(held) => return Ok(Ok(held)),
            Attempt::Unsupported => return Ok(Err(NotLocked::Unsupported)),
            Attempt::Busy(_) if Instant::now() >= deadline => return Ok(Err(NotLocked::Busy)),
            Attempt::Busy(back) => {
                if let Some(why) = interrupted() {
                    return Ok(Err(NotLocked::Interrupted(why)));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
                fd = back;
            }
        }
    }
}

/// Locks `fd` exclusively with `flock`, waiting up to `limit`. [`NotLocked::Unsupported`] when
/// the file system cannot `flock` it (NFS emulates flock with record locks, which need a file
/// open for writing). `shown` names the file in errors.
pub fn flock(
    fd: OwnedFd,
    (shown, limit): (&str, Duration),
    interrupted: Interrupted,
) -> Result<Result<Flock<OwnedFd>, NotLocked>> {
    let attempt = |fd| match Flock::lock(fd, FlockArg::LockExclusiveNonblock) {
        Ok(held) => Ok(Attempt::Held(held)),
        Err((back, Errno::EWOULDBLOCK)) => Ok(Attempt::Busy(back)),
        Err((_, Errno::EBADF | Errno::ENOLCK | Errno::EOPNOTSUPP)) => Ok(Attempt::Unsupported),
        Err((_, e)) => bail!("cannot lock {shown}: {e}"),
    };
    poll(fd, attempt, limit, interrupted)
}

/// An `fcntl` write lock on a whole file (see the module comment); released when dropped.
#[derive(Debug)]
pub struct RecordLock {
    fd: OwnedFd,
}

impl RecordLock {
    /// Locks all of `fd` (open for writing: a write lock needs it), waiting up to `limit`.
    pub fn take(
        fd: OwnedFd,
        (shown, limit): (&str, Duration),
        interrupted: Interrupted,
    ) -> Result<Result<RecordLock, NotLocked>> {
        let attempt = |fd: OwnedFd| match fcntl(&fd, FcntlArg::F_OFD_SETLK(&whole(libc::F_WRLCK))) {
            Ok(_) => Ok(Attempt::Held(fd)),
            Err(Errno::EAGAIN | Errno::EACCES) => Ok(Attempt::Busy(fd)),
            Err(e) => bail!("cannot lock {shown}: {e}"),
        };
        Ok(poll(fd, attempt, limit, interrupted)?.map(|fd| RecordLock { fd }))
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
