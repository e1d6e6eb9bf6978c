//! Writing an [`Assembled`] generation as a generation directory, all or nothing.
//!
//! This module knows the directory's layout (`etc/`, `manifest.json`, `tmpfiles.d/etcflip.conf`)
//! and how to make it appear at once; what goes into each part comes from the part's module
//! (`etc/payload.rs`, `etc/snippet.rs`), so a later part adds its files here the same way.
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
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use etcflip_format::errors::Invalid;

use crate::etc::{payload, snippet, Assembled};
use crate::wrappers::payload::Binary;

/// Payload files are read-only: the generation is immutable once built.
pub(crate) const FILE_MODE: u32 = 0o444;
/// Directories of the generation.
const DIR_MODE: u32 = 0o755;

/// Refuses an output path that already exists (before any work is done).
pub(crate) fn check_out(out: &Path) -> anyhow::Result<()> {
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
pub(crate) fn write(
    assembled: &Assembled,
    binary: Option<&Binary>,
    out: &Path,
) -> anyhow::Result<()> {
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
    let built = fill(assembled, binary, &tmp).and_then(|()| {
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

/// Writes every file of the generation into `gen`, the temporary directory.
fn fill(assembled: &Assembled, binary: Option<&Binary>, gen: &Path) -> anyhow::Result<()> {
    make_dir(gen, false)?;
    let etc = gen.join("etc");
    make_dir(&etc, true)?;
    payload::write(assembled, &etc)?;
    if let (Some(b), Some(ws)) = (binary, &assembled.manifest.wrappers) {
        let dir = gen.join(etcflip_format::wrappers::PAYLOAD_DIR);
        make_dir(&dir, true)?;
        b.write(ws, &dir)?;
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

/// Makes `path` a directory of the generation (creating it when `create`).
pub(crate) fn make_dir(path: &Path, create: bool) -> anyhow::Result<()> {
    if create {
        fs::create_dir(path).with_context(|| format!("cannot create {}", path.display()))?;
    }
    // Explicit, so the payload does not depend on the builder's umask.
    fs::set_permissions(path, Permissions::from_mode(DIR_MODE))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

/// Writes `bytes` into a new, read-only file at `path`.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
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
    use etcflip_format::manifest::{Entry, Id, Kind, Manifest, Mode};

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
        let err = write(&assembled, None, &out).unwrap_err();
        assert!(format!("{err:#}").contains("changed while the generation was being built"));
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["src"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
