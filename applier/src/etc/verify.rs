//! `etcflip verify`: a read-only report of how a root differs from its applied generation
//! (`status.rs` says what is applied).

use std::path::Path;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::etc::owners::{self, Unresolved};
use crate::etc::right::{describe, Naming, Want};
use crate::etc::runtime::{self, Source};
use crate::fs::{Node, Root};
use crate::manifest::{Entry, Kind, Manifest};
use crate::txn::state::{self, Recorded, StateView};

pub use crate::drift::Drift;

/// The drift report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The applied generation.
    pub generation: String,
    /// Entries checked.
    pub checked: usize,
    /// Every difference.
    pub drift: Vec<Drift>,
    /// Copies owned by root because an owner name still resolves nowhere: not drift (the
    /// copy is what a switch makes today), but named.
    pub unresolved: Vec<Unresolved>,
}

/// The applied generation, its manifest and what it holds for mount points, if any.
pub(crate) type AppliedState = (String, Manifest<'static>, Vec<Recorded<'static>>);

pub(crate) fn applied(root: &mut Root) -> Result<Option<AppliedState>> {
    let Some(file) = state::read_applied_text(root)? else {
        return Ok(None);
    };
    let view = StateView::parse_applied(root, &file)?;
    let manifest = view.manifest()?.into_owned();
    let held = view.held();
    Ok(Some((view.generation, manifest, held)))
}

/// Compares the root with the applied generation.
pub fn verify(root_path: &Path) -> Result<Report> {
    let mut root = Root::open(root_path)?;
    let Some((generation, m, _)) = applied(&mut root)? else {
        bail!(
            "no generation has been applied to {} (no {}/applied.json)",
            root.show(""),
            root.show(&state::state_dir())
        );
    };
    let resolved = owners::resolve_recorded(&mut root, &generation, &m)?;
    let sources = runtime::read(&mut root, &m);
    let owners = nix::unistd::geteuid().is_root().then_some(&resolved.ids);
    let mut drift = Vec::new();
    let overlay_rel = m.overlay.trim_start_matches('/');
    let want = format!("{generation}/etc");
    let have = root.node_with(overlay_rel, false)?;
    if have != Node::Link(want.clone()) {
        drift.push(Drift {
            path: m.overlay.to_string(),
            expected: format!("a symlink to {want}"),
            found: describe(&have, Naming::Full),
        });
    }
    for e in &m.entries {
        let node = root.node(&format!("etc/{}", e.target))?;
        let owner = owners.and_then(|o| o.get(e.target.as_str())).copied();
        let source = sources.get(e.target.as_str());
        if let Some(expected) = drift_of(e, &m.overlay, &node, (owner, source)) {
            let naming = if e.is_runtime_copy() {
                Naming::Secret
            } else {
                Naming::Full
            };
            drift.push(Drift {
                path: format!("/etc/{}", e.target),
                expected,
                found: describe(&node, naming),
            });
        }
    }
    if let Some(users) = &m.users {
        drift.extend(user_drift(&mut root, users)?);
    }
    drift.extend(wrapper_drift(&mut root, &generation, &m)?);
    for p in state::read_journal(&mut root)? {
        drift.push(Drift {
            path: root.show(&state::state_dir()),
            expected: "no interrupted switch".into(),
            found: format!(
                "an interrupted switch to {} (run the switch again)",
                p.generation
            ),
        });
    }
    Ok(Report {
        generation,
        checked: m.entries.len(),
        drift,
        unresolved: resolved.unresolved,
    })
}

/// The wrappers' drift (`applier/src/wrappers/verify.rs`), against the generation as the
/// switch that applied it saw it.
fn wrapper_drift(root: &mut Root, generation: &str, m: &Manifest) -> Result<Vec<Drift>> {
    let gen_host = owners::generation_on_host(root, generation);
    crate::wrappers::verify::drift(root, m, &gen_host)
}

/// The user database's drift: what a switch to the applied generation would change there now
/// (accounts and members added at run time are not drift under `mutableUsers`).
fn user_drift(root: &mut Root, users: &etcflip_format::users::Users) -> Result<Vec<Drift>> {
    let report = crate::users::plan(root, users, None)?;
    let lines = (report.changes.iter()).chain(report.clashes.iter().map(String::as_str));
    Ok(lines
        .map(|c| Drift {
            path: "/etc/passwd, /etc/group, /etc/shadow".to_owned(),
            expected: "the applied generation's users".to_owned(),
            found: format!("a switch would {c}"),
        })
        .collect())
}

/// What `e` should be at `node`, when it is not that. A runtime copy (`source`) is compared
/// with its source as it is now.
fn drift_of(
    e: &Entry,
    overlay: &str,
    node: &Node,
    (owner, source): (Option<(u32, u32)>, Option<&Source>),
) -> Option<String> {
    let sha = match source {
        Some(Source::Missing(why)) => return Some(format!("a copy of its source, but {why}")),
        Some(s) => s.sha256(),
        None => e.sha256.as_deref(),
    };
    if Want::of(e, overlay, sha, owner).is_right(node) {
        return None;
    }
    let mode = e.mode.map_or(0, |m| m.0);
    let owner_txt = owner
        .map(|(u, g)| format!(", owner {u}:{g}"))
        .unwrap_or_default();
    Some(match e.kind {
        Kind::Symlink | Kind::DirectSymlink => format!(
            "a symlink to {}",
            e.expected_link(overlay).unwrap_or_default()
        ),
        Kind::Dir => "a directory".to_owned(),
        // A runtime copy is often a secret: its hash is never printed.
        Kind::Copy => match (source, e.source.as_deref()) {
            (Some(_), Some(from)) => format!("a copy of {from}, mode {mode:04o}{owner_txt}"),
            _ => format!(
                "a file with sha256 {}, mode {mode:04o}{owner_txt}",
                sha.unwrap_or("")
            ),
        },
    })
}
