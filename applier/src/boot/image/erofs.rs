//! The erofs image. `mkfs.erofs` 1.5 reads no pseudo file, so the owners are given to the tree
//! under `fakeroot` (whose `chown` only pretends, and which `mkfs.erofs` then believes), and
//! the image is made in the same session: unprivileged, as in a Nix build. A fixed time, UUID
//! and no extended attributes make the same tree give the same bytes.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use super::pseudo::Lists;

/// The UUID of every image (a reproducible image cannot have a random one).
const UUID: &str = "00000000-0000-0000-0000-000000000000";

/// The script `fakeroot` runs in the top (`$1`): the owners (a list of paths per owner in
/// `$4/owners`, each named `uid:gid`), then the modes (per mode in `$4/modes`: a chown clears
/// set-id bits; the top is 0755 whatever the umask it was made under), then the image.
const SCRIPT: &str = r#"cd "$1" && for f in "$4"/owners/*; do xargs -0 chown -h "${f##*/}" < "$f" || exit; done && chmod 755 . && for f in "$4"/modes/*; do [ ! -e "$f" ] || xargs -0 chmod "${f##*/}" < "$f" || exit; done && exec mkfs.erofs -T0 -U"$2" -x-1 --quiet "$3" ."#;

/// Makes `image` from the tree `root`, its owners and modes from `lists`, written for the
/// script in the new directory `scratch` (beside the tree, outside it; removed after, and
/// never taken over: what already stands there is not this build's to remove).
pub(super) fn make(root: &Path, lists: &Lists, scratch: &Path, image: &Path) -> Result<()> {
    std::fs::create_dir(scratch).with_context(|| {
        format!(
            "cannot create {} for the erofs route's lists (remove what is there)",
            scratch.display()
        )
    })?;
    let made = write_lists(lists, scratch).and_then(|()| run(root, scratch, image));
    let _ = std::fs::remove_dir_all(scratch);
    made
}

/// Runs [`SCRIPT`] under `fakeroot`.
fn run(root: &Path, scratch: &Path, image: &Path) -> Result<()> {
    let out = Command::new("fakeroot")
        .args(["--", "sh", "-c", SCRIPT, "sh"])
        .arg(root)
        .arg(UUID)
        .arg(std::path::absolute(image).with_context(|| format!("{}", image.display()))?)
        .arg(std::path::absolute(scratch)?)
        // mkfs.erofs would take it over -T0.
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .context("cannot run fakeroot (Debian package fakeroot) for mkfs.erofs")?;
    if !out.status.success() {
        bail!(
            "fakeroot mkfs.erofs failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `scratch/owners/<uid:gid>` and `scratch/modes/<mode>`, each the NUL-terminated paths.
fn write_lists(lists: &Lists, scratch: &Path) -> Result<()> {
    for (kind, list) in [("owners", &lists.owners), ("modes", &lists.modes)] {
        let dir = scratch.join(kind);
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, paths) in list {
            let file = dir.join(name);
            std::fs::write(&file, paths)
                .with_context(|| format!("cannot write {}", file.display()))?;
        }
    }
    Ok(())
}
