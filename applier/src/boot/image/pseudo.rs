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

use crate::fs::Root;
use crate::manifest::{Kind, Manifest};
use crate::users::files::{id_of, Table};
use crate::users::names::lookup;

/// A path of the image (from its top; empty: the top) with the mode and owner it gets.
pub(super) struct Entry {
    pub(super) rel: String,
    /// A symbolic link (whose mode is not its own to set).
    pub(super) link: bool,
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

/// The paths of each owner (`uid:gid`) and of each mode (octal), as NUL-terminated `./path`
/// lists, for `xargs -0 chown -h OWNER` and `xargs -0 chmod MODE` run in the top under
/// `fakeroot` (the erofs route: `mkfs.erofs` 1.5 reads no pseudo file). One list per owner
/// and per mode, so that a few processes give every path its own (nearly all are root's,
/// 0755 or 0644). Links have no mode of their own (chmod would follow them), and the top's is
/// set apart.
pub(super) struct Lists {
    pub(super) owners: BTreeMap<String, Vec<u8>>,
    pub(super) modes: BTreeMap<String, Vec<u8>>,
}

/// The [`Lists`] of `entries`.
pub(super) fn lists(entries: &[Entry]) -> Lists {
    let mut out = Lists {
        owners: BTreeMap::new(),
        modes: BTreeMap::new(),
    };
    for e in entries {
        let path = format!("./{}\0", e.rel);
        let owner = out.owners.entry(format!("{}:{}", e.uid, e.gid));
        owner.or_default().extend_from_slice(path.as_bytes());
        if !e.link && !e.rel.is_empty() {
            let mode = out.modes.entry(format!("{:o}", e.mode));
            mode.or_default().extend_from_slice(path.as_bytes());
        }
    }
    out
}

/// Every path of the image tree at `root`, built from the generation `gen`, with its mode and
/// the owner it gets. A copy's mode is its declared one: an unprivileged tree keeps the
/// owner's read bit (`fs::as_written`).
pub(super) fn entries(root: &mut Root, gen: &Path, manifest: &Manifest) -> Result<Vec<Entry>> {
    let top = root.host_path().to_path_buf();
    let declared = intended(root, gen, manifest)?;
    let owners = (!nix::unistd::geteuid().is_root()).then_some(&declared);
    let mut paths = Vec::new();
    walk(&top, "", &mut paths)?;
    let entries = paths.into_iter().map(|(rel, meta)| {
        let (uid, gid) = match owners {
            Some(o) => o.get(&rel).map_or((0, 0), |d| (d.1, d.2)),
            None if rel.is_empty() => (0, 0),
            None => (meta.uid(), meta.gid()),
        };
        let mode = (declared.get(&rel).and_then(|d| d.0)).unwrap_or(meta.mode() & 0o7777);
        let link = meta.file_type().is_symlink();
        Entry {
            rel,
            link,
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
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
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

/// A declared mode (copies) and owner, by path from the top.
type Declared = BTreeMap<String, (Option<u32>, u32, u32)>;

/// The modes and owners a switch as root would have given, by path from the top: declared
/// modes and owners of copies, owners of managed directories, and homes the users part makes,
/// names resolved where the switch resolved them (the image's own `passwd` and `group`).
fn intended(root: &mut Root, gen: &Path, manifest: &Manifest) -> Result<Declared> {
    let mut out = BTreeMap::new();
    let tables = crate::users::names::Tables {
        planned: None,
        gen_host: Some(gen),
    };
    let (passwd, groups) = crate::users::names::user_tables(root, manifest, tables)?;
    let owned = (manifest.entries.iter()).filter(|e| matches!(e.kind, Kind::Copy | Kind::Dir));
    for e in owned {
        let uid = lookup(e.uid.as_ref(), &passwd).0;
        let gid = lookup(e.gid.as_ref(), &groups).0;
        let mode = (e.kind == Kind::Copy)
            .then(|| e.mode.map(|m| m.0))
            .flatten();
        out.insert(format!("etc/{}", e.target), (mode, uid, gid));
    }
    homes(root, manifest, &passwd, &mut out);
    Ok(out)
}

/// The homes the users part makes (`createHome`), owned by their user and primary group as
/// the image's `passwd` has them.
fn homes(root: &Root, manifest: &Manifest, passwd: &Table, out: &mut Declared) {
    let declared = manifest.users.iter().flat_map(|u| &u.users);
    for user in declared.filter(|u| u.create_home) {
        let Some(e) = passwd.get(&user.name) else {
            continue;
        };
        let (Some(uid), Some(gid)) = (id_of(e, 2), id_of(e, 3)) else {
            continue;
        };
        let home = user.home.trim_start_matches('/');
        if !home.is_empty() && root.host_path().join(home).is_dir() {
            out.insert(home.to_owned(), (None, uid, gid));
        }
    }
}

/// A path as the pseudo file quotes it.
fn quote(rel: &str) -> String {
    format!("\"{}\"", rel.replace('\\', "\\\\").replace('"', "\\\""))
}
