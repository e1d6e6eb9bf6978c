//! `etcflip image GEN --root DIR [--squashfs FILE]`: a read-only image's `/etc` from a
//! generation, built without privileges, as in a Nix build sandbox (issue 12).
//!
//! DIR, new or empty, gets what a first switch makes there (the link farm through
//! `systemd-tmpfiles --root`, copies, the user database, the state that lets a later switch
//! take the tree as its own), without the wrappers, which live in `/run`, and without what only
//! one machine's switches use (stamps, the users' seal, the runtime-copy key). Ownership the
//! builder could not give (it cannot chown) is written down for the image tool instead:
//! `pseudo.rs` lists every path with its mode and owner for `mksquashfs -pf`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use crate::errors::Invalid;
use crate::etc::{self, OnConflict};
use crate::fs::Root;
use crate::manifest::Manifest;

mod erofs;
mod pseudo;

/// Options of `etcflip image` (its command line too).
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The generation directory built by etcflip-gen.
    pub generation: PathBuf,
    /// The image's root directory (created if missing; must be empty).
    #[arg(long)]
    pub root: PathBuf,
    /// Also make this squashfs image of it with mksquashfs.
    #[arg(long, value_name = "FILE")]
    pub squashfs: Option<PathBuf>,
    /// Also make this erofs image of it with mkfs.erofs (under fakeroot).
    #[arg(long, value_name = "FILE")]
    pub erofs: Option<PathBuf>,
    /// Make it a systemd-confext image named NAME.
    #[arg(long, value_name = "NAME")]
    pub confext: Option<String>,
}

/// What an image build made.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The switch that filled the root.
    pub outcome: etc::Outcome,
    /// The `mksquashfs` pseudo file beside the root.
    pub pseudo: PathBuf,
    /// The squashfs image, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub squashfs: Option<PathBuf>,
    /// The erofs image, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erofs: Option<PathBuf>,
}

/// Builds the image's tree (and the squashfs image).
pub fn image(opts: &Options) -> Result<Report> {
    if let Some(name) = &opts.confext {
        check_confext_name(name)?;
    }
    let pseudo = pseudo_path(&opts.root)?;
    outside(
        &opts.root,
        [opts.squashfs.as_deref(), opts.erofs.as_deref()],
    )?;
    // Read once, for what the switch leaves to the image to finish.
    let manifest = crate::manifest::Manifest::load(&opts.generation)?;
    fixed_owners(&manifest)?;
    new_root(&opts.root)?;
    let switch = etc::Options {
        generation: opts.generation.clone(),
        root: opts.root.clone(),
        dry_run: false,
        on_conflict: OnConflict::Abort,
        no_wrappers: true,
        reproducible: true,
    };
    let outcome = etc::switch(&switch)?;
    if let Some(r) = outcome.refused() {
        bail!("internal: an empty root refused the generation: {r}");
    }
    let mut root = Root::open(&opts.root)?;
    for file in etc::LOCAL_STATE {
        root.unlink(&format!("{}/{file}", crate::txn::state::state_dir()))?;
    }
    match &opts.confext {
        Some(name) => confext(&mut root, name)?,
        None => machine_id(&mut root, &manifest)?,
    }
    let entries = pseudo::entries(&mut root, &opts.generation, &manifest)?;
    std::fs::write(&pseudo, pseudo::squashfs(&entries))
        .with_context(|| format!("cannot write the pseudo file {}", pseudo.display()))?;
    if let Some(image) = &opts.squashfs {
        squashfs(&opts.root, &pseudo, image)?;
    }
    if let Some(image) = &opts.erofs {
        // Beside the pseudo file, outside the tree.
        let lists = pseudo.with_extension("erofs-lists");
        erofs::make(&opts.root, &pseudo::lists(&entries), &lists, image)?;
    }
    Ok(Report {
        outcome,
        pseudo,
        squashfs: opts.squashfs.clone(),
        erofs: opts.erofs.clone(),
    })
}

/// With the users outside `/etc` (`passwordFilesLocation`), an image's `/etc` is fixed at
/// build time while the ids are allocated on the machine, from its own ledgers: a copy or
/// directory owned by a user or group without a static id could then belong to another
/// account there. Refused, every one named (exit 2).
fn fixed_owners(manifest: &Manifest) -> Result<()> {
    use crate::manifest::Id;
    let Some(users) = manifest
        .users
        .as_ref()
        .filter(|u| u.password_files_location.is_some())
    else {
        return Ok(());
    };
    let dynamic_user = |n: &str| users.users.iter().any(|u| u.name == n && u.uid.is_none());
    let dynamic_group = |n: &str| users.groups.iter().any(|g| g.name == n && g.gid.is_none());
    let named = |id: &Option<Id>| match id {
        Some(Id::Name(n)) => Some(n.clone()),
        _ => None,
    };
    let mut problems = Vec::new();
    for e in &manifest.entries {
        let user = named(&e.uid)
            .filter(|n| dynamic_user(n))
            .map(|n| ("user", n));
        let group = named(&e.gid)
            .filter(|n| dynamic_group(n))
            .map(|n| ("group", n));
        for (what, name) in user.into_iter().chain(group) {
            problems.push(format!(
                "/etc/{}: its {what} {name} has no static id, and with passwordFilesLocation \
                 the machine allocates it at boot, not the image: declare the id",
                e.target
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Invalid::many("the image", problems).into())
    }
}

/// An empty `etc/machine-id` (0444), unless the generation declares one: systemd's convention
/// for a read-only `/etc`, over which it mounts the machine's id at boot. Not in a confext
/// image, which would hide the machine's own.
fn machine_id(root: &mut Root, manifest: &Manifest) -> Result<()> {
    if manifest.get("machine-id").is_some() {
        return Ok(());
    }
    root.write_new("etc/machine-id", &[], 0o444, crate::fs::Owner::current())
}

/// A confext image's name, as systemd takes it: a file name of letters, digits, `_`, `-` and
/// `.` that does not start with `.`.
fn check_confext_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Invalid::one(format!(
            "--confext {name:?}: not an image name (letters, digits, '_', '-' and '.', not first)"
        ))
        .into())
    }
}

/// `etc/extension-release.d/extension-release.NAME`: what makes the tree a confext image that
/// `systemd-confext` merges on any OS (`ID=_any`).
fn confext(root: &mut Root, name: &str) -> Result<()> {
    root.make_dirs("etc/extension-release.d")?;
    let rel = format!("etc/extension-release.d/extension-release.{name}");
    root.write_new(&rel, &[b"ID=_any\n"], 0o644, crate::fs::Owner::current())
}

/// Makes `root` if it is missing; refuses one that holds anything (an image is built whole).
fn new_root(root: &Path) -> Result<()> {
    match std::fs::read_dir(root).map(|mut entries| entries.next().is_none()) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Invalid::one(format!(
            "--root {}: not empty (an image is built into a new or empty directory)",
            root.display()
        ))
        .into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create {}", root.display())),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", root.display())),
    }
}

/// Refuses an image file inside the tree it is made of (it would end up in itself).
fn outside<'p>(root: &Path, files: impl IntoIterator<Item = Option<&'p Path>>) -> Result<()> {
    let top = std::path::absolute(root)?;
    for file in files.into_iter().flatten() {
        if std::path::absolute(file)?.starts_with(&top) {
            return Err(Invalid::one(format!(
                "{}: inside --root {}, so the image would hold itself",
                file.display(),
                root.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// `<root>.squashfs-pseudo`, beside the root: what `mksquashfs -pf` reads.
fn pseudo_path(root: &Path) -> Result<PathBuf> {
    let Some(name) = std::path::absolute(root)?
        .file_name()
        .map(ToOwned::to_owned)
    else {
        return Err(
            Invalid::one(format!("--root {}: must name a directory", root.display())).into(),
        );
    };
    let mut name = name;
    name.push(".squashfs-pseudo");
    Ok(std::path::absolute(root)?.with_file_name(name))
}

/// Runs `mksquashfs` with fixed times, no extended attributes and the pseudo file's modes and
/// owners, so that one generation gives the same image bytes every time.
fn squashfs(root: &Path, pseudo: &Path, image: &Path) -> Result<()> {
    let out = std::process::Command::new("mksquashfs")
        .arg(root)
        .arg(image)
        .args([
            "-noappend",
            "-no-xattrs",
            "-mkfs-time",
            "0",
            "-all-time",
            "0",
        ])
        .args(["-root-mode", "755", "-root-uid", "0", "-root-gid", "0"])
        .args(["-quiet", "-no-progress", "-pf"])
        .arg(pseudo)
        // mksquashfs 4.5 refuses it beside -mkfs-time and -all-time, which fix the same.
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .context("cannot run mksquashfs (Debian package squashfs-tools)")?;
    let said = String::from_utf8_lossy(&out.stderr);
    // mksquashfs 4.5 packs a file it cannot read as an empty one, says so, and exits 0.
    if !out.status.success() || said.contains("Failed to read") {
        bail!("mksquashfs failed ({}): {}", out.status, said.trim());
    }
    Ok(())
}
