//! Child processes of a switch: none outlives it, and none runs unlocked (README, invariant
//! 8). Each gets `PR_SET_PDEATHSIG` (SIGKILL) and inherits the switch's lock, an `flock` on
//! one open file description, which stays held until the last process holding it is gone. A
//! rerun after a SIGKILL of etcflip alone therefore waits for the straggler (see `txn/lock.rs`)
//! instead of racing it (`tests/orphans.rs`). Dropped while still running (an error
//! elsewhere), a child is killed and reaped.

use std::os::fd::{AsRawFd as _, BorrowedFd, RawFd};
use std::process::{Child, Command};

/// A running child tied to the switch (see the module comment).
pub(crate) struct Tied {
    child: Child,
}

impl Tied {
    /// Spawns `cmd` tied to the switch whose lock is open at `lock` (`Lock::fd`).
    pub(crate) fn spawn(cmd: &mut Command, lock: BorrowedFd) -> std::io::Result<Tied> {
        tie_to_switch(cmd, lock.as_raw_fd());
        Ok(Tied {
            child: cmd.spawn()?,
        })
    }

    /// The child itself.
    pub(crate) fn get(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the child to exit.
    pub(crate) fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait()
    }
}

impl Tied {
    /// Kills the child if it still runs, and reaps it.
    pub(crate) fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Tied {
    fn drop(&mut self) {
        self.stop();
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
    // calls are allowed. It makes plain system calls (prctl, getppid, fcntl) through nix's
    // thin wrappers, which neither allocate nor lock; an error becomes an io::Error from a
    // raw errno (no allocation either), which std reports to the parent and then _exits.
    // `lock_fd` is open in the child: it has a copy of the parent's descriptor table, and the
    // parent keeps the lock open while it spawns (`Engine` borrows the `Lock`).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            // Clears close-on-exec in the child's copy of the table only: tmpfiles keeps the
            // lock's open file description, and with it the lock, until it exits.
            nix::fcntl::fcntl(
                BorrowedFd::borrow_raw(lock_fd),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )?;
            Ok(())
        });
    }
}
