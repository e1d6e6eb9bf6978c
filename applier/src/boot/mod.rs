//! Boot and images: the generation's other two users besides `switch` (issue 12, in
//! progress). `image/` builds a read-only image's tree; this module is `etcflip boot`, the
//! entry point for early boot.
//!
//! `etcflip boot GEN` works on an empty `/etc` and an empty `/run`, with no user database:
//! names resolve from the generation and the root, never from NSS (as every switch does).
//! - **A root whose `/etc` already holds this generation** (an image built by `etcflip
//!   image`, its state naming this generation) is not switched: boot makes only the overlay
//!   link when it lives outside `/etc` (under `/run`), and the wrappers. It writes nothing
//!   below `/etc` and reads neither the entries nor the users, so it costs the same whatever
//!   their number.
//! - **Otherwise** it is a switch with the boot-safe policy: a path in the way that is not
//!   etcflip's is moved aside (`--on-conflict backup`), never refused and never lost.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::etc::{self, OnConflict};
use crate::fs::{Node, Root};
use crate::txn::generation::GenerationFile;
use crate::txn::state::{self, StateView};

pub mod image;

/// Options of `etcflip boot`.
pub struct Options {
    /// The generation directory.
    pub generation: PathBuf,
    /// The root (`/` for the live system; `/sysroot` in an initrd).
    pub root: PathBuf,
}

/// What a boot did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Booted {
    /// The root's `/etc` already held the generation: only `/run` was written.
    Image {
        /// The overlay link made (`None`: it was already right, or lives in `/etc`).
        #[serde(skip_serializing_if = "Option::is_none")]
        overlay: Option<String>,
        /// The wrappers phase, when the generation declares wrappers.
        #[serde(skip_serializing_if = "Option::is_none")]
        wrappers: Option<Box<crate::wrappers::Report>>,
    },
    /// A switch, with the boot-safe policy.
    Switch(Box<etc::Outcome>),
}

/// Boots the root into the generation.
pub fn boot(opts: &Options) -> Result<Booted> {
    if let Some(done) = from_image(opts)? {
        return Ok(done);
    }
    let switch = etc::Options {
        generation: opts.generation.clone(),
        root: opts.root.clone(),
        dry_run: false,
        on_conflict: OnConflict::Backup,
        no_wrappers: false,
    };
    etc::switch(&switch).map(|o| Booted::Switch(Box::new(o)))
}

/// The image case: the root's applied state records this very generation (same path, same
/// manifest bytes). `None` otherwise.
fn from_image(opts: &Options) -> Result<Option<Booted>> {
    let file = GenerationFile::open(&opts.generation)?;
    let text = file.text()?;
    let mut root = Root::open(&opts.root)?;
    let Some(applied) = state::read_applied_text(&mut root)? else {
        return Ok(None);
    };
    let (view, same) = StateView::parse_applied_against(&root, &applied, text)?;
    if !same || view.generation != file.path_in_root(&root)? || !view.held().is_empty() {
        return Ok(None);
    }
    let head = etcflip_format::manifest::Head::of(text, &file.host.display().to_string())?;
    let target = format!("{}/etc", view.generation);
    let overlay = match head.overlay.strip_prefix("/etc/") {
        Some(_) => None,
        None => relink(&mut root, &head.overlay, &target)?,
    };
    let wrappers = crate::wrappers::command::apply_in(&mut root, &file.host, &head)?.map(Box::new);
    Ok(Some(Booted::Image { overlay, wrappers }))
}

/// Points the overlay (outside `/etc`) at `target`, unless it already is; returns what it
/// made.
fn relink(root: &mut Root, overlay: &str, target: &str) -> Result<Option<String>> {
    if root.node_with(overlay.trim_start_matches('/'), false)? == Node::Link(target.to_owned()) {
        return Ok(None);
    }
    crate::txn::flip::flip(root, overlay, target)?;
    Ok(Some(format!("{overlay} -> {target}")))
}
