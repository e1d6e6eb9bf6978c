//! `etcflip wrappers GEN`: the wrappers part of a generation alone, for NixOS's
//! `suid-sgid-wrappers.service`, which runs once `/run/wrappers` is mounted (after activation at
//! boot, when activation's `etcflip switch --no-wrappers` has switched `/etc` and the users).
//!
//! It takes the switch's lock, so it never runs beside a switch, resolves owners against the
//! root's user database as it is, and needs no journal: what it does converges from what
//! `/run/wrappers` holds (`plan.rs`), so a killed run is finished by the next one.

use std::path::{Path, PathBuf};

use anyhow::Result;
use etcflip_format::manifest::{Head, Manifest};

use super::Report;
use crate::conflict::OnConflict;
use crate::fs::Root;
use crate::txn::generation::{Generation, GenerationFile};
use crate::txn::lock;
use crate::txn::phase::Progress;
use crate::users::names::needs_tables;

/// Options of `etcflip wrappers`.
pub struct Options {
    /// The generation directory.
    pub generation: PathBuf,
    /// The root (`/` for the live system).
    pub root: PathBuf,
    /// Print the plan and stop.
    pub dry_run: bool,
}

/// Makes the root's `/run/wrappers` hold the generation's wrappers; `None` when it declares
/// none (nothing is touched then).
///
/// When every owner is `root` or a number (NixOS's wrappers are all root's), it reads only the
/// manifest's overlay and wrappers ([`Head`]): NixOS runs it at every boot, and the entries,
/// however many, are not its business. A named owner resolves as a switch resolves it, in the
/// `passwd` and `group` the generation may ship among its entries, so then it reads them all.
pub fn apply(opts: &Options) -> Result<Option<Report>> {
    let mut progress = Progress::start(!opts.dry_run);
    let file = GenerationFile::open(&opts.generation)?;
    let text = file.text()?;
    let origin = file.host.join("manifest.json").display().to_string();
    let head = Head::of(text, &origin)?;
    let owners = head
        .wrappers
        .iter()
        .flatten()
        .flat_map(|w| [&w.owner, &w.group]);
    let whole = if needs_tables(owners) {
        Some(Generation::parse_with(&file.host, text, |_, _| Vec::new(), true)?.manifest)
    } else {
        None
    };
    let mut root = Root::open(&opts.root)?;
    let lock = if opts.dry_run {
        None
    } else {
        Some(lock::lock(&mut root, &mut || progress.signalled(), |_| {
            Ok(())
        })?)
    };
    let planned = match &whole {
        Some(m) => super::plan(
            &mut root,
            (m, &file.host),
            Some(m),
            (None, OnConflict::Abort),
        )?,
        None => plan_head(&mut root, &file.host, &head, OnConflict::Abort)?,
    };
    let Some(mut report) = planned else {
        return Ok(None);
    };
    if let Some(lock) = lock
        .as_ref()
        .filter(|_| report.clash.is_none() && !report.current())
    {
        lock.for_writing(&mut root)?;
        super::carry_out(&mut root, &mut report)?;
    }
    Ok(Some(report))
}

/// The wrappers of a generation whose manifest's head is `head` (its entries unread), at boot
/// on an image that already holds the generation: the caller holds the switch's lock (which
/// writes nothing: `/etc` may be read-only); owners resolve in the image's user database.
pub(crate) fn apply_in(
    root: &mut Root,
    gen_host: &std::path::Path,
    head: &Head,
) -> Result<Option<Report>> {
    // Boot-safe, as boot's switch: what is at bin and not a link is moved aside.
    let Some(mut report) = plan_head(root, gen_host, head, OnConflict::Backup)? else {
        return Ok(None);
    };
    super::carry_out(root, &mut report)?;
    Ok(Some(report))
}

/// The wrappers phase's plan for a generation known by its head alone (the applied one is
/// taken to be the same: no other is at hand), `foreign` deciding on a `bin` not etcflip's.
fn plan_head(
    root: &mut Root,
    gen_host: &Path,
    head: &Head,
    foreign: OnConflict,
) -> Result<Option<Report>> {
    let mut manifest = Manifest::empty(&head.overlay);
    manifest.wrappers.clone_from(&head.wrappers);
    super::plan(
        root,
        (&manifest, gen_host),
        Some(&manifest),
        (None, foreign),
    )
}
