//! Writing an [`Assembled`] generation as a generation directory, all or nothing.
//!
//! Everything is built in a sibling `<GEN>.tmp-<pid>` and renamed to `GEN` at the end, so a
//! reader (or a Nix build that fails halfway) never sees a partial generation; on failure the
//! temporary directory is removed. Files are created with `create_new` and links with
//! `symlink`, neither of which follows or replaces anything already there.
//!
//! Nothing is fsynced: a generation is normally a Nix build output (the store syncs it), and the
//! applier checks every payload hash against the manifest before using a generation anyway.

use std::fs::{self, File, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{symlink, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use etcflip_format::errors::Invalid;
use etcflip_format::manifest::{Entry, Kind};

use crate::etc::assemble::Assembled;
use crate::etc::snippet;
use crate::etc::source::copy_file;

/// Payload files are read-only: the generation is immutable once built.
const FILE_MODE: u32 = 0o444;
/// Directories of the generation.
const DIR_MODE: u32 = 0o755;

/// Refuses an output path that already exists (before any work is done).
pub fn check_out(out: &Path) -> anyhow::Result<()> {
    if out.file_name().is_none() {
        return Err(Invalid::one(format!(
            "--out {}: must name a new directory",
            out.display()
        ))
        .into());
    }
    match fs::symlink_metadata(out) {
        Ok(_) => Err(Invalid::one(format!(
            "--out {}: already exists (a generation is written once, into a new path)",
            out.display()
        ))
        .into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot check --out {}", out.display())),
    }
}

/// Writes `assembled` to `out`, which must not exist; its missing parents are created first, as
/// `mkdir -p` would (they stay if the write fails: only `out` is all or nothing).
pub fn write(assembled: &Assembled, out: &Path) -> anyhow::Result<()> {
    check_out(out)?;
    let tmp = temp_sibling(out)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).with_context(|| {
            format!(
                "cannot create {}, the parent directory of --out",
                parent.display()
            )
        })?;
    }
    fs::create_dir(&tmp)
        .with_context(|| format!("cannot create the temporary directory {}", tmp.display()))?;
    let built = fill(assembled, &tmp).and_then(|()| {
        // Checked again: something may have appeared while we were writing, and rename(2)
        // would silently replace an empty directory.
        check_out(out)?;
        fs::rename(&tmp, out)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), out.display()))
    });
    if let Err(err) = built {
        if let Err(e) = fs::remove_dir_all(&tmp) {
            return Err(err.context(format!(
                "(and cannot remove the temporary directory {}: {e})",
                tmp.display()
            )));
        }
        return Err(err);
    }
    Ok(())
}

fn temp_sibling(out: &Path) -> anyhow::Result<PathBuf> {
    let Some(name) = out.file_name() else {
        bail!("--out {}: must name a new directory", out.display());
    };
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    Ok(out.with_file_name(tmp_name))
}

fn fill(assembled: &Assembled, gen: &Path) -> anyhow::Result<()> {
    make_dir(gen, false)?;
    let etc = gen.join("etc");
    make_dir(&etc, true)?;
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
    write_file(
        &gen.join("manifest.json"),
        assembled.manifest.to_json().as_bytes(),
    )?;
    let snippets = gen.join("tmpfiles.d");
    make_dir(&snippets, true)?;
    write_file(
        &snippets.join("etcflip.conf"),
        snippet::render(&assembled.manifest).as_bytes(),
    )
}

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

fn make_dir(path: &Path, create: bool) -> anyhow::Result<()> {
    if create {
        fs::create_dir(path).with_context(|| format!("cannot create {}", path.display()))?;
    }
    // Explicit, so the payload does not depend on the builder's umask.
    fs::set_permissions(path, Permissions::from_mode(DIR_MODE))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file =
        File::create_new(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.set_permissions(Permissions::from_mode(FILE_MODE)))
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use etcflip_format::manifest::{Id, Manifest, Mode};

    fn copy_of(source: &str) -> Entry<'static> {
        Entry {
            target: "copied".into(),
            kind: Kind::Copy,
            source: Some(source.to_owned().into()),
            mode: Some(Mode(0o644)),
            uid: Some(Id::Num(0)),
            gid: Some(Id::Num(0)),
            sha256: Some(etcflip_format::hash::sha256_bytes(b"validated content").into()),
        }
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = std::env::temp_dir().join(format!("etcflip-gen-write-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        // The source changed after validation: its hash no longer matches.
        let src = dir.join("src");
        fs::write(&src, "changed content").unwrap();
        let mut manifest = Manifest::empty("/etc/static");
        manifest.entries.push(copy_of(src.to_str().unwrap()));
        let assembled = Assembled {
            manifest,
            texts: std::collections::BTreeMap::new(),
        };
        let out = dir.join("gen");
        let err = write(&assembled, &out).unwrap_err();
        assert!(format!("{err:#}").contains("changed while the generation was being built"));
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["src"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
