//! Phases 6 and 7, after the flip: staged paths put in place, what is stale and ours removed;
//! and the backups that `--on-conflict backup` keeps.

use anyhow::Result;

use super::{entry, rel, Ctx};
use crate::conflict::{backup_name, BACKUP};
use crate::etc::plan::{Action, Found, Plan, Step};
use crate::etc::scratch::scratch;
use crate::fs::{Node, Root};
use crate::manifest::Kind;

/// Keeps a link etcflip did not make at the overlay path under a backup name (a hard link of
/// the link itself, so the path never goes missing), just before the flip replaces it.
pub(crate) fn back_up_overlay(root: &mut Root, overlay: &str) -> Result<()> {
    let rel = overlay.trim_start_matches('/');
    backup_name(root, rel, BACKUP, |root, name| root.hardlink(rel, name))
}

/// Phases 6 and 7, after the flip. Returns notes on paths deliberately left alone.
pub(crate) fn finish(ctx: &mut Ctx, plan: &Plan) -> Result<Vec<String>> {
    for step in &plan.steps {
        if step.action.replaces() {
            put_in_place(ctx, step)?;
        }
    }
    for step in &plan.steps {
        if (step.action == Action::Relink || step.relink_first) && step.found == Found::Dir {
            ctx.root.remove_tree(&scratch(&step.target, "link"))?;
        }
    }
    remove_stale(ctx, plan)
}

fn put_in_place(ctx: &mut Ctx, step: &Step) -> Result<()> {
    let e = entry(ctx.new, &step.target)?;
    let at = rel(&step.target);
    let aside = scratch(
        &step.target,
        if e.kind == Kind::Dir { "swap" } else { "stage" },
    );
    // What is at the path now: after a relink it is our overlay link, not what was found.
    let current_is_dir = step.found == Found::Dir && !step.relink_first;
    match (step.action, current_is_dir || e.kind == Kind::Dir) {
        (Action::Backup, false) => {
            backup_name(ctx.root, &at, BACKUP, |root, name| root.hardlink(&at, name))?;
            ctx.root.rename(&aside, &at)
        }
        (Action::Backup, true) => {
            // The foreign thing gets its backup name first, and only then is ours moved in:
            // a moment without the path, rather than a moment where the user's data sits
            // under a scratch name that the next run would sweep away.
            backup_name(ctx.root, &at, BACKUP, |root, name| {
                root.rename_noreplace(&at, name)
            })?;
            ctx.root.rename(&aside, &at)?;
            ctx.root.forget_dirs();
            Ok(())
        }
        (Action::Overwrite | Action::SwapIn, true) => {
            ctx.root.exchange(&aside, &at)?;
            ctx.root.remove_tree(&aside)
        }
        _ => ctx.root.rename(&aside, &at),
    }
}

/// Removes stale paths that are still ours, children first. Each is re-checked now and
/// removed with `unlinkat` on the very directory fd it was re-checked through, so a directory
/// swapped since (say, for a link out of the root) is never followed. `systemd-tmpfiles
/// --remove` cannot promise that: it resolves every path again by name (README, "Removal").
fn remove_stale(ctx: &mut Ctx, plan: &Plan) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for step in plan.steps.iter().rev() {
        if step.action != Action::Remove || step.with.is_some() {
            continue;
        }
        let at = rel(&step.target);
        let node = ctx.root.node(&at)?;
        if matches!(node, Node::Absent | Node::Blocked(_)) {
            continue;
        }
        if node.is_mount_point() || !ctx.evidence.is_ours(&step.target, &node) {
            notes.push(format!(
                "kept {}: it changed during the switch",
                step.path()
            ));
            continue;
        }
        if !ctx.root.remove_entry(&at, matches!(node, Node::Dir(_)))? {
            notes.push(format!(
                "kept {}: something was added to it during the switch",
                ctx.root.show(&at)
            ));
        }
    }
    Ok(notes)
}
