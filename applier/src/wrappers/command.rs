//! `etcflip wrappers GEN`: the wrappers part of a generation alone, for NixOS's
//! `suid-sgid-wrappers.service`, which runs once `/run/wrappers` is mounted (after activation at
//! boot, when activation's `etcflip switch --no-wrappers` has switched `/etc` and the users).
//!
//! It takes the switch's lock, so it never runs beside a switch, resolves owners against the
//! root's user database as it is, and needs no journal: what it does converges from what
//! `/run/wrappers` holds (`plan.rs`), so a killed run is finished by the next one.

use std::path::PathBuf;

use anyhow::Result;

use super::Report;
use crate::fs::Root;
use crate::txn::generation::{Generation, GenerationFile};
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
pub fn apply(opts: &Options) -> Result<Option<Report>> {
    let mut progress = Progress::start(!opts.dry_run);
    let file = GenerationFile::open(&opts.generation)?;
    let text = file.text()?;
    let gen = Generation::parse_with(&file.host, text, |_, _| Vec::new(), true)?;
    let mut root = Root::open(&opts.root)?;
    let lock = if opts.dry_run {
        None
    } else {
        Some(lock::lock(&mut root, &mut || progress.signalled(), |_| {
            Ok(())
        })?)
    };
    let new = (&gen.manifest, file.host.as_path());
    let refuse = (None, crate::conflict::OnConflict::Abort);
    let Some(mut report) = super::plan(&mut root, new, Some(&gen.manifest), refuse)? else {
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
    head: &etcflip_format::manifest::Head,
) -> Result<Option<Report>> {
    let mut manifest = etcflip_format::manifest::Manifest::empty(&head.overlay);
    manifest.wrappers.clone_from(&head.wrappers);
    // Boot-safe, as boot's switch: what is at bin and not a link is moved aside.
    let backup = (None, crate::conflict::OnConflict::Backup);
    let Some(mut report) = super::plan(root, (&manifest, gen_host), Some(&manifest), backup)?
    else {
        return Ok(None);
    };
    super::carry_out(root, &mut report)?;
    Ok(Some(report))
}
