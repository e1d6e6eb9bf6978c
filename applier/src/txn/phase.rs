//! The order of a switch's phases, and where a signal may stop it.
//!
//! | phase | what | a signal that arrived before it |
//! |---|---|---|
//! | 0 load | generation, lock, state | ends a lock wait; nothing written |
//! | 1 plan | look, plan (pure); `--dry-run` and a no-op stop here | waits |
//! | 2 journal | the target recorded before the first write | **stops**: nothing written |
//! | 3 users | `group`, `passwd`, `shadow`, NixOS's ledgers (`users/write.rs`) | waits |
//! | 4 prepare | new entries made, invisible: staged, read back | waits |
//! | 5 flip | one rename: readers see the new generation | **stops**: nothing visible changed |
//! | 6 finish | put staged paths in place (6), remove what is stale and ours (7) | noted |
//! | 8 wrappers | one rename flips `/run/wrappers/bin` to the directory built in phase 4 | noted |
//! | 9 commit | the journal's target becomes the applied state | noted |
//!
//! Phase 3 comes before anything that resolves names, so the wrappers' directory, built in
//! phase 4 with their owners, is built after it.
//!
//! A switch stops only on entering the journal or the flip: before the flip, readers still see
//! the old generation and the journal lets a rerun finish. After the flip it runs to its
//! commit and reports the signal ([`Progress::finished_despite`]).

use anyhow::{bail, Result};

use super::signals::Signals;

/// A phase of a switch, in order (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// 0: load and lock.
    Load,
    /// 1: look and plan.
    Plan,
    /// 2: journal the target.
    Journal,
    /// 3: the user database.
    Users,
    /// 4: make what is new, still invisible.
    Prepare,
    /// 5: the commit point readers see.
    Flip,
    /// 6 and 7: put staged paths in place, remove what is stale and ours.
    Finish,
    /// 8: flip the wrappers' directory.
    Wrappers,
    /// 9: record the new state.
    Commit,
}

impl Phase {
    /// What stopping on entering this phase means, or `None` if a switch does not stop there
    /// (see the module comment).
    pub(crate) fn stop_means(self) -> Option<&'static str> {
        match self {
            Phase::Journal => Some("before any change; nothing was written"),
            Phase::Flip => {
                Some("before the flip: nothing visible changed; run the switch again to finish")
            }
            _ => None,
        }
    }
}

/// Where a switch is, and the signals it watches (none for a dry run, which writes nothing).
pub(crate) struct Progress {
    signals: Option<Signals>,
    reached: Phase,
}

impl Progress {
    /// Starts phase 0; `watch`: SIGTERM and SIGINT are watched from here on.
    pub(crate) fn start(watch: bool) -> Progress {
        Progress {
            signals: watch.then(Signals::watch),
            reached: Phase::Load,
        }
    }

    /// Enters `phase`, which must not come before the one reached. At the journal and the
    /// flip, a signal that arrived stops the switch with an error saying what that means.
    pub(crate) fn enter(&mut self, phase: Phase) -> Result<()> {
        if phase < self.reached {
            bail!("internal: phase {phase:?} after {:?}", self.reached);
        }
        self.reached = phase;
        if let Some(means) = phase.stop_means() {
            if let Some(sig) = self.signals.as_mut().and_then(Signals::pending) {
                bail!("interrupted by {sig} {means}");
            }
        }
        Ok(())
    }

    /// Whether a signal arrived, and which: for waits inside a phase.
    pub(crate) fn signalled(&mut self) -> Option<String> {
        self.signals
            .as_mut()
            .and_then(Signals::pending)
            .map(|s| s.to_string())
    }

    /// A signal that arrived after the flip, which the switch finished anyway.
    pub(crate) fn finished_despite(&mut self) -> Option<String> {
        self.signals
            .as_mut()
            .and_then(Signals::pending)
            .map(|s| format!("{s} arrived after the flip; the switch was finished first"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_stops_only_at_the_journal_and_the_flip() {
        let cases = [
            (Phase::Load, None),
            (Phase::Plan, None),
            (Phase::Journal, Some("nothing was written")),
            (Phase::Users, None),
            (Phase::Prepare, None),
            (Phase::Flip, Some("nothing visible changed")),
            (Phase::Finish, None),
            (Phase::Wrappers, None),
            (Phase::Commit, None),
        ];
        for (phase, says) in cases {
            let means = phase.stop_means();
            match says {
                Some(s) => assert!(means.is_some_and(|m| m.contains(s)), "{phase:?}: {means:?}"),
                None => assert_eq!(means, None, "{phase:?}"),
            }
        }
    }

    #[test]
    fn phases_only_go_forward() {
        let mut p = Progress::start(false);
        for phase in [
            Phase::Plan,
            Phase::Journal,
            Phase::Flip,
            Phase::Flip,
            Phase::Commit,
        ] {
            p.enter(phase).expect("forward");
        }
        let back = p.enter(Phase::Prepare).expect_err("backwards");
        assert!(back.to_string().contains("Prepare after Commit"), "{back}");
    }
}
