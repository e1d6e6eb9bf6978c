//! The overlay link, the flip point of `/etc`: whose a link there is, and how it moves when a
//! generation changes its path.

use std::collections::BTreeSet;

use anyhow::Result;

use crate::etc::legacy;
use crate::fs::{Node, Root};
use crate::manifest::{is_same_or_below, Manifest};
use crate::txn::flip;

/// Whether a link at the overlay path is etcflip's: it shows a generation the state records
/// (applied, interrupted or holding a mount point), or it is the legacy NixOS overlay of a
/// root being migrated (`legacy`). Anything else there is foreign, a conflict like any other
/// path.
pub(crate) fn overlay_is_ours(node: &Node, gens: &[&str], legacy: bool) -> bool {
    match node {
        // A legacy NixOS overlay points at the system's `…-etc/etc` in the store; any other
        // link there is the admin's, even on a root being migrated.
        Node::Link(text) => {
            (legacy && text.ends_with("-etc/etc"))
                || gens.iter().any(|g| text.strip_suffix("/etc") == Some(*g))
        }
        _ => false,
    }
}

/// When the overlay moves, the new one is first made to show the *old* generation (the old
/// overlay's own target), so that relinking paths to it before the flip changes nothing
/// readers see; the flip then moves it to the new generation.
pub(crate) fn bridge_overlay(root: &mut Root, old: &str, new: &str) -> Result<()> {
    let new_rel = new.trim_start_matches('/');
    if root.node_with(new_rel, false)? != Node::Absent {
        return Ok(());
    }
    match root.node_with(old.trim_start_matches('/'), false)? {
        Node::Link(text) => flip::flip(root, new, &text),
        _ => Ok(()),
    }
}

/// The last changes before the commit. When the overlay moved, the old overlay link goes, but
/// only if it is still ours: a link to a recorded generation (or the legacy one being
/// migrated), at a path no new entry claims. Then `/etc/.clean` lists the new copies (see
/// [`legacy::keep_clean`]).
pub(crate) fn after_flip(
    root: &mut Root,
    old: &BTreeSet<String>,
    new: &Manifest,
    recorded_gens: &[&str],
    migrated: bool,
) -> Result<()> {
    let known: Vec<String> = recorded_gens.iter().map(|g| format!("{g}/etc")).collect();
    for overlay in old {
        let rel = overlay.trim_start_matches('/');
        let claimed = rel.strip_prefix("etc/").is_some_and(|t| {
            new.entries
                .iter()
                .any(|e| is_same_or_below(&e.target, t) || is_same_or_below(t, &e.target))
        });
        if claimed {
            continue;
        }
        if let Node::Link(text) = root.node_with(rel, false)? {
            let legacy = migrated && overlay == legacy::LEGACY_OVERLAY;
            if legacy || known.contains(&text) {
                root.unlink(rel)?;
            }
        }
        // A flip of that overlay killed between its link and its rename left this behind.
        flip::sweep(root, overlay)?;
    }
    legacy::keep_clean(root, new)
}
