//! Phases 2 to 9 of a switch, once it is decided (see `txn/phase.rs`): journal, prepare,
//! flip, finish, commit.

use anyhow::Result;

use crate::etc::apply::{self, Children, Ctx};
use crate::etc::gather::Gathered;
use crate::etc::look::Looked;
use crate::etc::overlay::{after_flip, bridge_overlay};
use crate::etc::parts::Creation;
use crate::etc::plan::{Action, Plan};
use crate::etc::runner::Engine;
use crate::etc::stamps::{self, Clock};
use crate::fs::Root;
use crate::txn::flip;
use crate::txn::generation::Generation;
use crate::txn::phase::{Phase, Progress};
use crate::txn::state::{self, Recorded};
use crate::users::Report;
use etcflip_format::users::Users;

/// What phases 0 and 1 decided, for phases 2 to 9.
pub(crate) struct Decided<'d, 'a> {
    pub(crate) gen: &'d Generation<'a>,
    pub(crate) gathered: &'d Gathered<'a>,
    pub(crate) looked: &'d Looked,
    /// The generations the state records (applied, pending).
    pub(crate) gens: Vec<&'d str>,
    /// The overlay's new link text.
    pub(crate) target_text: &'d str,
    pub(crate) clock: Option<Clock>,
    /// What stays ours because a mount point holds it (see [`crate::etc::gather::held_records`]).
    pub(crate) held: &'d [Recorded<'static>],
    /// The declared users and what phase 1 planned for them.
    pub(crate) users: Option<(&'d Users<'a>, &'d Report)>,
    /// What phase 1 planned for the wrappers.
    pub(crate) wrappers: Option<&'d crate::wrappers::Report>,
}

/// Phases 2 to 9: journal, prepare, flip, finish, commit. Returns notes on paths left alone.
pub(crate) fn carry_out(
    root: &mut Root,
    d: &Decided,
    (record, pending): (&Recorded, &[Recorded]),
    (plan, progress): (&Plan, &mut Progress),
    (tmpfiles, children): (&Engine, Children),
) -> Result<Vec<String>> {
    progress.enter(Phase::Journal)?;
    let children = children.complete(tmpfiles, plan)?;
    // Phase 2: from here on, every path any pending generation made counts as ours.
    let mut older = pending.to_vec();
    older.retain(|r| r != record);
    let migrated = d.gathered.migrated;
    // Held records count as ours from the journal on, like interrupted targets.
    let mut claimed: Vec<Recorded> = older.clone();
    for h in d.held {
        if !claimed.contains(h) {
            claimed.push(h.clone());
        }
    }
    state::write_journal(root, record, &claimed, migrated)?;
    progress.enter(Phase::Users)?;
    users_phase(root, d, progress)?;
    // Phase 4 for the wrappers: their directory is built aside, invisible until phase 8.
    let built = d
        .wrappers
        .map(|w| crate::wrappers::prepare(root, w))
        .transpose()?
        .flatten();
    let mut ctx = Ctx {
        root,
        new: &d.gen.manifest,
        gen_host: d.gen.host,
        owners: &d.looked.owners.ids,
        runtime: &d.looked.sources,
        evidence: &d.gathered.evidence,
    };
    let old_overlays = &d.gathered.old_overlays;
    let old_overlay = old_overlays.first().map(String::as_str);
    let steps = (plan, children.creation);
    let notes = transact(&mut ctx, steps, progress, old_overlay, d.target_text)?;
    after_flip(ctx.root, old_overlays, &d.gen.manifest, &d.gens, migrated)?;
    progress.enter(Phase::Wrappers)?;
    let mut notes = notes;
    if let Some(w) = d.wrappers {
        notes.extend(crate::wrappers::finish(ctx.root, w, built.as_deref())?);
    }
    if let Some(clock) = d.clock {
        let left = plan.left_dirs(&d.gen.manifest);
        let proven = (clock, &d.gathered.proven);
        stamps::record(ctx.root, &d.gen.manifest, proven, &left)?;
    }
    progress.enter(Phase::Commit)?;
    state::commit(ctx.root, record, &older, d.held)?;
    Ok(notes)
}

/// Phase 3: the user database as phase 1 planned it; without users, no seal may stay.
fn users_phase(root: &mut Root, d: &Decided, progress: &mut Progress) -> Result<()> {
    match d.users {
        Some((decl, planned)) => {
            crate::users::write(root, decl, planned, &mut || progress.signalled())?;
        }
        // Sealed, so unchanged (see `users/seal.rs`); without users, no seal may stay.
        None if d.gen.declares_users() => {}
        None => crate::users::seal::remove(root)?,
    }
    Ok(())
}

/// Phases 4 to 7: prepare, flip (`target_text` is the overlay's new text), finish. Returns
/// notes on paths left alone.
fn transact(
    ctx: &mut Ctx,
    (plan, creation): (&Plan, Option<Creation>),
    progress: &mut Progress,
    old_overlay: Option<&str>,
    target_text: &str,
) -> Result<Vec<String>> {
    progress.enter(Phase::Prepare)?;
    if let Some(old) = old_overlay {
        bridge_overlay(ctx.root, old, &ctx.new.overlay)?;
    }
    apply::prepare(ctx, plan, creation)?;
    progress.enter(Phase::Flip)?;
    if plan.flip.foreign == Some(Action::Backup) {
        apply::back_up_overlay(ctx.root, &ctx.new.overlay)?;
    }
    flip::flip(ctx.root, &ctx.new.overlay, target_text)?;
    progress.enter(Phase::Finish)?;
    apply::finish(ctx, plan)
}
