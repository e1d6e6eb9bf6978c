//! The apply engine: carries out a [`Plan`] in the phases the README lists ("How a switch
//! runs").
//!
//! - [`prepare`] (phase 4, before the flip): links and directories through
//!   `systemd-tmpfiles --create`, directories to swap in built aside, copies and direct links
//!   staged beside their targets, ours-but-different paths relinked to the overlay, and
//!   everything read back. A failure here leaves what readers see unchanged.
//! - the flip (phase 5, `txn/flip.rs`): one `rename(2)` of a fresh link over the overlay —
//!   the commit point.
//! - [`finish()`] (phases 6–7): staged paths renamed into place, built directories exchanged
//!   in, then what is stale and still ours removed with `unlinkat` on directory fds.
//!
//! Scratch names live beside their target, are derived from it (so a rerun finds a killed
//! run's leftovers) and contain `.etcflip-`, which targets may not contain.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context as _, Result};

use crate::etc::evidence::Evidence;
use crate::etc::parts::{Creation, Line};
use crate::etc::plan::{Action, Found, Plan, Step};
use crate::etc::right::Want;
use crate::etc::runner;
use crate::etc::scratch::{scratch, PURPOSES};
use crate::fs::{sha256_bytes, Owner, Root};
use crate::manifest::{Entry, Kind, Manifest};
use crate::tmpfiles::{dir_line, link_line};

mod children;
mod finish;

pub(crate) use children::Children;
pub(crate) use finish::{back_up_overlay, finish};

/// What the engine needs besides the plan.
pub(crate) struct Ctx<'a> {
    /// The root.
    pub root: &'a mut Root,
    /// The target generation's manifest.
    pub new: &'a Manifest<'a>,
    /// The generation directory on the host (payload source for copies).
    pub gen_host: &'a Path,
    /// Resolved owners of copies.
    pub owners: &'a BTreeMap<String, (u32, u32)>,
    /// What the sources of runtime copies held when the switch read them.
    pub runtime: &'a crate::etc::runtime::Sources,
    /// Claims of earlier generations (removal re-checks).
    pub evidence: &'a Evidence<'a>,
}

fn rel(target: &str) -> String {
    format!("etc/{target}")
}

fn entry<'a>(new: &'a Manifest<'a>, target: &str) -> Result<&'a Entry<'a>> {
    new.get(target)
        .with_context(|| format!("internal: no entry for /etc/{target}"))
}

/// Removes scratch leftovers of a killed run for every given target.
pub(crate) fn sweep<'t>(root: &mut Root, targets: impl Iterator<Item = &'t str>) -> Result<()> {
    for t in targets {
        for p in PURPOSES {
            root.remove_tree_if_present(&scratch(t, p))?;
        }
    }
    Ok(())
}

/// Where a step's path is made: in place, or inside the swap tree of an ancestor.
fn made_at(step: &Step) -> String {
    match &step.with {
        Some(a) if step.action == Action::Build => {
            let rest = &step.target[a.len() + 1..];
            format!("{}/{rest}", scratch(a, "swap"))
        }
        _ => rel(&step.target),
    }
}

/// What must be at a path after it is made.
enum Expect {
    Link(String),
    Dir,
    File(String),
}

impl Expect {
    /// As the one rightness check takes it: the mode and owner a file was just given are not
    /// read back.
    fn want(&self) -> Want<'_> {
        match self {
            Expect::Link(t) => Want::Link(Some(t)),
            Expect::Dir => Want::Dir,
            Expect::File(h) => Want::File {
                sha256: Some(h),
                mode: None,
                owner: None,
            },
        }
    }
}

/// Whether `step` makes its path (or its swap tree) through tmpfiles: links and directories
/// to create or build in place, directories built aside to be swapped in.
fn made_by_tmpfiles(step: &Step) -> bool {
    match step.action {
        Action::Create | Action::Build => matches!(step.kind, Kind::Symlink | Kind::Dir),
        Action::SwapIn | Action::Backup | Action::Overwrite => step.kind == Kind::Dir,
        _ => false,
    }
}

/// Phase 4: everything before the flip. `creation`: the `--create` children started early
/// (see [`Children`]).
pub(crate) fn prepare(ctx: &mut Ctx, plan: &Plan, creation: Option<Creation>) -> Result<()> {
    let overlay = ctx.new.overlay.clone();
    let mut lines = Vec::new();
    let mut expect: Vec<(String, Expect)> = Vec::new();
    for step in plan.steps.iter().filter(|s| made_by_tmpfiles(s)) {
        let e = entry(ctx.new, &step.target)?;
        let at = match step.action {
            Action::Create | Action::Build => made_at(step),
            _ => scratch(&e.target, "swap"),
        };
        if step.action != Action::Create {
            ctx.root.remove_tree_if_present(&at)?;
        }
        let (text, want) = if e.kind == Kind::Dir {
            let mode = e.mode.map_or(0o755, |m| m.0);
            (dir_line(&runner::in_etc(&at), mode), Expect::Dir)
        } else {
            let link = e.overlay_link(&overlay);
            (link_line(&runner::in_etc(&at), &link), Expect::Link(link))
        };
        let dir = e.kind == Kind::Dir;
        lines.push(Line {
            at: at.clone(),
            text,
            dir,
        });
        expect.push((at, want));
    }
    match creation {
        Some(c) => c.run(ctx.root, &lines, |root, range, complaint| {
            read_back(root, &expect[range], complaint)
        })?,
        None if !lines.is_empty() => bail!("internal: no tmpfiles started for phase 4"),
        None => {}
    }
    stage(ctx, plan)?;
    relink(ctx, plan)
}

/// Copies and direct links: staged beside their target, or made inside a swap tree.
fn stage(ctx: &mut Ctx, plan: &Plan) -> Result<()> {
    let mut expect = Vec::new();
    for step in &plan.steps {
        let e = entry_if(ctx.new, step);
        let Some(e) = e.filter(|e| e.kind != Kind::Dir) else {
            continue;
        };
        let at = match step.action {
            Action::Build if e.kind != Kind::Symlink => made_at(step),
            a if a.replaces() => scratch(&e.target, "stage"),
            _ => continue,
        };
        ctx.root.remove_tree_if_present(&at)?;
        expect.push((at.clone(), make_final(ctx, e, &at)?));
    }
    read_back(ctx.root, &expect, None)
}

fn entry_if<'a>(new: &'a Manifest<'a>, step: &Step) -> Option<&'a Entry<'a>> {
    if matches!(step.action, Action::Remove | Action::Leave | Action::Keep) {
        None
    } else {
        new.get(&step.target)
    }
}

/// Writes the final form of a non-directory entry at `at`.
fn make_final(ctx: &mut Ctx, e: &Entry, at: &str) -> Result<Expect> {
    match e.kind {
        Kind::Symlink => {
            let text = e.overlay_link(&ctx.new.overlay);
            ctx.root.symlink(&text, at)?;
            Ok(Expect::Link(text))
        }
        Kind::DirectSymlink => {
            let text = e.source.as_deref().unwrap_or_default().to_owned();
            ctx.root.symlink(&text, at)?;
            Ok(Expect::Link(text))
        }
        Kind::Copy => {
            let content = if e.is_runtime_copy() {
                match ctx.runtime.get(e.target.as_str()) {
                    Some(crate::etc::runtime::Source::Read { content, .. }) => content.clone(),
                    _ => bail!(
                        "internal: no source read for the runtime copy /etc/{}",
                        e.target
                    ),
                }
            } else {
                payload(ctx.gen_host, e)?
            };
            let (uid, gid) = ctx.owners.get(e.target.as_str()).copied().unwrap_or((0, 0));
            let mode = e.mode.map_or(0o644, |m| m.0);
            ctx.root
                .write_new(at, &[&content], mode, Owner { uid, gid })?;
            Ok(Expect::File(sha256_bytes(&content)))
        }
        Kind::Dir => bail!("internal: a directory is not staged"),
    }
}

/// The payload content of a copy, checked against the manifest's sha256.
pub(crate) fn payload(gen_host: &Path, e: &Entry) -> Result<Vec<u8>> {
    let path = gen_host.join("etc").join(e.target.as_str());
    let content = crate::fs::read_regular(&path).context("cannot read the payload")?;
    let sha = sha256_bytes(&content);
    if Some(sha.as_str()) != e.sha256.as_deref() {
        // An invalid generation (exit 2), found before the flip: nothing visible changed.
        return Err(crate::errors::Invalid::one(format!(
            "the payload {} does not match its manifest (sha256 {sha}, manifest says {}): the \
             generation was modified",
            path.display(),
            e.sha256.as_deref().unwrap_or("nothing")
        ))
        .into());
    }
    Ok(content)
}

/// Ours paths that must become the overlay link, swapped in before the flip: until the flip
/// the link resolves into the old generation and shows what the old entry showed.
fn relink(ctx: &mut Ctx, plan: &Plan) -> Result<()> {
    for step in &plan.steps {
        if !(step.action == Action::Relink || step.relink_first) {
            continue;
        }
        let text = crate::manifest::overlay_link(&ctx.new.overlay, &step.target);
        let tmp = scratch(&step.target, "link");
        ctx.root.remove_tree_if_present(&tmp)?;
        ctx.root.symlink(&text, &tmp)?;
        if step.found == Found::Dir {
            ctx.root.exchange(&tmp, &rel(&step.target))?;
        } else {
            ctx.root.rename(&tmp, &rel(&step.target))?;
        }
        read_back(ctx.root, &[(rel(&step.target), Expect::Link(text))], None)?;
    }
    Ok(())
}

fn read_back(root: &mut Root, expect: &[(String, Expect)], complaint: Option<&str>) -> Result<()> {
    let mut wrong = Vec::new();
    for (at, want) in expect {
        let node = root.node(at)?;
        if !want.want().is_right(&node) {
            let wanted = match want {
                Expect::Link(t) => format!("a link to {t}"),
                Expect::Dir => "a directory".into(),
                Expect::File(h) => format!("a file with sha256 {h}"),
            };
            wrong.push(format!(
                "{}: expected {wanted}, found {node:?}",
                root.show(at)
            ));
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "read-back after creating failed for {} path(s); nothing visible was switched:\n  {}",
        wrong.len(),
        wrong.join("\n  ")
    );
    if let Some(c) = complaint {
        msg.push_str("\n  systemd-tmpfiles said: ");
        msg.push_str(c);
    }
    bail!(msg)
}
