//! The rules for each path of the new generation (rules 1 to 6 of `plan/mod.rs`), and the
//! flip of the overlay.

use crate::etc::observe::Seen;
use crate::etc::right::{Verdict, Want};
use crate::etc::runtime::Source;
use crate::fs::{join, Node};
use crate::manifest::{is_same_or_below, Entry, Kind};

use super::stale::stale_steps;
use super::{describe, is_below, MOUNTED};
use super::{Action, Flip, Found, Inputs, OnConflict, Plan, Step};

/// Computes the plan. Pure.
pub(crate) fn plan(inp: &Inputs) -> Plan {
    let (mut steps, recorded) = entry_steps(inp);
    leave_mounted(&mut steps, inp.mounts);
    let relinked: Vec<String> = steps
        .iter()
        .filter(|s| (s.action == Action::Relink || s.relink_first) && s.found == Found::Dir)
        .map(|s| s.target.clone())
        .collect();
    steps.extend(stale_steps(inp, &relinked));
    steps.sort_by(|a, b| a.target.cmp(&b.target));
    let flip = flip(inp, &mut steps);
    Plan {
        flip,
        steps,
        recorded,
    }
}

/// One step per entry of the new generation (rules 1 to 6), and how many were taken as
/// recorded (no step).
fn entry_steps(inp: &Inputs) -> (Vec<Step>, usize) {
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
    (steps, recorded)
}

/// The flip of the overlay; a refusal of what is at the overlay path goes first in `steps`.
fn flip(inp: &Inputs, steps: &mut Vec<Step>) -> Flip {
    let mut flip = Flip {
        path: inp.new.overlay.to_string(),
        from: match inp.overlay.0 {
            Node::Link(t) => Some(t.clone()),
            _ => None,
        },
        to: inp.overlay.1.clone(),
        foreign: None,
    };
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
    flip
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
        // A copy with the right content but the wrong mode or owner, whoever made it: restage
        // it with the declared ones (nothing of the content is lost).
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
    // A copy of identical content never gets here: it is right, or restaged for its mode.
    let identical = match (e.kind, node) {
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
