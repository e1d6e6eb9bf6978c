//! What the recorded state says about a root before a switch looks at it: the applied
//! generation and any interrupted ones, what they claim ([`Evidence`]), and for a plain
//! transition which entries the stamps prove unchanged (see `stamps.rs`). Also what a switch
//! must keep claiming because a mount point held it.

use std::collections::{BTreeMap, BTreeSet};

mod transition;

use anyhow::Result;

use crate::etc::evidence::Evidence;
use crate::etc::legacy;
use crate::etc::plan::Plan;
use crate::etc::runtime::Key;
use crate::etc::stamps::Stamps;
use crate::fs::{Node, Root};
use crate::manifest::{Manifest, Str};
use crate::txn::generation::Generation;
use crate::txn::state::{self, Recorded, StateView};

/// What the recorded state says about the root.
pub(crate) struct Gathered<'a> {
    /// Claims of the applied generation, of interrupted switches, or of a legacy `/etc`.
    pub(crate) evidence: Evidence<'a>,
    /// Whether the claims come from a legacy NixOS `/etc`.
    pub(crate) migrated: bool,
    /// Overlays of recorded generations that differ from the new one.
    pub(crate) old_overlays: BTreeSet<String>,
    /// For a transition from the applied generation: which new entries want the same as
    /// there (aligned with the new entries). `None`: look at every entry.
    pub(crate) recorded: Option<Vec<bool>>,
    /// The stamps that proved those entries unchanged (kept by the commit).
    pub(crate) proven: Stamps,
}

/// Parses `applied.json`'s record (`file`), and says whether its manifest is the target's
/// (`gen_text`), compared by bytes: a re-switch, every boot, parses no second manifest.
pub(crate) fn read_view<'f>(
    root: &Root,
    file: Option<&'f crate::fs::mapped::Mapped>,
    gen_text: &str,
) -> Result<(Option<StateView<'f>>, bool)> {
    match file {
        Some(f) => {
            let (view, same) = StateView::parse_applied_against(root, f, gen_text)?;
            Ok((Some(view), same))
        }
        None => Ok((None, false)),
    }
}

/// The applied generation: where it was, and its manifest.
#[derive(Clone, Copy)]
pub(crate) struct Applied<'v, 'a> {
    pub(crate) generation: &'v str,
    pub(crate) manifest: &'v Manifest<'a>,
    /// Hashes of its runtime copies as installed.
    pub(crate) runtime: &'v BTreeMap<String, String>,
    /// What earlier generations made that is held by a mount point (still ours).
    pub(crate) held: &'v [Recorded<'static>],
}

pub(crate) fn gather_evidence<'a>(
    root: &mut Root,
    gen: &Generation<'a>,
    (applied, same_manifest, pending, key): (
        Option<Applied<'_, 'a>>,
        bool,
        &'a [Recorded],
        Option<&Key>,
    ),
) -> Result<Gathered<'a>> {
    let moved = overlay_moved(root, applied, pending)?;
    if let Some(view) = applied.filter(|_| pending.is_empty() && !same_manifest && !moved) {
        return transition::transition(root, gen, view, key);
    }
    let mut ev = Evidence::default();
    let mut old_overlays = BTreeSet::new();
    if let Some(view) = applied {
        let m = view.manifest;
        ev.add_manifest(m);
        ev.add_copies(view.runtime, key);
        add_held(&mut ev, view.held, key)?;
        if m.overlay != gen.manifest.overlay {
            old_overlays.insert(m.overlay.to_string());
        }
    }
    for rec in pending {
        ev.add_copies(&rec.runtime, key);
        if rec.manifest_text == gen.text {
            ev.add_manifest(&gen.manifest);
            continue;
        }
        let m = rec.manifest(&format!("the recorded generation {}", rec.generation))?;
        ev.add_manifest(&m);
        if m.overlay != gen.manifest.overlay {
            old_overlays.insert(m.overlay.to_string());
        }
    }
    let mut out = Gathered {
        evidence: ev,
        migrated: false,
        old_overlays,
        recorded: None,
        proven: Stamps::default(),
    };
    // Until a first switch commits, a legacy NixOS /etc stays evidence, also for the rerun of
    // an interrupted migration; and again after setup-etc.pl took /etc back (a rollback),
    // until the switch back commits.
    if applied.is_none() || moved || (!pending.is_empty() && state::legacy_marked(root)?) {
        if let Some(legacy) = legacy::evidence(root)? {
            out.evidence.merge(legacy);
            out.migrated = true;
            if gen.manifest.overlay != legacy::LEGACY_OVERLAY {
                out.old_overlays.insert(legacy::LEGACY_OVERLAY.to_owned());
            }
        }
    }
    Ok(out)
}

/// Whether something other than etcflip moved the overlay since: no overlay of a recorded
/// generation (the applied one, or one an interrupted switch was going to) shows a recorded
/// generation (e.g. after a rollback to a NixOS generation that runs setup-etc.pl, which flips
/// `/etc/static`). Then nothing recorded is trusted.
fn overlay_moved(root: &mut Root, applied: Option<Applied>, pending: &[Recorded]) -> Result<bool> {
    let Some(view) = applied else {
        return Ok(false);
    };
    let gens = recorded_generations(Some(view), pending);
    let mut overlays = vec![view.manifest.overlay.to_string()];
    for p in pending {
        overlays.push(p.manifest(&p.generation)?.overlay.to_string());
    }
    for overlay in &overlays {
        if let Node::Link(shown) = root.node_with(overlay.trim_start_matches('/'), false)? {
            if gens.iter().any(|g| shown.strip_suffix("/etc") == Some(*g)) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The generations the state records: the applied one and those of interrupted switches.
pub(crate) fn recorded_generations<'a>(
    applied: Option<Applied<'a, '_>>,
    pending: &'a [Recorded],
) -> Vec<&'a str> {
    applied
        .map(|a| a.generation)
        .into_iter()
        .chain(pending.iter().map(|p| p.generation.as_str()))
        .collect()
}

/// Adds the claims of what is held by a mount point (see [`held_records`]).
pub(crate) fn add_held(ev: &mut Evidence, held: &[Recorded], key: Option<&Key>) -> Result<()> {
    for rec in held {
        let m = rec.manifest("what the applied state holds")?;
        ev.add_manifest(&m.into_owned());
        ev.add_copies(&rec.runtime, key);
    }
    Ok(())
}

/// What this switch leaves only for a mount point (a path that is one, a directory holding
/// one) and that earlier generations made: the applied generation's entries (and what it
/// held) at or below those paths, kept in the committed state so they stay ours; a later
/// switch that can replace or remove them drops them.
pub(crate) fn held_records(
    plan: &Plan,
    applied: Option<Applied>,
) -> Result<Vec<Recorded<'static>>> {
    let held: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| s.held)
        .map(|s| s.target.as_str())
        .collect();
    let Some(applied) = applied.filter(|_| !held.is_empty()) else {
        return Ok(Vec::new());
    };
    let under = |t: &str| held.iter().any(|h| crate::manifest::is_same_or_below(t, h));
    // What is already held keeps the claim of the generation that made it; the applied
    // generation claims only what it did not leave itself (what it held, it never made).
    let mut out = Vec::new();
    let mut covered = BTreeSet::new();
    for rec in applied.held {
        let m = rec.manifest("what the applied state holds")?.into_owned();
        if let Some(kept) = held_part(&rec.generation, m, &rec.runtime, |t| {
            under(t) && !covered.contains(t)
        }) {
            let m = kept.manifest("what the applied state holds")?;
            covered.extend(m.entries.iter().map(|e| e.target.to_string()));
            out.push(kept);
        }
    }
    let fresh = |t: &str| under(t) && !covered.contains(t);
    let m = applied.manifest.clone().into_owned();
    out.extend(held_part(applied.generation, m, applied.runtime, fresh));
    Ok(out)
}

/// The part of a recorded generation whose targets pass `keep`, as a record of its own.
fn held_part(
    generation: &str,
    mut m: Manifest<'static>,
    runtime: &BTreeMap<String, String>,
    keep: impl Fn(&str) -> bool,
) -> Option<Recorded<'static>> {
    m.entries.retain(|e| keep(&e.target));
    let runtime = runtime
        .iter()
        .filter(|(t, _)| keep(t))
        .map(|(t, d)| (t.clone(), d.clone()))
        .collect();
    (!m.entries.is_empty()).then(|| Recorded {
        generation: generation.to_owned(),
        // As the state file keeps it (trimmed), so that "held as before" compares equal.
        manifest_text: Str::from(m.to_json().trim_end().to_owned()),
        runtime,
    })
}
