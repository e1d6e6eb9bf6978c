//! Phases 6 and 7, after the flip: staged paths put in place, what is stale and ours removed;
//! and the backups that `--on-conflict backup` keeps.

use anyhow::{bail, Result};

use super::{entry, rel, Ctx};
use crate::etc::plan::{Action, Found, Plan, Step};
use crate::etc::scratch::scratch;
use crate::fs::{join, sha256_bytes, split, Node, Root};
use crate::manifest::Kind;

/// Keeps a link etcflip did not make at the overlay path under a backup name (a hard link of
/// the link itself, so the path never goes missing), just before the flip replaces it.
pub(crate) fn back_up_overlay(root: &mut Root, overlay: &str) -> Result<()> {
    let rel = overlay.trim_start_matches('/');
    backup_name(root, rel, |root, name| root.hardlink(rel, name))
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
            backup_name(ctx.root, &at, |root, name| root.hardlink(&at, name))?;
            ctx.root.rename(&aside, &at)
        }
        (Action::Backup, true) => {
            // The foreign thing gets its backup name first, and only then is ours moved in:
            // a moment without the path, rather than a moment where the user's data sits
            // under a scratch name that the next run would sweep away.
            backup_name(ctx.root, &at, |root, name| root.rename_noreplace(&at, name))?;
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

/// Tries `<path>.etcflip-backup`, then `.1`, `.2`… (see [`backup_file_name`]) until `put`
/// succeeds: never overwrites an earlier backup.
fn backup_name(
    root: &mut Root,
    at: &str,
    mut put: impl FnMut(&mut Root, &str) -> Result<bool>,
) -> Result<()> {
    let (parent, name) = split(at);
    for n in 0..10_000u32 {
        if put(root, &join(parent, &backup_file_name(name, n)))? {
            return Ok(());
        }
    }
    bail!("no free backup name for {}", root.show(at))
}

/// The `n`th backup name for the file name `name`: `<name>.etcflip-backup`, then
/// `<name>.etcflip-backup.<n>`. A name too long for that within `NAME_MAX` (255 bytes) is cut
/// at a character boundary and marked with a hash of the whole name (`<cut>~<hash>…`), so the
/// backup, which comes after the flip, can never fail for its length.
pub(crate) fn backup_file_name(name: &str, n: u32) -> String {
    let suffix = if n == 0 {
        ".etcflip-backup".to_owned()
    } else {
        format!(".etcflip-backup.{n}")
    };
    if name.len() + suffix.len() <= crate::manifest::MAX_NAME {
        return format!("{name}{suffix}");
    }
    let hash = &sha256_bytes(name.as_bytes())[..12];
    let mut cut = crate::manifest::MAX_NAME - suffix.len() - hash.len() - 1;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{hash}{suffix}", &name[..cut])
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

#[cfg(test)]
mod tests {
    use super::backup_file_name;

    #[test]
    fn backup_names_always_fit_and_stay_distinct() {
        let long = "n".repeat(250);
        let wide = "é".repeat(120); // 240 bytes, two per character
        let cases: [(&str, u32, Option<&str>); 4] = [
            ("motd", 0, Some("motd.etcflip-backup")),
            ("motd", 3, Some("motd.etcflip-backup.3")),
            (&long, 0, None),
            (&wide, 12, None),
        ];
        for (name, n, want) in cases {
            let got = backup_file_name(name, n);
            assert!(got.len() <= 255, "{got} is {} bytes", got.len());
            assert!(got.contains(".etcflip-backup"), "{got}");
            if let Some(want) = want {
                assert_eq!(got, want);
            } else {
                assert!(got.contains('~'), "a cut name is marked: {got}");
            }
        }
        assert_ne!(backup_file_name(&long, 0), backup_file_name(&long, 1));
        let other = format!("{}m", "n".repeat(249));
        assert_ne!(
            backup_file_name(&long, 0),
            backup_file_name(&other, 0),
            "names cut to the same prefix differ by their hash"
        );
    }
}
