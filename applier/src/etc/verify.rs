//! `etcflip verify`: a read-only report of how a root differs from its applied generation
//! (`status.rs` says what is applied).

use std::path::Path;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::etc::owners::{self, Unresolved};
use crate::etc::runtime::{self, Source};
use crate::fs::{Node, Root};
use crate::manifest::{Kind, Manifest};
use crate::txn::state::{self, Recorded, StateView};

/// One path that differs from the applied generation.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Drift {
    /// The path in the root's namespace.
    pub path: String,
    /// What the applied generation made there.
    pub expected: String,
    /// What is there now.
    pub found: String,
}

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
    let gen_host = owners::generation_on_host(&root, &generation);
    let resolved = owners::resolve(&mut root, &m, Some(&gen_host))?;
    let sources = runtime::read(&mut root, &m)?;
    let owners = nix::unistd::geteuid().is_root().then_some(&resolved.ids);
    let mut drift = Vec::new();
    let overlay_rel = m.overlay.trim_start_matches('/');
    let want = format!("{generation}/etc");
    let have = root.node_with(overlay_rel, false)?;
    if have != Node::Link(want.clone()) {
        drift.push(Drift {
            path: m.overlay.to_string(),
            expected: format!("a symlink to {want}"),
            found: describe(&have),
        });
    }
    for e in &m.entries {
        let node = root.node(&format!("etc/{}", e.target))?;
        let expected = match e.kind {
            Kind::Symlink | Kind::DirectSymlink => {
                let right = matches!(&node, Node::Link(t) if e.is_link_text(&m.overlay, t));
                (!right).then(|| {
                    format!(
                        "a symlink to {}",
                        e.expected_link(&m.overlay).unwrap_or_default()
                    )
                })
            }
            Kind::Dir => (!matches!(node, Node::Dir(_))).then(|| "a directory".to_owned()),
            Kind::Copy => copy_drift(
                e,
                &node,
                owners.and_then(|o| o.get(e.target.as_str())),
                sources.get(e.target.as_str()),
            ),
        };
        if let Some(expected) = expected {
            drift.push(Drift {
                path: format!("/etc/{}", e.target),
                expected,
                found: if e.is_runtime_copy() {
                    describe_without_content(&node)
                } else {
                    describe(&node)
                },
            });
        }
    }
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

/// What a copy should be, when it is not that. A runtime copy (`source`) is compared with
/// its source as it is now.
fn copy_drift(
    e: &crate::manifest::Entry,
    node: &Node,
    owner: Option<&(u32, u32)>,
    source: Option<&Source>,
) -> Option<String> {
    let mode = e.mode.map_or(0, |m| m.0);
    let owner_txt = owner
        .map(|(u, g)| format!(", owner {u}:{g}"))
        .unwrap_or_default();
    let sha = match source {
        Some(Source::Missing(why)) => return Some(format!("a copy of its source, but {why}")),
        Some(s) => s.sha256(),
        None => e.sha256.as_deref(),
    };
    // A runtime copy is often a secret: its hash is never printed.
    let want = match (source, e.source.as_deref()) {
        (Some(_), Some(from)) => format!("a copy of {from}, mode {mode:04o}{owner_txt}"),
        _ => format!(
            "a file with sha256 {}, mode {mode:04o}{owner_txt}",
            sha.unwrap_or("")
        ),
    };
    let Node::File(f) = node else {
        return Some(want);
    };
    let owner_ok = owner.is_none_or(|&(u, g)| (f.meta.uid, f.meta.gid) == (u, g));
    let ok = Some(f.sha256.as_str()) == sha && f.meta.mode == mode && owner_ok;
    (!ok).then_some(want)
}

/// [`describe`], without a file's hash (runtime copies: often secrets).
fn describe_without_content(node: &Node) -> String {
    match node {
        Node::File(f) => format!(
            "a file of other content or attributes, mode {:04o}, owner {}:{}",
            f.meta.mode, f.meta.uid, f.meta.gid
        ),
        other => describe(other),
    }
}

fn describe(node: &Node) -> String {
    match node {
        Node::Absent => "nothing".into(),
        Node::Link(t) => format!("a symlink to {t}"),
        Node::File(f) => format!(
            "a file with sha256 {}, mode {:04o}, owner {}:{}",
            f.sha256, f.meta.mode, f.meta.uid, f.meta.gid
        ),
        Node::Dir(_) => "a directory".into(),
        Node::Other(_) => "a special file".into(),
        Node::Blocked(a) => format!("nothing reachable (/{a} is not a directory)"),
    }
}
