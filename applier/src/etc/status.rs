//! `etcflip status`: what is applied to a root, what is pending, what is held, read without
//! the lock.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::etc::owners::{self, Unresolved};
use crate::etc::verify::applied;
use crate::fs::Root;
use crate::txn::state::{self, Recorded};

/// What `etcflip status` reports.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The applied generation, if any.
    pub generation: Option<String>,
    /// Its overlay.
    pub overlay: Option<String>,
    /// Entries by kind.
    pub entries: std::collections::BTreeMap<String, usize>,
    /// Generations of interrupted switches; a rerun finishes them.
    pub pending: Vec<String>,
    /// Copies of the applied generation whose owner names resolve nowhere yet.
    pub unresolved: Vec<Unresolved>,
    /// Paths etcflip made that the last switch left because a mount point holds them (still
    /// etcflip's: the first switch after the mount is gone finishes the job).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
}

/// Reads the state without taking the lock (a read-only view; a switch in progress shows as
/// pending).
pub fn status(root_path: &Path) -> Result<Status> {
    let mut root = Root::open(root_path)?;
    let applied = applied(&mut root)?;
    let pending = state::read_journal(&mut root)?
        .into_iter()
        .map(|p| p.generation)
        .collect();
    let mut entries = std::collections::BTreeMap::new();
    let mut overlay = None;
    let mut generation = None;
    let mut unresolved = Vec::new();
    let mut held = Vec::new();
    if let Some((g, m, h)) = applied {
        held = held_paths(&h)?;
        for e in &m.entries {
            *entries.entry(e.kind.as_str().to_owned()).or_insert(0) += 1;
        }
        unresolved = owners::resolve_recorded(&mut root, &g, &m)?.unresolved;
        overlay = Some(m.overlay.into_string());
        generation = Some(g);
    }
    Ok(Status {
        generation,
        overlay,
        entries,
        pending,
        unresolved,
        held,
    })
}

/// The topmost paths of what the applied state holds for mount points.
fn held_paths(held: &[Recorded]) -> Result<Vec<String>> {
    let mut targets = std::collections::BTreeSet::new();
    for rec in held {
        let m = rec.manifest("what the applied state holds")?;
        targets.extend(m.entries.iter().map(|e| e.target.to_string()));
    }
    let top = targets.iter().filter(|t| {
        !targets
            .iter()
            .any(|a| a != *t && crate::manifest::is_same_or_below(t, a))
    });
    Ok(top.map(|t| format!("/etc/{t}")).collect())
}
