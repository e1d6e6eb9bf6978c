//! The pseudo file `mksquashfs -pf` reads: one `"path" m MODE UID GID` line for every path of
//! the image, sorted, so that the image has the modes and owners a switch as root would have
//! given, whoever built it.
//!
//! As root, the owners are the tree's own (the switch gave them). Without privileges the
//! switch could not chown, so the owners are what it would have given: a copy's or a managed
//! directory's declared owner, resolved in the image's own `passwd` and `group`; a user's home,
//! that user's; everything else root's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::etc::owners;
use crate::fs::Root;
use crate::manifest::{Kind, Manifest};
use crate::users::files::{id_of, Table};

/// A path of the image (from its top; empty: the top) with the mode and owner it gets.
pub(super) struct Entry {
    pub(super) rel: String,
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
}

/// The pseudo file's text: a line for every path but the top, which mksquashfs's `-root-*`
/// options set.
pub(super) fn squashfs(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries.iter().filter(|e| !e.rel.is_empty()) {
        let _ = writeln!(out, "{} m {:o} {} {}", quote(&e.rel), e.mode, e.uid, e.gid);
    }
    out
}

/// `uid:gid` and `./path` pairs, NUL-separated, for `xargs -0 -n2 chown -h` run in the top
/// under `fakeroot` (the erofs route: `mkfs.erofs` 1.5 reads no pseudo file).
pub(super) fn chown_pairs(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let path = if e.rel.is_empty() {
            ".".to_owned()
        } else {
            format!("./{}", e.rel)
        };
        out.extend_from_slice(format!("{}:{}\0{path}\0", e.uid, e.gid).as_bytes());
    }
    out
}

/// Every path of the image tree at `root`, built from the generation `gen`, with its mode and
/// the owner it gets.
pub(super) fn entries(root: &mut Root, gen: &Path) -> Result<Vec<Entry>> {
    let top = root.host_path().to_path_buf();
    let owners = if nix::unistd::geteuid().is_root() {
        None
    } else {
        Some(intended(root, gen)?)
    };
    let mut paths = Vec::new();
    walk(&top, "", &mut paths)?;
    let entries = paths.into_iter().map(|(rel, meta)| {
        let (uid, gid) = match &owners {
            Some(o) => o.get(&rel).copied().unwrap_or((0, 0)),
            None if rel.is_empty() => (0, 0),
            None => (meta.uid(), meta.gid()),
        };
        let mode = meta.mode() & 0o7777;
        Entry {
            rel,
            mode,
            uid,
            gid,
        }
    });
    Ok(entries.collect())
}

/// Every path below `dir` (`rel` from the top), depth first, sorted by name.
fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, std::fs::Metadata)>) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot look at {}", dir.display()))?;
    let is_dir = meta.is_dir();
    out.push((rel.to_owned(), meta));
    if !is_dir {
        return Ok(());
    }
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let Some(name) = name.to_str() else {
            anyhow::bail!("{}: a name that is not UTF-8 in the image", dir.display());
        };
        let child = if rel.is_empty() {
            name.to_owned()
        } else {
            format!("{rel}/{name}")
        };
        walk(&dir.join(name), &child, out)?;
    }
    Ok(())
}

/// The owners a switch as root would have given, by path from the top: declared owners of
/// copies and managed directories, and users' homes.
fn intended(root: &mut Root, gen: &Path) -> Result<BTreeMap<String, (u32, u32)>> {
    let manifest = Manifest::load(gen)?;
    let mut out = BTreeMap::new();
    let resolved = owners::resolve_recorded(root, &gen.display().to_string(), &manifest)?;
    for (target, ids) in resolved.ids {
        out.insert(format!("etc/{target}"), ids);
    }
    let tables = crate::users::names::Tables {
        planned: None,
        gen_host: Some(gen),
    };
    let (passwd, groups) = crate::users::names::user_tables(root, &manifest, tables)?;
    for e in manifest.entries.iter().filter(|e| e.kind == Kind::Dir) {
        let uid = crate::users::names::lookup(e.uid.as_ref(), &passwd).0;
        let gid = crate::users::names::lookup(e.gid.as_ref(), &groups).0;
        out.insert(format!("etc/{}", e.target), (uid, gid));
    }
    homes(root, &passwd, &mut out);
    Ok(out)
}

/// Each user's home, when the image holds it, owned by the user and the primary group.
fn homes(root: &Root, passwd: &Table, out: &mut BTreeMap<String, (u32, u32)>) {
    for e in &passwd.entries {
        let (Some(uid), Some(gid)) = (id_of(e, 2), id_of(e, 3)) else {
            continue;
        };
        let home = if e.len() > 5 {
            e[5].trim_start_matches('/')
        } else {
            ""
        };
        if !home.is_empty() && uid != 0 && root.host_path().join(home).is_dir() {
            out.insert(home.to_owned(), (uid, gid));
        }
    }
}

/// A path as the pseudo file quotes it.
fn quote(rel: &str) -> String {
    format!("\"{}\"", rel.replace('\\', "\\\\").replace('"', "\\\""))
}
