//! `etcflip switch`: the phases of a switch in order (what the recorded state says comes from
//! `gather.rs`).
//!
//! 0. load and validate the generation; lock; read state.
//! 1. plan (pure); `--dry-run` stops here.
//! 2. journal the target before the first write.
//! 4. prepare (create, stage, relink, read back) — [`crate::etc::apply::prepare`].
//! 5. flip.
//! 6. put staged paths in place; 7. remove what is stale and ours.
//! 9. commit: record the new generation, drop the journal.
//!
//! (Phases 3 and 8, users and wrappers, are not part of this version.)

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::errors::Refused;
use crate::etc::apply::{self, Children, Ctx};
use crate::etc::gather::{
    gather_evidence, held_records, read_view, recorded_generations, Applied, Gathered,
};
use crate::etc::legacy;
use crate::etc::observe;
use crate::etc::owners::{self, Owners, Unresolved};
use crate::etc::plan::{self, Inputs, OnConflict, Plan};
use crate::etc::runner::{self, Engine};
use crate::etc::runtime::{self, Key};
use crate::etc::stamps::{self, Clock};
use crate::fs::{Node, Root};
use crate::manifest::{Manifest, Str};
use crate::txn::flip;
use crate::txn::generation::{Generation, GenerationFile};
use crate::txn::lock::{self, Lock};
use crate::txn::phase::{Phase, Progress};
use crate::txn::state::{self, Recorded, StateView};

/// Options of `etcflip switch`.
pub struct Options {
    /// The generation directory.
    pub generation: PathBuf,
    /// The root (`/` for the live system).
    pub root: PathBuf,
    /// Print the plan and stop.
    pub dry_run: bool,
    /// What to do with paths that are not ours.
    pub on_conflict: OnConflict,
}

/// What a switch did.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The plan that was (or, with `--dry-run`, would be) carried out.
    pub plan: Plan,
    /// Whether anything was changed.
    pub changed: bool,
    /// Paths deliberately left alone after the flip.
    pub notes: Vec<String>,
    /// Copies installed owned by root because an owner name resolves nowhere yet.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<Unresolved>,
    /// Runtime copies left as they were because their source is missing: the switch is
    /// incomplete (exit 1), everything else was applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
    /// Whether this root was migrated from a NixOS `setup-etc.pl` `/etc`.
    pub migrated: bool,
    /// Set when SIGTERM/SIGINT arrived after the flip: the switch was finished anyway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

/// Runs a switch. Under `abort`, conflicts return the plan unapplied (`changed` false, the
/// conflicts in the plan): see [`Outcome::refused`].
pub fn switch(opts: &Options) -> Result<Outcome> {
    // First of all: from here on SIGTERM/SIGINT end the switch at a consistent point.
    let mut progress = Progress::start(!opts.dry_run);
    let file = GenerationFile::open(&opts.generation)?;
    let gen_text = file.text()?;
    let mut root = Root::open(&opts.root)?;
    let gen_in_root = file.path_in_root(&root)?;
    let locking = (opts.dry_run, progress.signals());
    let (lock, gen_first) = lock_in_order(locking, &mut root, &file.host, gen_text)?;
    // Stamps recorded at the commit must predate everything this switch looks at.
    let clock = (!opts.dry_run).then(Clock::start).transpose()?;
    // The runtime-copy key is made only once the switch is going to write; a switch that
    // writes must be able to read an existing one.
    let key = if opts.dry_run {
        Key::read(&mut root)
    } else {
        Key::read_to_write(&mut root)?
    };
    // The applied state is mapped; what is parsed borrows its strings from the file.
    let applied_text = state::read_applied_text(&mut root)?;
    let (view, same_manifest) = read_view(&root, applied_text.as_ref(), gen_text)?;
    // Errors about tmpfiles wait until the generation is known to be valid (exit 2 first).
    let engine = lock
        .as_ref()
        .filter(|_| !same_manifest)
        .map(|lock| tmpfiles_engine(lock, &mut root));
    let ready = engine.as_ref().and_then(|e| e.as_ref().ok());
    let spare = Children::speculative(ready.filter(|_| view.is_some()));
    let old = view.as_ref().filter(|_| !same_manifest);
    let (gen, parsed) = parse_both(gen_first, (&file.host, gen_text), old)?;
    let engine = engine.transpose()?;
    let target_text = format!("{gen_in_root}/etc");
    let held_before = view.as_ref().map(StateView::held).unwrap_or_default();
    let applied = view.as_ref().map(|v| Applied {
        generation: &v.generation,
        manifest: parsed.as_ref().unwrap_or(&gen.manifest),
        runtime: &v.runtime,
        held: &held_before,
    });
    let pending = state::read_journal(&mut root)?;
    // Once the manifests show how many targets are added, the creation's children start
    // (with the speculative one), to overlap their start-up with looking and planning.
    let children = match &engine {
        Some(e) => spare.early(e, applied.map(|a| a.manifest), &gen.manifest)?,
        None => spare,
    };
    let state = (applied, same_manifest, &pending[..], key.as_ref());
    let gathered = gather_evidence(&mut root, &gen, state)?;
    // A killed run's scratch goes before anything is looked at (we hold the lock).
    if !pending.is_empty() && !opts.dry_run {
        let targets = gen.manifest.entries.iter().map(|e| e.target.as_str());
        apply::sweep(&mut root, targets.chain(gathered.evidence.targets()))?;
    }
    let mut known: Vec<&str> = recorded_generations(applied, &pending);
    known.extend(held_before.iter().map(|h| h.generation.as_str()));
    let plan_for = (&target_text[..], opts.on_conflict, &known[..]);
    let (plan, looked) = look_and_plan(&mut root, &gen, &gathered, plan_for)?;
    let mut outcome = Outcome::planned(plan, &looked, gathered.migrated);
    // Refused: the caller reports the plan and the conflicts (exit 3); nothing was written.
    if !outcome.plan.conflicts().is_empty() {
        return Ok(outcome);
    }
    let found = (&outcome.plan, &looked.world, &gathered.evidence);
    let mut record = Recorded {
        generation: gen_in_root,
        manifest_text: Str::borrowed(gen.text),
        runtime: runtime::recorded(&looked.sources, found, key.as_ref()),
    };
    let keyed = runtime::keyed(&gen.manifest, key.as_ref());
    let held = held_records(&outcome.plan, applied)?;
    let current = state_current((&pending, same_manifest, keyed), view.as_ref(), &record)
        && held == held_before;
    if opts.dry_run || (outcome.plan.is_noop() && current) {
        if !opts.dry_run {
            legacy::keep_clean(&mut root, &gen.manifest)?; // in case it was lost meanwhile
        }
        return Ok(outcome);
    }
    let lock = writing(lock.as_ref(), &mut root)?;
    if !runtime::keyed(&gen.manifest, key.as_ref()) {
        let key = Key::read_or_make(&mut root)?;
        let found = (&outcome.plan, &looked.world, &gathered.evidence);
        record.runtime = runtime::recorded(&looked.sources, found, Some(&key));
    }
    let decided = Decided {
        gen: &gen,
        gathered: &gathered,
        looked: &looked,
        gens: recorded_generations(applied, &pending),
        target_text: &target_text,
        clock,
        held: &held,
    };
    let engine = match engine {
        Some(e) => e,
        None => tmpfiles_engine(lock, &mut root)?,
    };
    let procs = (&engine, children);
    let states = (&record, &pending[..]);
    let out = (&mut outcome, &mut progress);
    carry_out(&mut root, &decided, states, out, procs)?;
    outcome.interrupted = progress.finished_despite();
    Ok(outcome)
}

/// What a killed run left, swept once the lock is held: the state directory's temporary files
/// (all but the files `/etc` keeps there), and `setup-etc.pl`'s `.clean` being rewritten.
fn leftovers(root: &mut Root) -> Result<()> {
    state::sweep(root, &[stamps::FILE, runtime::KEY_FILE])?;
    legacy::sweep(root)
}

/// The lock of a switch that is going to write, with the lock file made (see `lock.rs`).
fn writing<'l>(lock: Option<&'l Lock>, root: &mut Root) -> Result<&'l Lock> {
    let Some(lock) = lock else {
        bail!("internal: a switch that writes holds the lock");
    };
    lock.for_writing(root)?;
    Ok(lock)
}

/// The `systemd-tmpfiles` a writing switch runs (found before the first write), tied to its
/// lock and to the root's `etc` as opened now.
fn tmpfiles_engine<'l>(lock: &'l Lock, root: &mut Root) -> Result<Engine<'l>> {
    Engine::new(runner::find_tmpfiles()?, lock, root)
}

/// Takes the lock (none for a dry run, which writes nothing, not even the lock). Where `/etc`
/// is there, taking it writes nothing (see `lock.rs`), so it comes first and the generation is
/// checked later, while the applied state is parsed; on a root without `/etc` the generation
/// is checked first (returned), so that an invalid one is refused before the lock makes it.
fn lock_in_order<'f>(
    (dry_run, signals): (bool, &mut Option<crate::txn::signals::Signals>),
    root: &mut Root,
    host: &'f std::path::Path,
    text: &'f str,
) -> Result<(Option<Lock>, Option<Generation<'f>>)> {
    if dry_run {
        return Ok((None, None));
    }
    if lock::writes_nothing(root)? {
        return Ok((Some(lock::lock(root, signals, leftovers)?), None));
    }
    let gen = Generation::parse(host, text)?;
    Ok((Some(lock::lock(root, signals, leftovers)?), Some(gen)))
}

/// The generation (unless `parsed` already) and the applied manifest (`old`, when it is not
/// the generation's), parsed at once on two threads (each a few milliseconds for a large
/// manifest). A problem with the generation is reported first.
fn parse_both<'f>(
    parsed: Option<Generation<'f>>,
    (host, text): (&'f std::path::Path, &'f str),
    old: Option<&StateView<'f>>,
) -> Result<(Generation<'f>, Option<Manifest<'f>>)> {
    if let Some(gen) = parsed {
        return Ok((gen, old.map(StateView::manifest).transpose()?));
    }
    let Some(old) = old else {
        // A re-switch (every boot) has one manifest to parse: no second thread for nothing.
        return Ok((Generation::parse(host, text)?, None));
    };
    std::thread::scope(|s| {
        let gen = s.spawn(|| Generation::parse(host, text));
        let parsed = old.manifest();
        let gen = gen
            .join()
            .map_err(|_| anyhow::anyhow!("internal: the thread parsing the generation panicked"))?;
        Ok((gen?, Some(parsed?)))
    })
}

/// What phases 0 and 1 decided, for phases 2 to 9.
struct Decided<'d, 'a> {
    gen: &'d Generation<'a>,
    gathered: &'d Gathered<'a>,
    looked: &'d Looked,
    /// The generations the state records (applied, pending).
    gens: Vec<&'d str>,
    /// The overlay's new link text.
    target_text: &'d str,
    clock: Option<Clock>,
    /// What stays ours because a mount point holds it (see [`crate::etc::gather::held_records`]).
    held: &'d [Recorded<'static>],
}

/// Phases 2 to 9: journal, prepare, flip, finish, commit.
fn carry_out(
    root: &mut Root,
    d: &Decided,
    (record, pending): (&Recorded, &[Recorded]),
    (outcome, progress): (&mut Outcome, &mut Progress),
    (tmpfiles, children): (&Engine, Children),
) -> Result<()> {
    progress.enter(Phase::Journal)?;
    let children = children.complete(tmpfiles, &outcome.plan)?;
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
    outcome.changed = true;
    let mut ctx = Ctx {
        root,
        new: &d.gen.manifest,
        gen_host: d.gen.host,
        owners: &d.looked.owners.ids,
        runtime: &d.looked.sources,
        evidence: &d.gathered.evidence,
        tmpfiles,
    };
    let old_overlays = &d.gathered.old_overlays;
    let old_overlay = old_overlays.first().map(String::as_str);
    let steps = (&outcome.plan, children.creation);
    outcome.notes = transact(&mut ctx, steps, progress, old_overlay, d.target_text)?;
    after_flip(ctx.root, old_overlays, &d.gen.manifest, &d.gens, migrated)?;
    if let Some(clock) = d.clock {
        let left = outcome.plan.left_dirs(&d.gen.manifest);
        let proven = (clock, &d.gathered.proven);
        stamps::record(ctx.root, &d.gen.manifest, proven, &left)?;
    }
    progress.enter(Phase::Commit)?;
    state::commit(ctx.root, record, &older, d.held)
}

impl Outcome {
    /// A planned switch, nothing done yet.
    fn planned(plan: Plan, looked: &Looked, migrated: bool) -> Outcome {
        Outcome {
            plan,
            changed: false,
            notes: Vec::new(),
            unresolved: looked.owners.unresolved.clone(),
            incomplete: runtime::incomplete(&looked.sources),
            migrated,
            interrupted: None,
        }
    }

    /// The refusal, when the plan has conflicts (nothing was changed).
    pub fn refused(&self) -> Option<Refused> {
        let conflicts = self.plan.conflicts();
        (!conflicts.is_empty()).then_some(Refused { conflicts })
    }
}

/// Phases 4 to 7: prepare, flip (`target_text` is the overlay's new text), finish. Returns
/// notes on paths left alone.
fn transact(
    ctx: &mut Ctx,
    (plan, creation): (&Plan, Option<crate::etc::parts::Creation>),
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
    if plan.flip.foreign == Some(crate::etc::plan::Action::Backup) {
        apply::back_up_overlay(ctx.root, &ctx.new.overlay)?;
    }
    flip::flip(ctx.root, &ctx.new.overlay, target_text)?;
    progress.enter(Phase::PutInPlace)?;
    apply::finish(ctx, plan)
}

/// Whether the state already says exactly what this switch would record: the same
/// generation and manifest, runtime digests that are keyed and the same, nothing pending.
fn state_current(
    (pending, same_manifest, keyed): (&[Recorded], bool, bool),
    view: Option<&StateView>,
    record: &Recorded,
) -> bool {
    pending.is_empty()
        && same_manifest
        && keyed
        && view.is_some_and(|v| v.generation == record.generation && v.runtime == record.runtime)
}

/// Phase 1: looks at the root (a transition only at what changes, see `observe`; a re-switch,
/// a rerun after an interruption or a migration at everything) and plans, purely.
fn look_and_plan(
    root: &mut Root,
    gen: &Generation,
    gathered: &Gathered,
    (target_text, on_conflict, gens): (&str, OnConflict, &[&str]),
) -> Result<(Plan, Looked)> {
    let evidence = &gathered.evidence;
    let recorded = gathered.recorded.as_deref();
    let owners = owners::resolve(root, &gen.manifest, Some(gen.host))?;
    let sources = runtime::read(root, &gen.manifest)?;
    let world = observe::observe(root, &gen.manifest, evidence, gen.host, recorded)?;
    let overlay_rel = gen.manifest.overlay.trim_start_matches('/');
    let overlay_node = root.node_with(overlay_rel, false)?;
    let legacy_path = gen.manifest.overlay == legacy::LEGACY_OVERLAY;
    let as_root = nix::unistd::geteuid().is_root();
    let plan = plan::plan(&Inputs {
        new: &gen.manifest,
        evidence,
        world: &world,
        overlay: (
            &overlay_node,
            target_text.to_owned(),
            overlay_is_ours(&overlay_node, gens, gathered.migrated && legacy_path),
        ),
        on_conflict,
        owners: as_root.then_some(&owners.ids),
        runtime: &sources,
        mounts: &crate::fs::mounts::below_etc(root),
        recorded,
    });
    let looked = Looked {
        world,
        owners,
        sources,
    };
    Ok((plan, looked))
}

/// Whether a link at the overlay path is etcflip's: it shows a generation the state records
/// (applied, interrupted or holding a mount point), or it is the legacy NixOS overlay of a
/// root being migrated (`legacy`). Anything else there is foreign, a conflict like any other
/// path.
fn overlay_is_ours(node: &Node, gens: &[&str], legacy: bool) -> bool {
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

/// What phase 1 found (the plan goes to the [`Outcome`]).
struct Looked {
    /// Observations.
    world: crate::etc::observe::World,
    owners: Owners,
    sources: runtime::Sources,
}

/// When the overlay moves, the new one is first made to show the *old* generation (the old
/// overlay's own target), so that relinking paths to it before the flip changes nothing
/// readers see; the flip then moves it to the new generation.
fn bridge_overlay(root: &mut Root, old: &str, new: &str) -> Result<()> {
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
fn after_flip(
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
            new.entries.iter().any(|e| {
                crate::manifest::is_same_or_below(&e.target, t)
                    || crate::manifest::is_same_or_below(t, &e.target)
            })
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
