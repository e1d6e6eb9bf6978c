//! A `--create` run split into parts that run in parallel, one `systemd-tmpfiles` per part.
//!
//! tmpfiles spends about 45 system calls on each `L` line and makes its links one after the
//! other, so on an empty `/etc` it is nearly all of a switch. Its children are started before
//! the switch writes its journal (they only act once their input is closed, see `runner`),
//! each gets a contiguous run of the plan's lines (the plan is sorted by path, so a run is a
//! set of whole subtrees plus at most two partial ones), and each part is read back as soon as
//! its child exits, while the others still work.
//!
//! Parts are disjoint in what they create, except for directories: a part whose lines lie
//! below a directory that another part's `d` line makes also gets that `d` line, so that it
//! never depends on the order in which the children run. A `d` line with a `:` mode creates a
//! missing directory and leaves an existing one alone, so two children racing to make the
//! same directory both succeed and agree (tmpfiles takes `EEXIST` from `mkdir` as "exists").

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::ops::Range;

use anyhow::Result;

use crate::etc::runner::{Engine, Tmpfiles};
use crate::fs::Root;

/// One line of a creation: the path it makes (relative to the root), and its text.
pub(crate) struct Line {
    /// Where the line makes its path, relative to the root (`etc/…`).
    pub at: String,
    /// The tmpfiles line, newline included.
    pub text: String,
    /// Whether it makes a directory (a `d` line).
    pub dir: bool,
}

/// At most this many children: beyond the cores they only add start-ups.
const MAX_PARTS: usize = 4;

/// A part smaller than this is not worth a child's start-up (5-9 ms, ≈ 150 lines' work).
const MIN_PART_LINES: usize = 300;

/// How many parts for `lines` lines on this machine (its usable cores, capped).
pub(crate) fn count(lines: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    cores.min(MAX_PARTS).min(lines / MIN_PART_LINES).max(1)
}

/// Splits `lines` into at most `parts` contiguous ranges of about the same size; each comes
/// with its input: the `d` lines of its ancestors that other ranges hold, then its own lines.
pub(crate) fn split(lines: &[Line], parts: usize) -> Vec<(Range<usize>, String)> {
    let dirs: HashMap<&str, usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.dir)
        .map(|(i, l)| (l.at.as_str(), i))
        .collect();
    let parts = parts.clamp(1, lines.len().max(1));
    let mut out = Vec::with_capacity(parts);
    for p in 0..parts {
        let range = lines.len() * p / parts..lines.len() * (p + 1) / parts;
        let mut borrowed = BTreeSet::new();
        for line in &lines[range.clone()] {
            let mut at = line.at.as_str();
            while let Some((parent, _)) = at.rsplit_once('/') {
                match dirs.get(parent) {
                    Some(&i) if !range.contains(&i) => {
                        borrowed.insert(i);
                    }
                    _ => {}
                }
                at = parent;
            }
        }
        let mut input = String::new();
        // Indices follow the plan's order, where a directory precedes what is below it.
        for i in borrowed {
            input.push_str(&lines[i].text);
        }
        for line in &lines[range.clone()] {
            input.push_str(&line.text);
        }
        out.push((range, input));
    }
    out
}

/// The children of a creation, started before its lines are known.
pub(crate) struct Creation {
    children: Vec<Tmpfiles>,
}

impl Creation {
    /// The children for a creation of `lines` lines, the `spare` one (already started) first;
    /// `None` when there is none (a plan that creates nothing feeds no `--create`).
    pub(crate) fn start(
        engine: &Engine,
        lines: usize,
        spare: &mut Option<Tmpfiles>,
    ) -> Result<Option<Creation>> {
        if lines == 0 {
            return Ok(None);
        }
        let mut children: Vec<Tmpfiles> = spare.take().into_iter().collect();
        while children.len() < count(lines) {
            children.push(engine.start()?);
        }
        Ok(Some(Creation { children }))
    }

    /// Feeds every child its part, then, as each exits in turn, calls `check` with the range
    /// of `lines` it made and its complaints (see [`Tmpfiles::finish`]).
    pub(crate) fn run(
        self,
        root: &mut Root,
        lines: &[Line],
        mut check: impl FnMut(&mut Root, Range<usize>, Option<&str>) -> Result<()>,
    ) -> Result<()> {
        let mut children = self.children;
        let parts = split(lines, children.len());
        for (child, (_, input)) in children.iter_mut().zip(&parts) {
            child.feed(input)?;
        }
        // Every input is closed before any child is waited for: a child acts only once its
        // input is closed, so closing them one wait at a time ran the parts one after another.
        for child in &mut children {
            child.close();
        }
        let mut parts = parts.into_iter();
        for child in children {
            let complaint = child.finish()?;
            if let Some((range, _)) = parts.next() {
                root.forget_dirs();
                check(root, range, complaint.as_deref())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at: &str, dir: bool) -> Line {
        Line {
            at: at.into(),
            text: format!("{at}\n"),
            dir,
        }
    }

    #[test]
    fn parts_cover_every_line_once_and_bring_their_ancestors() {
        let lines = [
            line("etc/a", true),
            line("etc/a/b", true),
            line("etc/a/b/1", false),
            line("etc/a/b/2", false),
            line("etc/a/c", false),
            line("etc/z", false),
        ];
        let parts = split(&lines, 2);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, 0..3);
        assert_eq!(parts[0].1, "etc/a\netc/a/b\netc/a/b/1\n");
        assert_eq!(parts[1].0, 3..6);
        assert_eq!(parts[1].1, "etc/a\netc/a/b\netc/a/b/2\netc/a/c\netc/z\n");
        // More parts than lines: one line each, never an empty part.
        assert_eq!(split(&lines[..2], 4).len(), 2);
        assert_eq!(split(&[], 3).len(), 1);
    }

    #[test]
    fn small_creations_are_one_part() {
        assert_eq!(count(1), 1);
        assert_eq!(count(MIN_PART_LINES - 1), 1);
        assert!(count(100_000) <= MAX_PARTS);
    }
}
