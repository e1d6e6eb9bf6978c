//! Boot and images: the generation's other two users besides `switch` (issue 12). `image/`
//! builds a read-only image's tree; this module is `etcflip boot`, the entry point for early
//! boot (an initrd's too: `nixos/initrd.nix`).
//!
//! `etcflip boot GEN` works on an empty `/etc` and an empty `/run`, with no user database:
//! names resolve from the generation and the root, never from NSS (as every switch does).
//! - **A root whose `/etc` already holds this generation** (an image built by `etcflip
//!   image`, its state naming this generation) is not switched: boot makes only the overlay
//!   link when it lives outside `/etc` (under `/run`), and the wrappers. It writes nothing
//!   below `/etc` and reads neither the entries nor the users (unless they live elsewhere,
//!   below), so it costs the same whatever their number.
//! - **A read-only `/etc` that holds another generation** (or a pending switch) is refused
//!   with nothing written: a switch could only fail there half-way.
//! - **The users**, when such an image links its user database to a writable place
//!   (`passwordFilesLocation`), are planned and written there, before the wrappers.
//! - **Otherwise** it is a switch with the boot-safe policy: a path in the way that is not
//!   etcflip's is moved aside (`--on-conflict backup`), never refused and never lost.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::etc::{self, OnConflict};
use crate::fs::{Node, Root};
use crate::txn::phase::Progress;
use crate::txn::state;
use etcflip_format::manifest::{Head, Manifest};
use etcflip_format::users::Users;

pub mod image;

/// Options of `etcflip boot`.
pub struct Options {
    /// The generation directory.
    pub generation: PathBuf,
    /// The root (`/` for the live system; `/sysroot` in an initrd).
    pub root: PathBuf,
    /// Leave `/run/wrappers` alone (`etcflip wrappers` makes them once it is mounted).
    pub no_wrappers: bool,
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
        /// The users phase, when the image keeps the user database outside `/etc`.
        #[serde(skip_serializing_if = "Option::is_none")]
        users: Option<Box<crate::users::Report>>,
        /// The wrappers phase, when the generation declares wrappers.
        #[serde(skip_serializing_if = "Option::is_none")]
        wrappers: Option<Box<crate::wrappers::Report>>,
    },
    /// A switch, with the boot-safe policy.
    Switch(Box<etc::Outcome>),
    /// Nothing done: the root's `/etc` is read-only and holds another generation (or one a
    /// switch left pending), which only a reboot into this generation's image changes.
    Refused(String),
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
        no_wrappers: opts.no_wrappers,
        reproducible: false,
    };
    etc::switch(&switch).map(|o| Booted::Switch(Box::new(o)))
}

/// The image case: the root's applied state records this very generation (its path, and a
/// manifest of its size; a store path is immutable) with nothing pending. `None` otherwise.
/// Neither manifest is read whole: only the state's head and the generation's first and last
/// lines, so the cost does not grow with the entries.
fn from_image(opts: &Options) -> Result<Option<Booted>> {
    let (host, manifest) = crate::txn::generation::open_manifest(&opts.generation)?;
    let mut root = Root::open(&opts.root)?;
    let in_root = crate::txn::generation::path_in_root(&host, &root)?;
    // A read-only /etc whose state names the generation with no switch pending: what a
    // writable one holds is not vouched for by its state alone.
    if !root.read_only("etc")? {
        return Ok(None);
    }
    let pending = root.node_with(&format!("{}/journal.json", state::state_dir()), false)?;
    let (head, manifest_len, ends) = manifest_head(&manifest, &host.join("manifest.json"))?;
    if pending != Node::Absent
        || !crate::txn::applied::applied_is(&mut root, &in_root, manifest_len)?
    {
        // A switch could only fail there, half-way: say why, having written nothing.
        return Ok(Some(Booted::Refused(format!(
            "{} is read-only and does not hold {in_root} (another generation's image, or a \
             switch left pending): nothing was written; this generation takes effect when its \
             own image is booted",
            root.show("etc")
        ))));
    }
    let mut progress = Progress::start(true);
    let _lock = crate::txn::lock::lock(&mut root, &mut || progress.signalled(), |_| Ok(()))?;
    let target = format!("{in_root}/etc");
    let overlay = match head.overlay.strip_prefix("/etc/") {
        Some(_) => None,
        None => relink(&mut root, &head.overlay, &target)?,
    };
    // Before the wrappers, whose owners resolve in the user database.
    let users = users_elsewhere(&mut root, (&host, &manifest), ends, &mut progress)?;
    // A failure, not a refusal (exit 3 on a read-only /etc means "another generation"):
    // the overlay link is made, the users are not.
    if let Some(clashes) = users.as_ref().filter(|u| !u.clashes.is_empty()) {
        anyhow::bail!(
            "the users of {} were not written: {}",
            host.display(),
            clashes.clashes.join("; ")
        );
    }
    let users = users.map(Box::new);
    let wrappers = if opts.no_wrappers {
        None
    } else {
        crate::wrappers::command::apply_in(&mut root, &host, &head)?.map(Box::new)
    };
    Ok(Some(Booted::Image {
        overlay,
        users,
        wrappers,
    }))
}

/// The users phase of an image whose `/etc` links its user database to a writable place
/// (`passwordFilesLocation`): the image's `/etc/passwd` is such a link (else the users are
/// the image's own, and there is nothing to do). Of the manifest only the users part is read,
/// from its end (`ends`, what [`manifest_head`] read), so the cost grows with the users, not
/// with the entries.
fn users_elsewhere(
    root: &mut Root,
    (host, manifest): (&Path, &std::fs::File),
    ends: crate::fs::Ends,
    progress: &mut Progress,
) -> Result<Option<crate::users::Report>> {
    let linked = matches!(root.node_with("etc/passwd", false)?,
        Node::Link(t) if t.starts_with('/') && !t.starts_with("/etc/"));
    if !linked {
        return Ok(None);
    }
    let Some(decl) = users_part(manifest, &host.join("manifest.json"), ends)? else {
        return Ok(None);
    };
    // What a killed boot's users phase left (a switch sweeps it when it takes the lock).
    crate::users::sweep(root)?;
    if let Some(place) = &decl.password_files_location {
        crate::users::sweep_place(root, place)?;
    }
    let decl = &decl;
    let report = crate::users::plan(root, decl, None)?;
    if report.clashes.is_empty() && !report.current {
        crate::users::write(root, decl, &report, &mut || progress.signalled())?;
    }
    Ok(Some(report))
}

/// The manifest's `users` part, read from its end (`ends` first, then ever larger ends) in the
/// canonical layout. A manifest in another layout (keys sorted, a `null` part, one line) is
/// parsed whole, where its `users` key found at a line's start does not parse alone.
fn users_part(
    file: &std::fs::File,
    path: &Path,
    ends: crate::fs::Ends,
) -> Result<Option<Users<'static>>> {
    let origin = path.display().to_string();
    let mut tail = ends.tail;
    loop {
        let whole = tail.len() as u64 >= ends.len;
        // Whole lines only (the key starts a line): a chunk's edge may cut one in two.
        let cut = tail.iter().position(|&b| b == b'\n').unwrap_or(tail.len());
        let start = if whole { 0 } else { cut };
        let text = std::str::from_utf8(&tail[start..]).ok();
        if let Some(part) = text.and_then(etcflip_format::manifest::users_in) {
            let mut m = Manifest::empty("/");
            if m.parse_users(part, &origin).is_ok() {
                return Ok(m.users.map(Users::into_owned));
            }
        } else if !whole {
            let more = (tail.len() as u64).saturating_mul(8);
            tail = crate::fs::Ends::of(file, (0, more), &origin)?.tail;
            continue;
        }
        if !whole {
            tail = crate::fs::Ends::of(file, (0, ends.len), &origin)?.tail;
        }
        break;
    }
    let text = String::from_utf8(tail).with_context(|| format!("{origin}: not UTF-8"))?;
    let manifest = Manifest::from_json(&text, &origin)?;
    Ok(manifest.users.map(Users::into_owned))
}

/// The manifest's head (overlay and wrappers, checked), its length without trailing white
/// space (what `applied.json` records of it), and its two ends as read. Of a large manifest
/// only the first and last lines are read, which the canonical layout makes enough; another
/// layout is read whole.
fn manifest_head(
    file: &std::fs::File,
    path: &Path,
) -> Result<(Head<'static>, u64, crate::fs::Ends)> {
    /// How much of each end is read.
    const CHUNK: u64 = 1 << 16;
    let origin = path.display().to_string();
    let ends = crate::fs::Ends::of(file, (CHUNK, CHUNK), &origin)?;
    let blank = (ends.tail.iter().rev())
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    let trimmed_len = ends.len - u64::try_from(blank).unwrap_or(0);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if ends.len <= CHUNK {
        let head = Head::of(&text(&ends.head), &origin)?.into_owned();
        return Ok((head, trimmed_len, ends));
    }
    // Whole lines only: a chunk's edge may cut one (and a character) in two.
    let first_end = (ends.head.iter().rposition(|&b| b == b'\n')).map_or(0, |i| i + 1);
    let last_start = (ends.tail.iter().position(|&b| b == b'\n')).unwrap_or(ends.tail.len());
    let first = text(&ends.head[..first_end]);
    let head = if let Some(head) = Head::of_ends(&first, &text(&ends.tail[last_start..])) {
        head.checked(&origin)?
    } else {
        let whole = crate::fs::read_regular(path)?;
        let whole = String::from_utf8(whole).with_context(|| format!("{origin}: not UTF-8"))?;
        Head::of(&whole, &origin)?.into_owned()
    };
    Ok((head, trimmed_len, ends))
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
