//! The payload of the `/etc` part of a generation, `GEN/etc`: for each manifest entry a
//! directory, a link, or a read-only file holding a text or a copy of its source; nothing for a
//! runtime copy, whose source the applier reads at switch time.

use std::fs::{File, Permissions};
use std::os::unix::fs::{symlink, PermissionsExt as _};
use std::path::Path;

use anyhow::{bail, Context as _};
use etcflip_format::manifest::{Entry, Kind};

use crate::etc::source::copy_file;
use crate::etc::Assembled;
use crate::write::{make_dir, write_file, FILE_MODE};

/// Writes the payload of every entry of `assembled` into `etc`, a new, empty directory.
pub(crate) fn write(assembled: &Assembled, etc: &Path) -> anyhow::Result<()> {
    for e in &assembled.manifest.entries {
        let path = etc.join(&e.target);
        payload(assembled, e, &path).with_context(|| {
            format!(
                "cannot write the payload of {:?} at {}",
                e.target,
                path.display()
            )
        })?;
    }
    Ok(())
}

/// Writes the payload of the entry `e` at `path`.
fn payload(assembled: &Assembled, e: &Entry, path: &Path) -> anyhow::Result<()> {
    match (e.kind, &e.source) {
        (Kind::Dir, _) => make_dir(path, true),
        (Kind::Symlink | Kind::DirectSymlink, Some(src)) => Ok(symlink(src, path)?),
        // Its source is read at switch time, under the root: nothing of it is in the payload.
        (Kind::Copy, Some(_)) if e.is_runtime_copy() => Ok(()),
        (Kind::Copy, Some(src)) => {
            let mut file = File::create_new(path)?;
            let sha = copy_file(Path::new(src.as_str()), &mut file)?;
            // The store is immutable, but a spec may name any file: refuse a source that changed
            // between validation and copy rather than record a hash the payload does not match.
            if e.sha256.as_deref() != Some(sha.as_str()) {
                bail!("{src} changed while the generation was being built");
            }
            Ok(file.set_permissions(Permissions::from_mode(FILE_MODE))?)
        }
        (Kind::Symlink | Kind::Copy, None) => {
            let Some(text) = assembled.texts.get(e.target.as_str()) else {
                bail!("internal error: no text recorded for {:?}", e.target);
            };
            write_file(path, text.as_bytes())
        }
        (Kind::DirectSymlink, None) => {
            bail!(
                "internal error: direct-symlink {:?} has no source",
                e.target
            )
        }
    }
}
