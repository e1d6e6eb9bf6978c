//! SIGTERM and SIGINT during a switch: blocked and polled at safe points, so the switch stops
//! at the next consistent point instead of dying between two writes.
//!
//! Before the flip, a signal stops the switch there (nothing visible has changed; the journal
//! lets a rerun finish). After the flip the switch runs to its commit, then reports the signal
//! with a non-zero exit. A signalfd is used so that no signal handler (and no `unsafe`) is
//! needed.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Pending-signal watcher for one switch.
pub(crate) struct Signals {
    fd: Option<SignalFd>,
    seen: Option<Signal>,
}

impl Signals {
    /// Blocks SIGTERM and SIGINT for this thread and starts watching them. Without a signalfd
    /// (very old kernels) signals keep their default effect.
    pub(crate) fn watch() -> Signals {
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGINT);
        let fd = set.thread_block().ok().and_then(|()| {
            SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ok()
        });
        Signals { fd, seen: None }
    }

    /// The first signal received so far, if any.
    pub(crate) fn pending(&mut self) -> Option<Signal> {
        if self.seen.is_none() {
            if let Some(fd) = &self.fd {
                if let Ok(Some(info)) = fd.read_signal() {
                    self.seen = i32::try_from(info.ssi_signo)
                        .ok()
                        .and_then(|n| Signal::try_from(n).ok());
                }
            }
        }
        self.seen
    }
}
