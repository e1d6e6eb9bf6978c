//! `etcflip switch` for `/etc`: phases 0 and 1 (load, lock, read the state, look, plan),
//! then, unless it is a dry run, refused or a no-op, phases 2 to 9 in `carry.rs`. The phases
//! and where a signal stops them are in `txn/phase.rs`; what the recorded state says comes
//! from `gather/mod.rs`, the look and the plan from `look.rs`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::etc::apply::{self, Children};
use crate::etc::carry::{carry_out, Decided};
use crate::etc::gather::{
    gather_evidence, held_records, read_view, recorded_generations, Applied, Gathered,
};
use crate::etc::legacy;
use crate::etc::look::{look_and_plan, Looked};
use crate::etc::outcome::Outcome;
use crate::etc::payload::payload_problems;
use crate::etc::plan::OnConflict;
use crate::etc::runner::{self, Engine};
use crate::etc::runtime::{self, Key};
use crate::etc::stamps::Clock;
use crate::fs::mapped::Mapped;
use crate::fs::Root;
use crate::manifest::{Manifest, Str};
use crate::txn::generation::{Generation, GenerationFile};
use crate::txn::lock::{self, Lock};
use crate::txn::phase::{Phase, Progress};
use crate::txn::state::{self, Recorded, StateView};
use crate::users::{Report, Seed};

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
    /// Leave `/run/wrappers` alone (`etcflip wrappers` makes them, e.g. from NixOS's
    /// `suid-sgid-wrappers.service`).
    pub no_wrappers: bool,
    /// Salts derived from the generation instead of random ones (`etcflip image`): one
    /// generation then gives one `shadow`, so one image, whoever builds it.
    pub reproducible: bool,
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
    let locking = (opts.dry_run, &mut progress);
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
    let opened = Opened {
        root,
        progress,
        gen_in_root,
        clock,
        key,
    };
    let gen = (file.host.as_path(), gen_text, gen_first);
    look_and_decide(opts, opened, lock.as_ref(), gen, applied_text.as_ref())
}

/// What phase 0 opened and read, for the phases after it.
struct Opened {
    root: Root,
    progress: Progress,
    /// The generation directory as the root sees it.
    gen_in_root: String,
    clock: Option<Clock>,
    key: Option<Key>,
}

/// Phases 0 (the state) and 1: reads the state and the manifests, starts the creation's
/// children, gathers evidence (sweeping what a killed run left), looks and plans; then, unless refused, [`write_unless_current`].
fn look_and_decide<'f>(
    opts: &Options,
    mut o: Opened,
    lock: Option<&Lock>,
    (host, gen_text, gen_first): (&'f Path, &'f str, Option<Generation<'f>>),
    applied_text: Option<&'f Mapped>,
) -> Result<Outcome> {
    let (view, same_manifest) = read_view(&o.root, applied_text, gen_text)?;
    // Errors about tmpfiles wait until the generation is known to be valid (exit 2 first).
    let engine = lock
        .filter(|_| !same_manifest)
        .map(|lock| tmpfiles_engine(lock, &mut o.root));
    let ready = engine.as_ref().and_then(|e| e.as_ref().ok());
    let spare = Children::speculative(ready.filter(|_| view.is_some()));
    let old = view.as_ref().filter(|_| !same_manifest);
    // The users part of the applied generation again is parsed only if its seal breaks.
    let (mut gen, parsed) = parse_both(gen_first, (host, gen_text), old, same_manifest)?;
    let engine = engine.transpose()?;
    let pending = state::read_journal(&mut o.root)?;
    let sealed = sealed_users(&mut o.root, &mut gen, same_manifest && pending.is_empty())?;
    let held_before = view.as_ref().map(StateView::held).unwrap_or_default();
    let applied = view.as_ref().map(|v| Applied {
        generation: &v.generation,
        manifest: parsed.as_ref().unwrap_or(&gen.manifest),
        runtime: &v.runtime,
        held: &held_before,
    });
    // Once the manifests show how many targets are added, the creation's children start
    // (with the speculative one), to overlap their start-up with looking and planning.
    let children = match &engine {
        Some(e) => spare.early(e, applied.map(|a| a.manifest), &gen.manifest)?,
        None => spare,
    };
    let state = (applied, same_manifest, &pending[..], o.key.as_ref());
    let gathered = gather_evidence(&mut o.root, &gen, state)?;
    if !pending.is_empty() && !opts.dry_run {
        sweep_killed_run(&mut o.root, (&gen, &pending), &gathered)?;
    }
    let target_text = format!("{}/etc", o.gen_in_root);
    let mut known: Vec<&str> = recorded_generations(applied, &pending);
    known.extend(held_before.iter().map(|h| h.generation.as_str()));
    let plan_for = (&target_text[..], opts.on_conflict, &known[..]);
    o.progress.enter(Phase::Plan)?;
    let seed = opts.reproducible.then(|| salt_seed(gen_text));
    let users = sealed.map_or_else(|| plan_users(&mut o.root, &gen, seed), |r| Ok(Some(r)))?;
    let (plan, looked) = look_and_plan(&mut o.root, (&gen, users.as_ref()), &gathered, plan_for)?;
    let old = applied.map_or(same_manifest.then_some(&gen.manifest), |a| Some(a.manifest));
    let wrappers = plan_wrappers(opts, &mut o.root, (&gen, old), users.as_ref())?;
    let outcome = Outcome::planned(plan, &looked, gathered.migrated, (users, wrappers));
    // Refused: the caller reports the plan and the conflicts (exit 3); nothing was written.
    if outcome.refused().is_some() {
        return Ok(outcome);
    }
    let planned = Planned {
        gen: &gen,
        gathered: &gathered,
        looked: &looked,
        applied,
        view: view.as_ref(),
        held_before: &held_before,
        pending: &pending,
        same_manifest,
        target_text: &target_text,
    };
    write_unless_current(opts, o, (lock, engine, children), &planned, outcome)
}

/// The users phase's report when its seal holds (`may`: the generation is the applied one
/// and no journal is pending, see `users/seal.rs`); otherwise `None`, and the generation's
/// deferred `users` part is parsed for [`plan_users`].
fn sealed_users(root: &mut Root, gen: &mut Generation, may: bool) -> Result<Option<Report>> {
    if may && gen.declares_users() {
        if let Some(report) = crate::users::sealed(root)? {
            return Ok(Some(report));
        }
    }
    gen.parse_users()?;
    Ok(None)
}

/// The wrappers phase's plan (phase 1), unless `--no-wrappers`; a wrapper whose owner resolves
/// nowhere makes the switch incomplete.
fn plan_wrappers(
    opts: &Options,
    root: &mut Root,
    (gen, old): (&Generation, Option<&Manifest>),
    users: Option<&Report>,
) -> Result<Option<crate::wrappers::Report>> {
    if opts.no_wrappers {
        return Ok(None);
    }
    crate::wrappers::plan(
        root,
        (&gen.manifest, gen.host),
        old,
        (users, opts.on_conflict),
    )
}

/// The users phase's plan (phase 1), when the generation declares users.
fn plan_users(root: &mut Root, gen: &Generation, seed: Option<Seed>) -> Result<Option<Report>> {
    match &gen.manifest.users {
        Some(decl) => crate::users::plan(root, decl, seed).map(Some),
        None => Ok(None),
    }
}

/// What a reproducible switch derives its salts from: the manifest, which names everything the
/// generation holds (so two generations never share salts).
fn salt_seed(manifest: &str) -> Seed {
    use sha2::Digest as _;
    sha2::Sha256::digest(manifest.as_bytes()).into()
}

/// A killed run's scratch, beside every target it may have worked on, goes before anything is
/// looked at (the lock is held); so do the temporary files its users phase left in a place of
/// the user database outside `/etc`, which the journal's generations name.
fn sweep_killed_run(
    root: &mut Root,
    (gen, pending): (&Generation, &[Recorded]),
    gathered: &Gathered,
) -> Result<()> {
    let targets = gen.manifest.entries.iter().map(|e| e.target.as_str());
    apply::sweep(root, targets.chain(gathered.evidence.targets()))?;
    for p in pending {
        let shown = format!("the manifest of {}", p.generation);
        let Ok(m) = crate::manifest::Manifest::from_trusted_json(&p.manifest_text, &shown) else {
            continue; // not one a switch could have started on
        };
        let place = m.users.and_then(|u| u.password_files_location);
        if let Some(place) = place {
            crate::users::sweep_place(root, &place)?;
        }
    }
    Ok(())
}

/// What phases 0 and 1 found and planned, for [`write_unless_current`].
struct Planned<'s, 'a> {
    gen: &'s Generation<'a>,
    gathered: &'s Gathered<'a>,
    looked: &'s Looked,
    applied: Option<Applied<'s, 'a>>,
    view: Option<&'s StateView<'a>>,
    held_before: &'s [Recorded<'static>],
    pending: &'s [Recorded<'static>],
    same_manifest: bool,
    /// The overlay's new link text.
    target_text: &'s str,
}

/// What the switch records; then, unless it is a dry run or that and the root are already
/// current (a no-op), phases 2 to 9.
fn write_unless_current(
    opts: &Options,
    mut o: Opened,
    (lock, engine, children): (Option<&Lock>, Option<Engine>, Children),
    s: &Planned,
    mut outcome: Outcome,
) -> Result<Outcome> {
    let (gen, looked, gathered) = (s.gen, s.looked, s.gathered);
    let found = (&outcome.plan, &gathered.evidence);
    let mut record = Recorded {
        generation: o.gen_in_root.clone(),
        manifest_text: Str::borrowed(gen.text),
        runtime: looked.runtime_record(found, o.key.as_ref()),
    };
    let keyed = runtime::keyed(&gen.manifest, o.key.as_ref());
    let held = held_records(&outcome.plan, s.applied)?;
    let users_current = outcome.users.as_ref().is_none_or(|u| u.current);
    let wrappers_current = (outcome.wrappers.as_ref()).is_none_or(crate::wrappers::Report::current);
    let current = state_current((s.pending, s.same_manifest, keyed), s.view, &record)
        && held == s.held_before
        && users_current
        && wrappers_current;
    if opts.dry_run || (outcome.plan.is_noop() && current) {
        if !opts.dry_run {
            legacy::keep_clean(&mut o.root, &gen.manifest)?; // in case it was lost meanwhile
        }
        return Ok(outcome);
    }
    let lock = writing(lock, &mut o.root)?;
    if !keyed {
        let key = Key::read_or_make(&mut o.root)?;
        let found = (&outcome.plan, &gathered.evidence);
        record.runtime = looked.runtime_record(found, Some(&key));
    }
    let decided = Decided {
        gen,
        gathered,
        looked,
        gens: recorded_generations(s.applied, s.pending),
        target_text: s.target_text,
        clock: o.clock,
        held: &held,
        users: gen.manifest.users.as_ref().zip(outcome.users.as_ref()),
        wrappers: outcome.wrappers.as_ref(),
    };
    let engine = match engine {
        Some(e) => e,
        None => tmpfiles_engine(lock, &mut o.root)?,
    };
    let procs = (&engine, children);
    let states = (&record, s.pending);
    let steps = (&outcome.plan, &mut o.progress);
    outcome.notes = carry_out(&mut o.root, &decided, states, steps, procs)?;
    outcome.changed = true;
    outcome.interrupted = o.progress.finished_despite();
    Ok(outcome)
}

/// What a killed run left, swept once the lock is held: the state directory's temporary files
/// (all but the files `/etc` keeps there), the users phase's, and `setup-etc.pl`'s `.clean`
/// being rewritten.
fn leftovers(root: &mut Root) -> Result<()> {
    state::sweep(root, &super::LOCAL_STATE)?;
    crate::users::sweep(root)?;
    legacy::sweep(root)
}

/// The lock of a switch that is going to write, with the lock file made (see `txn/lock.rs`).
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
/// is there, taking it writes nothing (see `txn/lock.rs`), so it comes first and the generation is
/// checked later, while the applied state is parsed; on a root without `/etc` the generation
/// is checked first (returned), so that an invalid one is refused before the lock makes it.
fn lock_in_order<'f>(
    (dry_run, progress): (bool, &mut Progress),
    root: &mut Root,
    host: &'f std::path::Path,
    text: &'f str,
) -> Result<(Option<Lock>, Option<Generation<'f>>)> {
    if dry_run {
        return Ok((None, None));
    }
    if lock::writes_nothing(root)? {
        return Ok((
            Some(lock::lock(root, &mut || progress.signalled(), leftovers)?),
            None,
        ));
    }
    let gen = Generation::parse(host, text, payload_problems)?;
    Ok((
        Some(lock::lock(root, &mut || progress.signalled(), leftovers)?),
        Some(gen),
    ))
}

/// The generation (unless `parsed` already) and the applied manifest (`old`, when it is not
/// the generation's), parsed at once on two threads (each a few milliseconds for a large
/// manifest). A problem with the generation is reported first.
fn parse_both<'f>(
    parsed: Option<Generation<'f>>,
    (host, text): (&'f std::path::Path, &'f str),
    old: Option<&StateView<'f>>,
    defer_users: bool,
) -> Result<(Generation<'f>, Option<Manifest<'f>>)> {
    if let Some(gen) = parsed {
        return Ok((gen, old.map(StateView::manifest).transpose()?));
    }
    let Some(old) = old else {
        // A re-switch (every boot) has one manifest to parse: no second thread for nothing.
        let gen = Generation::parse_with(host, text, payload_problems, defer_users)?;
        return Ok((gen, None));
    };
    std::thread::scope(|s| {
        let gen = s.spawn(|| Generation::parse(host, text, payload_problems));
        let parsed = old.manifest();
        // Reached in builds that unwind (tests); the release build aborts at the panic.
        let gen = gen
            .join()
            .map_err(|_| anyhow::anyhow!("internal: the thread parsing the generation panicked"))?;
        Ok((gen?, Some(parsed?)))
    })
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
