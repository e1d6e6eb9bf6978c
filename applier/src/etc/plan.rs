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
use crate::etc::observe::{Seen, World};
use crate::etc::right::{self, Naming, Verdict, Want};
use crate::etc::runtime::Source;
use crate::fs::{join, Node};
use crate::manifest::{is_same_or_below, Entry, Kind, Manifest};

/// What to do with paths that are not ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OnConflict {
    /// Refuse the whole switch; nothing is changed.
    Abort,
    /// Move the foreign path aside to a unique `<path>.etcflip-backup…`.
    Backup,
    /// Replace the foreign path.
    Overwrite,
}

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

/// The refusal of a link at the overlay path that etcflip did not make (an admin's own):
/// like any foreign path, it is replaced only under `--on-conflict backup` or `overwrite`.
fn overlay_conflict(inp: &Inputs, text: &str) -> Step {
    Step {
        target: String::new(),
        action: Action::Conflict,
        kind: Kind::Symlink,
        found: Found::Link,
        relink_first: false,
        held: false,
        with: None,
        why: Some(format!(
            "the overlay {} is a link etcflip did not make (to {text})",
            inp.new.overlay
        )),
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
pub struct Inputs<'a> {
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

/// Computes the plan. Pure.
pub fn plan(inp: &Inputs) -> Plan {
    let mut steps = Vec::new();
    // New directories replaced as a whole (swap trees) and paths refused: their descendants
    // follow them.
    let mut swapped: Vec<&str> = Vec::new();
    let mut refused: Vec<&str> = Vec::new();
    // The world holds every new target, in the same order as the entries: walk it alongside.
    let mut world = inp.world.iter().peekable();
    let mut recorded = 0;
    for (i, e) in inp.new.entries.iter().enumerate() {
        if inp.recorded.and_then(|r| r.get(i)).is_some_and(|r| *r) {
            recorded += 1;
            continue;
        }
        while world
            .next_if(|(t, _)| t.as_str() < e.target.as_str())
            .is_some()
        {}
        let seen = world
            .next_if(|(t, _)| t.as_str() == e.target.as_str())
            .map(|(_, s)| s);
        let node = seen.map_or(&Node::Absent, |s| &s.node);
        let mut step = base_step(e, node);
        if let Some(Source::Missing(why)) = inp.runtime.get(e.target.as_str()) {
            // Also inside a directory built aside: that tree is swapped in without it.
            step.action = Action::Leave;
            step.why = Some(format!("{why}: left as it is; the switch is incomplete"));
        } else if let Some(a) = swapped.iter().rev().find(|a| is_below(&e.target, a)) {
            step.action = Action::Build;
            step.with = Some((*a).to_owned());
        } else if let Some(a) = refused.iter().rev().find(|a| is_below(&e.target, a)) {
            step.action = Action::Conflict;
            step.why = Some(format!("inside /etc/{a}, which is refused"));
        } else {
            decide(inp, e, seen, &mut step);
        }
        // Whatever the step, what a mount point covers is not what is there: it stays held.
        step.held |= node.is_mount_point();
        if e.kind == Kind::Dir && step.action.replaces() {
            swapped.push(&e.target);
        }
        if step.action == Action::Conflict {
            refused.push(&e.target);
        }
        steps.push(step);
    }
    leave_mounted(&mut steps, inp.mounts);
    let relinked: Vec<String> = steps
        .iter()
        .filter(|s| (s.action == Action::Relink || s.relink_first) && s.found == Found::Dir)
        .map(|s| s.target.clone())
        .collect();
    steps.extend(stale_steps(inp, &relinked));
    steps.sort_by(|a, b| a.target.cmp(&b.target));
    let flip = Flip {
        path: inp.new.overlay.to_string(),
        from: match inp.overlay.0 {
            Node::Link(t) => Some(t.clone()),
            _ => None,
        },
        to: inp.overlay.1.clone(),
        foreign: None,
    };
    let mut flip = flip;
    match inp.overlay.0 {
        Node::Link(t) if *t != inp.overlay.1 && !inp.overlay.2 => match inp.on_conflict {
            OnConflict::Abort => steps.insert(0, overlay_conflict(inp, t)),
            OnConflict::Backup => flip.foreign = Some(Action::Backup),
            OnConflict::Overwrite => flip.foreign = Some(Action::Overwrite),
        },
        _ => {}
    }
    if !matches!(inp.overlay.0, Node::Link(_) | Node::Absent) {
        steps.insert(
            0,
            Step {
                target: String::new(),
                action: Action::Conflict,
                kind: Kind::Symlink,
                found: Found::of(inp.overlay.0),
                relink_first: false,
                held: false,
                with: None,
                why: Some(format!(
                    "the overlay {} must be a symlink; something else is there",
                    inp.new.overlay
                )),
            },
        );
    }
    Plan {
        flip,
        steps,
        recorded,
    }
}

/// A directory that would be moved aside (relinked, backed up, overwritten; or refused, when
/// it is foreign) while a mount point sits below it is left as it is instead: the mount would
/// move along, and no `--on-conflict` choice may move it.
fn leave_mounted(steps: &mut [Step], mounts: &[String]) {
    for step in steps.iter_mut().filter(|s| s.found == Found::Dir) {
        let moved = step.relink_first
            || matches!(
                step.action,
                Action::Relink | Action::Backup | Action::Overwrite | Action::Conflict
            );
        let Some(m) = mounts.iter().find(|m| is_same_or_below(m, &step.target)) else {
            continue;
        };
        if moved {
            step.action = Action::Leave;
            step.held = true;
            step.relink_first = false;
            step.why = Some(format!(
                "holds the mount point /etc/{m}: etcflip never moves or removes one"
            ));
        }
    }
}

fn is_below(t: &str, ancestor: &str) -> bool {
    t.len() > ancestor.len() && is_same_or_below(t, ancestor)
}

fn base_step(e: &Entry, node: &Node) -> Step {
    Step {
        target: e.target.to_string(),
        action: Action::Keep,
        kind: e.kind,
        found: Found::of(node),
        relink_first: false,
        held: false,
        with: None,
        why: None,
    }
}

/// Rules 3–6 for one new entry.
fn decide(inp: &Inputs, e: &Entry, seen: Option<&Seen>, step: &mut Step) {
    let Some(seen) = seen else {
        step.action = creation(e.kind);
        return;
    };
    let node = &seen.node;
    if let Node::Blocked(anc) = node {
        step.action = Action::Conflict;
        step.why = Some(format!("below /{anc}, which is not a directory"));
        return;
    }
    let owner = inp.owners.and_then(|o| o.get(e.target.as_str())).copied();
    let right = Want::of(e, &inp.new.overlay, wanted_sha(inp, e), owner).judge(node);
    if right == Verdict::Right {
        return;
    }
    if node.is_mount_point() {
        step.action = Action::Leave;
        step.held = true;
        step.why = Some(MOUNTED.to_owned());
        return;
    }
    if let Verdict::Attributes(why) = right {
        // Our copy with the right content but the wrong mode or owner: restage it.
        step.action = Action::Stage;
        step.why = Some(why);
        return;
    }
    if *node == Node::Absent {
        step.action = creation(e.kind);
        return;
    }
    if inp.evidence.is_ours(&e.target, node) {
        replace_ours(inp, e, seen, step);
    } else {
        foreign(inp, e, seen, step);
    }
}

/// Why a mount point is left as it is.
const MOUNTED: &str = "a mount point: etcflip never renames, removes or replaces one";

fn creation(kind: Kind) -> Action {
    match kind {
        Kind::Symlink | Kind::Dir => Action::Create,
        Kind::Copy | Kind::DirectSymlink => Action::Stage,
    }
}

/// The content hash a copy wants: the manifest's, or for a runtime copy its source's now.
fn wanted_sha<'x>(inp: &'x Inputs, e: &'x Entry) -> Option<&'x str> {
    e.sha256
        .as_deref()
        .or_else(|| inp.runtime.get(e.target.as_str()).and_then(Source::sha256))
}

fn replace_ours(inp: &Inputs, e: &Entry, seen: &Seen, step: &mut Step) {
    let node = &seen.node;
    let is_dir = matches!(node, Node::Dir(_));
    if is_dir {
        let foreign = foreign_inside(inp, &e.target);
        if !foreign.is_empty() {
            conflict_or(
                inp,
                step,
                format!(
                    "a directory holding files that are not ours: {}",
                    foreign.join(", ")
                ),
            );
            return;
        }
    }
    let overlay_link = e.overlay_link(&inp.new.overlay);
    match e.kind {
        Kind::Symlink => {
            step.action = Action::Relink;
            step.why = Some(format!("was our {}", describe(node)));
        }
        Kind::Dir => {
            step.action = Action::SwapIn;
            step.relink_first = *node != Node::Link(overlay_link);
            step.why = Some(format!("was our {}", describe(node)));
        }
        Kind::Copy | Kind::DirectSymlink => {
            step.action = Action::Stage;
            step.relink_first = is_dir;
            step.why = Some(format!("was our {}", describe(node)));
        }
    }
}

fn foreign(inp: &Inputs, e: &Entry, seen: &Seen, step: &mut Step) {
    let node = &seen.node;
    if e.kind == Kind::Dir && matches!(node, Node::Dir(_)) {
        return; // an existing directory simply becomes managed
    }
    let identical = match (e.kind, node) {
        (Kind::Copy, Node::File(_)) => Want::File {
            sha256: wanted_sha(inp, e),
            mode: None,
            owner: None,
        }
        .is_right(node),
        (Kind::Symlink, Node::File(f)) => Some(&f.sha256) == seen.new_sha.as_ref(),
        (Kind::Symlink, Node::Link(t)) => Some(t.as_str()) == e.source.as_deref(),
        _ => false,
    };
    if identical {
        step.action = Action::Adopt;
        step.why = Some(format!("{} with identical content", describe(node)));
        return;
    }
    let why = format!("{} that etcflip did not make", describe(node));
    conflict_or(inp, step, why);
}

fn conflict_or(inp: &Inputs, step: &mut Step, why: String) {
    step.action = match inp.on_conflict {
        OnConflict::Abort => Action::Conflict,
        OnConflict::Backup => Action::Backup,
        OnConflict::Overwrite => Action::Overwrite,
    };
    // A foreign directory replaced by something else goes as a whole: no relink needed.
    step.relink_first = false;
    step.why = Some(why);
}

fn describe(node: &Node) -> String {
    right::describe(node, Naming::Kind)
}

/// Paths inside the ours directory `target` that are not ours (recursively).
fn foreign_inside(inp: &Inputs, target: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some(names) = inp.world.get(target).and_then(|s| s.listing.as_ref()) else {
        return out;
    };
    for name in names {
        let child = join(target, name);
        match inp.world.get(&child) {
            Some(s) if inp.evidence.is_ours(&child, &s.node) => {
                if matches!(s.node, Node::Dir(_)) {
                    out.extend(foreign_inside(inp, &child));
                }
            }
            _ => out.push(format!("/etc/{child}")),
        }
    }
    out
}

/// Steps for paths that only earlier generations claim, children first.
fn stale_steps(inp: &Inputs, relinked: &[String]) -> Vec<Step> {
    let mut out = Vec::new();
    let mut removed: BTreeSet<String> = BTreeSet::new();
    let mut entries = inp.new.entries.iter().peekable();
    let stale: Vec<&str> = inp
        .evidence
        .targets()
        .filter(|t| {
            while entries.next_if(|e| e.target.as_str() < *t).is_some() {}
            entries.peek().is_none_or(|e| e.target != *t)
        })
        .collect();
    for t in stale.into_iter().rev() {
        let Some(seen) = inp.world.get(t) else {
            continue;
        };
        if matches!(seen.node, Node::Absent | Node::Blocked(_)) {
            continue;
        }
        let kind = match seen.node {
            Node::Dir(_) => Kind::Dir,
            Node::File(_) => Kind::Copy,
            _ => Kind::Symlink,
        };
        let mut step = Step {
            target: t.to_owned(),
            action: Action::Remove,
            kind,
            found: Found::of(&seen.node),
            relink_first: false,
            held: false,
            with: None,
            why: None,
        };
        if let Some(a) = relinked.iter().find(|a| is_below(t, a)) {
            step.with = Some(a.clone());
        } else if seen.node.is_mount_point() {
            step.action = Action::Leave;
            step.held = true;
            step.why = Some(MOUNTED.to_owned());
        } else if !inp.evidence.is_ours(t, &seen.node) {
            step.action = Action::Leave;
            step.why = Some(format!(
                "{} changed since etcflip made it",
                describe(&seen.node)
            ));
        } else if let Some(names) = &seen.listing {
            let left: Vec<String> = names
                .iter()
                .map(|n| join(t, n))
                .filter(|c| !removed.contains(c))
                .collect();
            if !left.is_empty() {
                step.action = Action::Leave;
                step.why = Some(format!("directory still holds {}", left.join(", ")));
            }
        }
        if step.action == Action::Remove {
            removed.insert(t.to_owned());
        }
        out.push(step);
    }
    out
}

#[cfg(test)]
mod tests;
