//! Stamps: stat fingerprints of managed directories and copies, recorded when a switch
//! commits, so that the next transition can *prove* an entry it does not look at is still as
//! that switch left it — never assume it.
//!
//! A stamp is (device, inode, size, mtime, ctime) in nanoseconds. Adding, removing, renaming
//! or replacing a name in a directory changes the directory's mtime and ctime; mounting over it
//! changes its device and inode; a symlink cannot change in place. So while a directory's stamp
//! is unchanged, every link and directory in it is the same inode as when it was stamped. A
//! copy can change in place: its own stamp covers content (mtime, size), mode and owner
//! (ctime).
//!
//! **Racy stamps** (as git's "racily clean" index entries): a change made in the same
//! timestamp tick as a stamp leaves no trace in it. So a stamp is recorded only when its mtime
//! and ctime lie strictly before the second the switch began in ([`Clock`], read before
//! anything was looked at): the path then did not change while the switch looked at it and
//! acted, and everything the switch found or made right in it is still right at the commit.
//! A directory the switch changed (or someone changed meanwhile, or within that second) gets
//! no stamp: the next transition looks at every entry in it.
//!
//! `stamps.json` belongs to `applied.json`: it is written just before the commit's rename and
//! used only when no journal is pending (any interrupted switch means a full look).

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use nix::time::{clock_gettime, ClockId};
use serde::{Deserialize, Serialize};

use crate::fs::statx::Stat;
use crate::fs::{split, Root};
use crate::manifest::{Entry, Kind, Manifest};
use crate::txn::state::state_dir;

/// The state file, in the state directory.
pub(crate) const FILE: &str = "stamps.json";
const VERSION: u32 = 1;

/// One fingerprint: device, inode, size, mtime (ns), ctime (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stamp(u64, u64, u64, i128, i128);

impl Stamp {
    fn of(st: &Stat) -> Stamp {
        Stamp(st.dev, st.ino, st.size, st.mtime, st.ctime)
    }
}

/// The recorded stamps, by target (`""` is `/etc` itself).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Stamps {
    version: u32,
    dirs: BTreeMap<String, Stamp>,
    copies: BTreeMap<String, Stamp>,
}

/// When the switch began, in whole seconds of the real-time clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: i128,
}

impl Clock {
    /// Reads the clock; called under the lock, before anything is looked at. The coarse
    /// clock is what file systems stamp changes with (a fine-grained stamp is never earlier),
    /// and rounding down to the second covers file systems that truncate their timestamps
    /// (to whole seconds at worst). Reading it writes nothing, so a refused or no-op switch
    /// still changes nothing at all.
    pub(crate) fn start() -> Result<Clock> {
        let now = clock_gettime(ClockId::CLOCK_REALTIME_COARSE)
            .context("cannot read the real-time clock")?;
        Ok(Clock {
            start: i128::from(now.tv_sec()) * 1_000_000_000,
        })
    }

    /// Whether `st` did not change since the second the switch began in (see the module
    /// comment).
    fn settled(self, st: &Stat) -> bool {
        st.mtime < self.start && st.ctime < self.start
    }
}

/// Reads the stamps; anything unreadable or from another version is no proof at all (the
/// transition then looks at everything), never an error.
pub(crate) fn read(root: &mut Root) -> Result<Stamps> {
    let rel = format!("{}/{FILE}", state_dir());
    if !matches!(root.node_with(&rel, false)?, crate::fs::Node::File(_)) {
        return Ok(Stamps::default());
    }
    let bytes = root.read(&rel)?;
    Ok(serde_json::from_slice::<Stamps>(&bytes)
        .ok()
        .filter(|s| s.version == VERSION)
        .unwrap_or_default())
}

/// The directory a target lives in (`""`: `/etc`).
fn parent_of(target: &str) -> &str {
    split(target).0
}

fn etc(target: &str) -> String {
    if target.is_empty() {
        "etc".to_owned()
    } else {
        format!("etc/{target}")
    }
}

/// Checks entries against the stamps, remembering each directory's answer.
pub(crate) struct Prover<'s> {
    stamps: &'s Stamps,
    dirs: BTreeMap<String, bool>,
    /// The last directory asked about and its answer: entries come sorted, so siblings are
    /// asked about in a row.
    last: Option<(String, bool)>,
    /// What was proven: these stamps still hold (see [`Prover::into_proven`]).
    proven: Stamps,
}

impl<'s> Prover<'s> {
    /// A prover over recorded stamps.
    pub(crate) fn new(stamps: &'s Stamps) -> Prover<'s> {
        Prover {
            stamps,
            dirs: BTreeMap::new(),
            last: None,
            proven: Stamps::default(),
        }
    }

    /// Whether `e` (identical in the applied and the target generation) provably is still
    /// as the last commit left it: its directory's stamp, and a copy's own, are unchanged.
    pub(crate) fn unchanged(&mut self, root: &mut Root, e: &Entry) -> Result<bool> {
        let parent = parent_of(&e.target);
        if !self.dir_unchanged(root, parent)? {
            return Ok(false);
        }
        if e.kind != Kind::Copy {
            return Ok(true);
        }
        let Some(want) = self.stamps.copies.get(e.target.as_str()).copied() else {
            return Ok(false);
        };
        let same = root.stat(&etc(&e.target))?.map(|st| Stamp::of(&st)) == Some(want);
        if same {
            self.proven.copies.insert(e.target.to_string(), want);
        }
        Ok(same)
    }

    fn dir_unchanged(&mut self, root: &mut Root, dir: &str) -> Result<bool> {
        if let Some((d, known)) = &self.last {
            if d == dir {
                return Ok(*known);
            }
        }
        let ok = if let Some(known) = self.dirs.get(dir) {
            *known
        } else {
            let ok = match self.stamps.dirs.get(dir).copied() {
                Some(want) if root.stat(&etc(dir))?.map(|st| Stamp::of(&st)) == Some(want) => {
                    self.proven.dirs.insert(dir.to_owned(), want);
                    true
                }
                _ => false,
            };
            self.dirs.insert(dir.to_owned(), ok);
            ok
        };
        self.last = Some((dir.to_owned(), ok));
        Ok(ok)
    }

    /// The stamps that held when they were checked. They stay valid proofs for the next
    /// switch whatever this one does: if it (or anyone) changes such a directory or copy,
    /// the stamp no longer matches and the next switch looks. So the commit keeps them
    /// without another stat.
    pub(crate) fn into_proven(self) -> Stamps {
        self.proven
    }
}

/// At the commit: stamps every managed directory (and `/etc`) and every copy of `new` that
/// did not change since `clock` started, except directories in `unsettled` (they hold an
/// entry the switch had to leave as it was), and writes them for the next transition.
/// Stamps `proven` at the start are kept as they were, without a stat (see
/// [`Prover::into_proven`]). (A no-op re-switch writes nothing, stamps included: the last
/// commit's stamps stay valid.)
pub(crate) fn record(
    root: &mut Root,
    new: &Manifest,
    (clock, proven): (Clock, &Stamps),
    unsettled: &std::collections::BTreeSet<&str>,
) -> Result<()> {
    let mut stamps = Stamps {
        version: VERSION,
        ..Stamps::default()
    };
    for (d, st) in proven
        .dirs
        .iter()
        .filter(|(d, _)| !unsettled.contains(d.as_str()))
    {
        stamps.dirs.insert(d.clone(), *st);
    }
    stamps.copies.clone_from(&proven.copies);
    let dirs = std::iter::once("").chain(
        new.entries
            .iter()
            .filter(|e| e.kind == Kind::Dir)
            .map(|e| e.target.as_str()),
    );
    for d in dirs.filter(|d| !unsettled.contains(d) && !proven.dirs.contains_key(*d)) {
        if let Some(st) = root.stat(&etc(d))?.filter(|st| clock.settled(st)) {
            stamps.dirs.insert(d.to_owned(), Stamp::of(&st));
        }
    }
    // Runtime copies are always looked at (their source may change): no stamp. Without root
    // the plan does not compare owners, so what it saw proves nothing about them: no stamp.
    let as_root = nix::unistd::geteuid().is_root();
    for e in new
        .entries
        .iter()
        .filter(|e| as_root && e.kind == Kind::Copy && !e.is_runtime_copy())
        .filter(|e| !proven.copies.contains_key(e.target.as_str()))
    {
        if let Some(st) = root.stat(&etc(&e.target))?.filter(|st| clock.settled(st)) {
            stamps.copies.insert(e.target.to_string(), Stamp::of(&st));
        }
    }
    let json = serde_json::to_vec(&stamps).context("cannot serialise the stamps")?;
    root.atomic_write(&format!("{}/{FILE}", state_dir()), &json)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stat(dev: u64, mtime: i128, ctime: i128) -> Stat {
        Stat {
            mode: 0o040_755,
            uid: 0,
            gid: 0,
            dev,
            ino: 7,
            size: 0,
            mtime,
            ctime,
            mount_root: false,
        }
    }

    #[test]
    fn only_what_changed_before_the_second_of_the_start_is_settled() {
        let clock = Clock {
            start: 5_000_000_000,
        };
        let cases = [
            // (mtime, ctime, settled)
            (4_999_999_999, 4_000_000_000, true),
            (5_000_000_000, 1, false), // in the second of the start: racy
            (5_000_000_001, 1, false), // ... truncated to it by a coarse file system
            (1, 5_000_000_123, false), // a chmod/chown during the switch
            (6_000_000_000, 1, false), // changed during the switch
            (1, 1, true),
        ];
        for (m, c, want) in cases {
            assert_eq!(clock.settled(&stat(1, m, c)), want, "{m} {c}");
        }
        assert!(Clock::start().unwrap().start % 1_000_000_000 == 0);
    }

    #[test]
    fn stamps_round_trip_through_json_with_nanosecond_times() {
        let mut s = Stamps {
            version: VERSION,
            ..Stamps::default()
        };
        s.dirs.insert(
            "ssh".into(),
            Stamp::of(&stat(3, 1_733_000_000_123_456_789, 9)),
        );
        let text = serde_json::to_string(&s).unwrap();
        let back: Stamps = serde_json::from_str(&text).unwrap();
        assert_eq!(back.dirs, s.dirs);
    }
}
