//! Paths only earlier generations claim: removed when still ours and empty of anything else,
//! left otherwise.

use std::collections::BTreeSet;

use crate::etc::observe::Seen;
use crate::fs::{join, Node};
use crate::manifest::Kind;

use super::{describe, is_below, Action, Found, Inputs, Step, MOUNTED};

/// Steps for paths that only earlier generations claim, children first.
pub(super) fn stale_steps(inp: &Inputs, relinked: &[String]) -> Vec<Step> {
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
        let step = stale_step(inp, (t, seen), relinked, &removed);
        if step.action == Action::Remove {
            removed.insert(t.to_owned());
        }
        out.push(step);
    }
    out
}

/// The step for one stale path `t` found as `seen`; `removed`: what is removed below it.
fn stale_step(
    inp: &Inputs,
    (t, seen): (&str, &Seen),
    relinked: &[String],
    removed: &BTreeSet<String>,
) -> Step {
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
    step
}
