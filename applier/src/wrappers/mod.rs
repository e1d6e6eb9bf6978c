//! The wrappers domain: NixOS's `security.wrappers`, as `suid-sgid-wrappers.service` makes
//! them, from the same generation and in the same switch as `/etc` and the users.
//!
//! `/run/wrappers/bin` is a link to a directory of `/run/wrappers` holding one patched
//! `etcflip-wrapper` per program. A switch whose wrappers changed builds a whole new directory
//! aside in phase 4 (`build.rs`), after the users phase, so owners resolve against the user
//! database it wrote; phase 8 flips `bin` to it with one rename and removes the old one. A
//! switch whose wrappers did not change touches nothing (`plan.rs` says when).
//!
//! What is etcflip's here: the `bin` link and every `wrappers.*` directory of `/run/wrappers`.
//! That is the layout NixOS's own service uses (`mktemp -d /run/wrappers/wrappers.XXXXXXXXXX`),
//! which the NixOS module replaces, so a directory it left behind is removed too.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use etcflip_format::manifest::Manifest;
use etcflip_format::wrapper::Reference;
use etcflip_format::wrappers::Wrapper;

use crate::conflict::OnConflict;
use crate::fs::{Node, Root};
use crate::users::names::{lookup, tables_for, Tables};

pub(crate) mod build;
pub mod command;
pub(crate) mod look;
pub(crate) mod payload;
pub(crate) mod plan;
pub(crate) mod verify;

use plan::{Planned, Want, Work};

/// The wrappers' directory, relative to the root.
pub(crate) const DIR: &str = "run/wrappers";
/// The link a switch flips, relative to the root.
pub(crate) const BIN: &str = "run/wrappers/bin";
/// The link made beside `bin` and renamed over it.
pub(crate) const NEW_LINK: &str = "run/wrappers/bin.etcflip-new";
/// The link as reports name it.
pub(crate) const BIN_SHOWN: &str = "/run/wrappers/bin";
/// Every wrappers directory's name starts so (NixOS's `mktemp` template and etcflip's).
pub(crate) const DIRS: &str = "wrappers.";
/// The start of the name of a directory etcflip builds; then the digest of its wrappers.
pub(crate) const DIR_PREFIX: &str = "wrappers.etcflip-";

/// What the wrappers phase does (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// One line per wrapper added, changed or removed, and per leftover removed; empty when
    /// nothing changes.
    pub changes: Vec<String>,
    /// What is deliberately left as it is (a mount point), or could not be removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Wrappers left out because their owner or group resolves nowhere: the switch is then
    /// incomplete (exit 1), and the next one where the names resolve adds them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<String>,
    /// Why the switch is refused (something at `/run/wrappers/bin` that is not ours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clash: Option<String>,
    #[serde(skip)]
    pub(crate) work: Work,
    /// The checked payload every wrapper is written from, when a directory is built.
    #[serde(skip)]
    pub(crate) reference: Option<Reference>,
    /// `/run/wrappers` as the plan saw it (`verify.rs` checks the content of the same files).
    #[serde(skip)]
    pub(crate) live: Option<plan::Live>,
}

impl Report {
    /// Whether the phase has nothing to do.
    pub fn current(&self) -> bool {
        self.work.build.is_none() && self.work.remove.is_empty() && !self.work.new_link
    }
}

/// Phase 1: what the wrappers phase will do. `None` when neither the generation nor the
/// applied one declares wrappers, and `/run/wrappers/bin` is not etcflip's (then it is not
/// etcflip's to touch); a generation without wrappers after one with them empties it.
pub(crate) fn plan(
    root: &mut Root,
    (new, gen_host): (&Manifest, &Path),
    old: Option<&Manifest>,
    (users, foreign): (Option<&crate::users::Report>, OnConflict),
) -> Result<Option<Report>> {
    let declared = match (&new.wrappers, old.and_then(|m| m.wrappers.as_ref())) {
        (Some(w), _) => &w[..],
        (None, Some(_)) => &[],
        (None, None) => match traces(root)? {
            Traces::Bin => &[],
            Traces::Leftovers => return Ok(Some(report(plan::leftovers_only(&look::look(root)?)))),
            Traces::None => return Ok(None),
        },
    };
    let tables = Tables {
        planned: users,
        gen_host: Some(gen_host),
    };
    let (wants, unresolved) = wants(root, declared, new, tables)?;
    let mut live = look::look(root)?;
    let mut planned = plan::plan(wants.clone(), &live, foreign);
    let reference = match &planned.work.build {
        Some((_, wants)) => payload::check(gen_host, wants)?,
        None => None,
    };
    if let Some(r) = &reference {
        // A rebuild: its lines can say which wrappers run another program now.
        look::targets(root, &mut live, r.at());
        planned = plan::plan(wants, &live, foreign);
    }
    let mut report = report(planned);
    report.unresolved = unresolved;
    report.reference = reference;
    report.live = Some(live);
    Ok(Some(report))
}

/// The report of a plan (no wrapper left out, no payload to write from).
fn report(planned: Planned) -> Report {
    let Planned {
        changes,
        notes,
        work,
        clash,
    } = planned;
    Report {
        changes,
        notes,
        unresolved: Vec::new(),
        clash,
        work,
        reference: None,
        live: None,
    }
}

/// What etcflip left in `/run/wrappers` for a generation without wrappers to clean.
enum Traces {
    /// `bin` points at a directory etcflip built (a generation since switched with
    /// `--no-wrappers` may have made it): it is emptied.
    Bin,
    /// Only directories etcflip built, which a stopped switch left: they are removed.
    Leftovers,
    None,
}

fn traces(root: &mut Root) -> Result<Traces> {
    if let Node::Link(text) = root.node_with(BIN, false)? {
        if text.starts_with(&format!("/run/wrappers/{DIR_PREFIX}")) {
            return Ok(Traces::Bin);
        }
    }
    if !matches!(root.node_with(DIR, false)?, Node::Dir(_)) {
        return Ok(Traces::None);
    }
    let left = root.list(DIR)?.iter().any(|n| n.starts_with(DIR_PREFIX));
    Ok(if left {
        Traces::Leftovers
    } else {
        Traces::None
    })
}

/// The wanted wrappers, owners resolved; those whose owner resolves nowhere are left out and
/// named.
fn wants(
    root: &mut Root,
    declared: &[Wrapper],
    new: &Manifest,
    tables: Tables,
) -> Result<(Vec<Want>, Vec<String>)> {
    let ids = declared.iter().flat_map(|w| [&w.owner, &w.group]);
    let (users, groups) = tables_for(root, new, tables, ids)?;
    let mut wants = Vec::with_capacity(declared.len());
    let mut unresolved = Vec::new();
    for w in declared {
        let (uid, user) = lookup(Some(&w.owner), &users);
        let (gid, group) = lookup(Some(&w.group), &groups);
        if user.is_some() || group.is_some() {
            let names: Vec<String> = [
                user.map(|u| format!("user {u:?}")),
                group.map(|g| format!("group {g:?}")),
            ]
            .into_iter()
            .flatten()
            .collect();
            unresolved.push(format!(
                "{BIN_SHOWN}/{}: {} not in passwd/group; left out until a switch where it resolves",
                w.program.as_str(),
                names.join(" and ")
            ));
            continue;
        }
        wants.push(Want {
            program: w.program.to_string(),
            source: w.source.to_string(),
            mode: w.mode.0,
            uid,
            gid,
            owners: format!("{}:{}", w.owner, w.group),
            caps: w.sets(),
            caps_text: w.capabilities.as_deref().map(str::to_owned),
            sha256: w.sha256.to_string(),
        });
    }
    Ok((wants, unresolved))
}

/// Phase 4: builds the new directory, if the plan wants one; returns its name.
pub(crate) fn prepare(root: &mut Root, report: &Report) -> Result<Option<String>> {
    match &report.work.build {
        Some((prefix, wants)) => {
            build::build(root, prefix, wants, report.reference.as_ref()).map(Some)
        }
        None => Ok(None),
    }
}

/// Phases 4 and 8 at once, for `etcflip wrappers` and boot (the caller holds the lock):
/// builds what the report says, flips, and adds the notes on what was left.
pub(crate) fn carry_out(root: &mut Root, report: &mut Report) -> Result<()> {
    if report.clash.is_some() || report.current() {
        return Ok(());
    }
    let built = prepare(root, report)?;
    let notes = finish(root, report, built.as_deref())?;
    report.notes.extend(notes);
    Ok(())
}

/// Phase 8: flips `bin` to `built` and removes the directories it no longer points at;
/// returns notes on what could not be removed (the next switch tries again).
pub(crate) fn finish(root: &mut Root, report: &Report, built: Option<&str>) -> Result<Vec<String>> {
    build::flip(root, built, &report.work)
}
