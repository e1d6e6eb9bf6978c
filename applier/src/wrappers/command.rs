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
use crate::txn::generation::GenerationFile;
use crate::txn::lock;
use crate::txn::phase::Progress;

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
/// Of the manifest it reads only the overlay and the wrappers ([`Head`]): NixOS runs it at
/// every boot, and the entries, however many, are not its business.
pub fn apply(opts: &Options) -> Result<Option<Report>> {
    let mut progress = Progress::start(!opts.dry_run);
    let file = GenerationFile::open(&opts.generation)?;
    let origin = file.host.join("manifest.json").display().to_string();
    let head = Head::of(file.text()?, &origin)?;
    let mut root = Root::open(&opts.root)?;
    let lock = if opts.dry_run {
        None
    } else {
        Some(lock::lock(&mut root, &mut || progress.signalled(), |_| {
            Ok(())
        })?)
    };
    let Some(mut report) = plan_head(&mut root, &file.host, &head, OnConflict::Abort)? else {
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
