//! The plan: a pure function from (new manifest, evidence of what is ours, what is there) to
//! one step per path. No effects here; `--dry-run` prints exactly this value.
//!
//! Rules, in the order they are applied to each path of the new generation:
//! 1. Inside a directory that is built aside and swapped in → `build` (made in the swap tree).
//! 2. Inside a path refused as a conflict → `conflict`.
//! 3. Already what the new generation wants → `keep`.
//! 4. Nothing there → `create` (links and directories: tmpfiles, before the flip) or `stage`
//!    (copies and direct links: staged before the flip, renamed into place after it).
//! 5. Ours but different → replaced so that readers see old or new, never a gap:
//!    - new overlay link → `relink`: swapped in *before* the flip. Until the flip it resolves into
//!      the old generation, which shows exactly what the old entry showed.
//!    - new directory → `swap-in`: built aside and exchanged with our link *after* the flip (the
//!      link already shows the new directory's content through the overlay).
//!    - new copy or direct link → `stage`.
//!
//!    An ours *directory* that must become something else is first relinked (`relink_first`),
//!    because a directory can only be replaced atomically by a link that shows the same content.
//! 6. Not ours: a foreign directory where a directory is wanted is adopted (`keep`); content
//!    identical to what we would install → `adopt`; otherwise `conflict` (abort), `backup` or
//!    `overwrite` as the user chose.
//!
//! Paths only in old generations: still ours → `remove` (directories only when nothing else is
//! left in them); changed since we made them → `leave`; gone → nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::etc::evidence::Evidence;
use crate::etc::observe::World;
use crate::fs::Node;
use crate::manifest::{is_same_or_below, Kind, Manifest};

pub use crate::conflict::OnConflict;

/// The action at one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Already right.
    Keep,
    /// Absent: created before the flip (dangling until then).
    Create,
    /// Made inside a directory built aside.
    Build,
    /// Staged before the flip, renamed into place after it.
    Stage,
    /// Ours, replaced by the overlay link before the flip.
    Relink,
    /// A directory built aside, exchanged with our link after the flip.
    SwapIn,
    /// Identical foreign content, replaced without a backup.
    Adopt,
    /// Foreign, moved aside when replaced.
    Backup,
    /// Foreign, replaced.
    Overwrite,
    /// Foreign: the switch is refused.
    Conflict,
    /// Stale and ours: removed after the flip.
    Remove,
    /// Stale but changed since we made it: left alone.
    Leave,
}

impl Action {
    /// The spelling in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Create => "create",
            Action::Build => "build",
            Action::Stage => "stage",
            Action::Relink => "relink",
            Action::SwapIn => "swap-in",
            Action::Adopt => "adopt",
            Action::Backup => "backup",
            Action::Overwrite => "overwrite",
            Action::Conflict => "conflict",
            Action::Remove => "remove",
            Action::Leave => "leave",
        }
    }

    /// Whether the step replaces the path with something staged or built aside.
    pub fn replaces(self) -> bool {
        matches!(
            self,
            Action::Stage | Action::SwapIn | Action::Adopt | Action::Backup | Action::Overwrite
        )
    }
}

/// What was found at a path, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Found {
    /// Nothing.
    Absent,
    /// A symlink.
    Link,
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Something else.
    Other,
    /// Not looked at: an ancestor is not a directory.
    Blocked,
}

impl Found {
    fn of(node: &Node) -> Found {
        match node {
            Node::Absent => Found::Absent,
            Node::Link(_) => Found::Link,
            Node::File(_) => Found::File,
            Node::Dir(_) => Found::Dir,
            Node::Other(_) => Found::Other,
            Node::Blocked(_) => Found::Blocked,
        }
    }
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The target relative to `/etc`; shown as the path `/etc/<target>`.
    #[serde(rename = "path", serialize_with = "target_as_path")]
    pub target: String,
    /// What is done.
    pub action: Action,
    /// The kind of the new entry (or of the old one, for removals).
    pub kind: Kind,
    /// What is there now.
    pub found: Found,
    /// Replace an ours directory (or other non-link) by the overlay link before the flip.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub relink_first: bool,
    /// Left only because it is, or holds, a mount point: what was ours there stays ours
    /// (the commit keeps its claims, see `gather::held_records`).
    #[serde(skip)]
    pub held: bool,
    /// The ancestor (a target) whose replacement carries this step along.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "as_etc_path"
    )]
    pub with: Option<String>,
    /// Why, for anything but `keep` and `create`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

fn target_as_path<S: serde::Serializer>(t: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path_of(t))
}

/// `/etc/<target>`; the empty target stands for the overlay (the only non-entry step).
fn path_of(t: &str) -> String {
    if t.is_empty() {
        "the overlay".to_owned()
    } else {
        format!("/etc/{t}")
    }
}

impl Step {
    /// The path in the root's namespace.
    pub fn path(&self) -> String {
        path_of(&self.target)
    }
}

// serde's `serialize_with` hands us `&Option<T>`.
#[allow(clippy::ref_option)]
fn as_etc_path<S: serde::Serializer>(t: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format!("/etc/{t}")),
        None => s.serialize_none(),
    }
}

/// The flip of the overlay link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flip {
    /// The overlay path, e.g. `/etc/static`.
    pub path: String,
    /// Its current link text, if it is a link.
    pub from: Option<String>,
    /// The new link text: the generation's payload as the root sees it.
    pub to: String,
    /// `from` is a link etcflip did not make, and `--on-conflict` said what to do with it:
    /// `backup` (a hard link of it under a backup name is made before the flip) or
    /// `overwrite` (the flip replaces it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign: Option<Action>,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The commit point.
    pub flip: Flip,
    /// One step per path of old ∪ new that needs a decision, sorted by path.
    pub steps: Vec<Step>,
    /// Entries of a transition that are identical in the applied and the new generation:
    /// taken as recorded (kept, not looked at), so they need no step.
    pub recorded: usize,
}

/// Everything the plan depends on.
pub(crate) struct Inputs<'a> {
    /// The target generation.
    pub new: &'a Manifest<'a>,
    /// What earlier generations claim.
    pub evidence: &'a Evidence<'a>,
    /// What is there.
    pub world: &'a World,
    /// The overlay: current node, the text it must get, and whether a link found there is
    /// one etcflip made (to a generation the state records, or a legacy NixOS one it migrates).
    pub overlay: (&'a Node, String, bool),
    /// Conflict policy.
    pub on_conflict: OnConflict,
    /// Resolved numeric owners of copies; compared only when `Some` (i.e. running as root).
    pub owners: Option<&'a BTreeMap<String, (u32, u32)>>,
    /// What the sources of runtime copies hold now.
    pub runtime: &'a crate::etc::runtime::Sources,
    /// Mount points below `/etc` (targets), sorted: see [`crate::fs::mounts`].
    pub mounts: &'a [String],
    /// `recorded[i]`: `new.entries[i]` is taken as recorded (see [`Plan::recorded`]).
    pub recorded: Option<&'a [bool]>,
}

impl Plan {
    /// Steps that change something.
    pub fn changes(&self) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .filter(|s| !matches!(s.action, Action::Keep | Action::Leave))
    }

    /// Whether applying the plan would change nothing at all.
    pub fn is_noop(&self) -> bool {
        self.flip.from.as_deref() == Some(self.flip.to.as_str()) && self.changes().next().is_none()
    }

    /// Directories holding a new entry the switch leaves as it is (a mount point): they
    /// get no stamp, so that the next transition looks at that entry again.
    pub fn left_dirs(&self, new: &Manifest) -> BTreeSet<&str> {
        self.steps
            .iter()
            .filter(|s| s.action == Action::Leave && new.get(&s.target).is_some())
            .map(|s| crate::fs::split(&s.target).0)
            .collect()
    }

    /// Conflicts that block the switch.
    pub fn conflicts(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.action == Action::Conflict)
            .map(|s| format!("{}: {}", s.path(), s.why.as_deref().unwrap_or("not ours")))
            .collect()
    }

    /// The human rendering (`--dry-run` without `--json`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        match self.flip.from.as_deref() {
            Some(from) if from == self.flip.to => {
                let _ = writeln!(out, "flip {}: already {from}", self.flip.path);
            }
            from => {
                let from = from.unwrap_or("(nothing)");
                let _ = write!(out, "flip {}: {from} -> {}", self.flip.path, self.flip.to);
                match self.flip.foreign {
                    Some(Action::Backup) => out.push_str("  (the foreign link is backed up)"),
                    Some(_) => out.push_str("  (the foreign link is overwritten)"),
                    None => {}
                }
                out.push('\n');
            }
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &self.steps {
            *counts.entry(s.action.as_str()).or_default() += 1;
            if s.action == Action::Keep {
                continue;
            }
            let _ = write!(
                out,
                "{:<9} {:<14} {}",
                s.action.as_str(),
                s.kind.as_str(),
                s.path()
            );
            if s.relink_first {
                out.push_str("  (relinked before the flip)");
            }
            if let Some(w) = &s.with {
                let _ = write!(out, "  (with /etc/{w})");
            }
            if let Some(why) = &s.why {
                let _ = write!(out, "  [{why}]");
            }
            out.push('\n');
        }
        let kept = counts.remove("keep").unwrap_or(0);
        let mut summary: Vec<String> = counts.iter().map(|(a, n)| format!("{n} {a}")).collect();
        summary.push(format!("{} unchanged", kept + self.recorded));
        let _ = writeln!(out, "{}", summary.join(", "));
        out
    }
}

/// Whether `t` lies strictly below `ancestor`.
fn is_below(t: &str, ancestor: &str) -> bool {
    t.len() > ancestor.len() && is_same_or_below(t, ancestor)
}

/// Why a mount point is left as it is.
const MOUNTED: &str = "a mount point: etcflip never renames, removes or replaces one";

/// What was found at a path, as a plan's reasons name it.
fn describe(node: &Node) -> String {
    crate::etc::right::describe(node, crate::etc::right::Naming::Kind)
}

mod rules;
mod stale;

pub(crate) use rules::plan;

#[cfg(test)]
mod tests;
