//! A plain transition from the applied generation: which entries of the target want the same
//! as the applied generation *and* provably still are as it left them, so that the switch
//! neither looks at them nor claims them (see `gather/mod.rs`, which asks, and
//! `etc/stamps.rs`, which proves).
//!
//! An entry is taken as recorded when its directory's stamp (and a copy's own) still holds,
//! or, for a link the stamps cannot vouch for (its directory changed since the last commit),
//! when reading it now shows exactly the link it wants. Everything else of the applied
//! generation stays evidence, and `observe` looks at it.
//!
//! The comparison is a merge of the two sorted manifests, each step at most a `statx` (once
//! per directory) or a `readlinkat`. (Two threads, each comparing half, gained nothing
//! measurable at 10,000 entries: the second core is busy starting `systemd-tmpfiles` then.)

use std::collections::BTreeSet;

use anyhow::Result;

use super::{add_held, Applied, Gathered};
use crate::etc::evidence::Evidence;
use crate::etc::right::Want;
use crate::etc::runtime::Key;
use crate::etc::stamps::{self, Prover, Stamps};
use crate::fs::Root;
use crate::manifest::{Entry, Kind, Manifest};
use crate::txn::generation::Generation;

/// See the module comment. With another overlay every link text differs: nothing is taken
/// as recorded.
pub(crate) fn transition<'a>(
    root: &mut Root,
    gen: &Generation<'a>,
    applied: Applied<'_, 'a>,
    key: Option<&Key>,
) -> Result<Gathered<'a>> {
    let old = applied.manifest;
    let new = &gen.manifest.entries;
    let same_overlay = old.overlay == gen.manifest.overlay;
    let compared = if same_overlay {
        let stamps = stamps::read(root)?;
        compare(root, &stamps, (&old.entries, new), &gen.manifest.overlay)?
    } else {
        Compared {
            recorded: vec![false; new.len()],
            changed: old.entries.clone(),
            proven: Stamps::default(),
        }
    };
    let changed = Manifest {
        entries: compared.changed,
        overlay: old.overlay.clone(),
        version: old.version,
        users: None,
        wrappers: None,
    };
    let mut evidence = Evidence::default();
    evidence.add_manifest(&changed);
    evidence.add_copies(applied.runtime, key);
    add_held(&mut evidence, applied.held, key)?;
    let mut old_overlays = BTreeSet::new();
    if !same_overlay {
        old_overlays.insert(changed.overlay.to_string());
    }
    Ok(Gathered {
        evidence,
        migrated: false,
        old_overlays,
        recorded: Some(compared.recorded),
        proven: compared.proven,
    })
}

/// What comparing the applied entries with the target's found.
struct Compared<'a> {
    /// Aligned with the target's entries: taken as recorded.
    recorded: Vec<bool>,
    /// The applied entries not taken as recorded (the evidence).
    changed: Vec<Entry<'a>>,
    /// The stamps that held.
    proven: Stamps,
}

/// A merge of the two sorted lists of entries (see the module comment).
fn compare<'a>(
    root: &mut Root,
    stamps: &Stamps,
    (old, new): (&[Entry<'a>], &[Entry<'a>]),
    overlay: &str,
) -> Result<Compared<'a>> {
    let mut prover = Prover::new(stamps);
    let mut recorded = vec![false; new.len()];
    let mut changed = Vec::new();
    let mut j = 0;
    for o in old {
        while j < new.len() && new[j].target.as_str() < o.target.as_ref() {
            j += 1;
        }
        if j < new.len()
            && new[j].target == o.target
            && o.same_at_path(&new[j])
            && (prover.unchanged(root, &new[j])? || is_wanted_link(root, overlay, &new[j])?)
        {
            recorded[j] = true;
        } else {
            changed.push(o.clone());
        }
    }
    Ok(Compared {
        recorded,
        changed,
        proven: prover.into_proven(),
    })
}

/// Whether a link entry the stamps cannot prove unchanged is, read now, exactly the link it
/// wants: then it is as recorded, and needs no claim, no observation and no step. (A link
/// cannot change in place, and only the switch that holds the lock writes ours.) Other kinds
/// are left to the full look.
fn is_wanted_link(root: &mut Root, overlay: &str, e: &Entry) -> Result<bool> {
    if !matches!(e.kind, Kind::Symlink | Kind::DirectSymlink) {
        return Ok(false);
    }
    let node = root.node_with(&format!("etc/{}", e.target), false)?;
    Ok(Want::of(e, overlay, None, None).is_right(&node))
}
