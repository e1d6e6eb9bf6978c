//! Building a wrappers directory aside (phase 4) and flipping `bin` to it (phase 8).
//!
//! Each wrapper is created at mode 0000 in a fresh directory that only root may enter, given
//! its owner, then its capabilities or set-id bits, then its mode, in that order: a chown clears
//! both, and a wrapper is never privileged under a wrong owner at any instant. The directory is
//! opened to others only once complete, and `bin` is flipped to it with one `rename(2)`.

use std::io::Write as _;
use std::os::fd::{AsFd as _, OwnedFd};

use anyhow::{bail, Context as _, Result};
use etcflip_format::caps::Sets;
use etcflip_format::wrapper::Reference;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::futimens;
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode};
use nix::sys::time::TimeSpec;

use super::plan::{Want, Work, BUILT_MTIME};
use super::{BIN, DIR, NEW_LINK};
use crate::conflict::{backup_name, OnConflict, BACKUP};
use crate::fs::{join, Owner, Root};

/// Builds a directory `<prefix><pid>` in the root's `/run/wrappers` holding `wants`, written from
/// `reference` (the checked payload: `payload.rs`); returns its name. Called after the users
/// phase, so that owners are what it wrote.
pub(crate) fn build(
    root: &mut Root,
    prefix: &str,
    wants: &[Want],
    reference: Option<&Reference>,
) -> Result<String> {
    root.make_dirs(DIR)?;
    // Writable by root alone, or anyone could replace `bin` (NixOS's `chmod 755`).
    root.set_dir_owner_mode(DIR, Owner { uid: 0, gid: 0 }, 0o755)?;
    root.unlink(NEW_LINK)?;
    let name = fresh_dir(root, prefix)?;
    let rel = join(DIR, &name);
    for w in wants {
        let Some(reference) = reference else {
            bail!("internal: wrappers to build without their checked payload");
        };
        install(root, &rel, reference, w).with_context(|| {
            format!(
                "cannot install the wrapper {}",
                root.show(&join(&rel, &w.program))
            )
        })?;
    }
    // Others may enter it only at the flip: a switch stopped before leaves nothing they reach.
    root.sync_dir(&rel)?;
    root.sync_dir(DIR)?;
    Ok(name)
}

/// Opens the built directory `name` to others (NixOS's `chmod a+rx`: its last change, which
/// `look.rs` compares the wrappers' with) and points `bin` at it with one rename, or, for a
/// `bin` that is not a link (`work.foreign`), one exchange, which leaves no instant without
/// `bin`. Then removes the directories `bin` no longer points at, each first closed to others
/// (0700), so that one that cannot be removed (a mount inside) runs nothing for anyone. What
/// was not removed is returned as a note: the flip stands, and the next switch tries again.
pub(crate) fn flip(root: &mut Root, name: Option<&str>, work: &Work) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    if work.new_link || name.is_some() {
        root.unlink(NEW_LINK)?;
    }
    if let Some(name) = name {
        let rel = join(DIR, name);
        root.set_dir_owner_mode(&rel, Owner { uid: 0, gid: 0 }, 0o755)?;
        root.sync_dir(&rel)?;
        root.symlink(&format!("/run/wrappers/{name}"), NEW_LINK)?;
        match work.foreign {
            Some(foreign) => {
                root.exchange(NEW_LINK, BIN)?;
                notes.extend(put_aside(root, foreign)?);
            }
            None => root.rename(NEW_LINK, BIN)?,
        }
    }
    for dir in work.remove.iter().filter(|d| Some(d.as_str()) != name) {
        let rel = join(DIR, dir);
        let closed = root.set_dir_owner_mode(&rel, Owner { uid: 0, gid: 0 }, 0o700);
        if let Err(e) = closed.and_then(|()| root.remove_tree_if_present(&rel)) {
            notes.push(format!(
                "/run/wrappers/{dir} was left, closed to others: {e:#}"
            ));
        }
    }
    if !work.remove.is_empty() {
        root.sync_dir(DIR)?;
    }
    Ok(notes)
}

/// What was at `bin`, now at the new link's name after the exchange: moved to the first free
/// `bin.etcflip-backup[.N]` (as `/etc`'s backups are named), or (overwrite) to
/// `bin.etcflip-old[.N]` and removed.
fn put_aside(root: &mut Root, foreign: OnConflict) -> Result<Option<String>> {
    let stem = if foreign == OnConflict::Backup {
        BACKUP
    } else {
        "old"
    };
    let mut aside = String::new();
    backup_name(root, BIN, stem, |root, name| {
        name.clone_into(&mut aside);
        root.rename_noreplace(NEW_LINK, name)
    })?;
    if foreign == OnConflict::Backup {
        return Ok(None);
    }
    Ok((root.remove_tree(&aside).err()).map(|e| format!("/{aside} was left: {e:#}")))
}

/// Makes a new directory, mode 0700, named `<prefix><pid>` (or with a counter, if taken).
fn fresh_dir(root: &mut Root, prefix: &str) -> Result<String> {
    let pid = std::process::id();
    for n in 0..100 {
        let name = if n == 0 {
            format!("{prefix}{pid}")
        } else {
            format!("{prefix}{pid}-{n}")
        };
        let dfd = root.dir(DIR)?;
        match mkdirat(dfd, name.as_str(), Mode::from_bits_truncate(0o700)) {
            Ok(()) => {
                let made = root.dir(&join(DIR, &name))?;
                fchmod(made, Mode::from_bits_truncate(0o700))?;
                return Ok(name);
            }
            Err(Errno::EEXIST) => {}
            Err(e) => bail!("cannot create a directory in {}: {e}", root.show(DIR)),
        }
    }
    bail!("cannot find a free directory name in {}", root.show(DIR))
}

/// One wrapper: created 0000, content, owner, capabilities or set-id bits with the mode, then
/// read back.
fn install(root: &mut Root, dir: &str, reference: &Reference, w: &Want) -> Result<()> {
    // The payload checked in phase 1: the reference with this wrapper's target.
    let (before, area, after) = reference.parts(&w.source);
    let dfd = root.dir(dir)?;
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd: OwnedFd = openat(dfd, w.program.as_str(), flags, Mode::empty())?;
    fchmod(&fd, Mode::empty())?;
    let mut file = std::fs::File::from(fd);
    for part in [before, &area[..], after] {
        file.write_all(part)?;
    }
    // The mark of a wrapper as built: a write since changes it (`plan.rs`).
    let built = TimeSpec::new(BUILT_MTIME, 0);
    futimens(&file, &TimeSpec::UTIME_OMIT, &built)?;
    file.sync_all()?;
    let fd = OwnedFd::from(file);
    Owner {
        uid: w.uid,
        gid: w.gid,
    }
    .apply(&fd)?;
    if w.caps != Sets::default() {
        crate::fs::xattr::set_capability(fd.as_fd(), &w.caps.to_xattr())
            .context("cannot set security.capability")?;
    }
    fchmod(&fd, Mode::from_bits_truncate(w.mode))?;
    read_back(&fd, w)
}

/// Checks what was made: mode, owner and capabilities.
fn read_back(fd: &OwnedFd, w: &Want) -> Result<()> {
    let st = fstat(fd)?;
    let got = (st.st_mode & 0o7777, st.st_uid, st.st_gid);
    let caps = match crate::fs::xattr::capability(fd.as_fd())? {
        Some(v) => Sets::from_xattr(&v).map_err(anyhow::Error::msg)?,
        None => Sets::default(),
    };
    if got != (w.mode, w.uid, w.gid) || caps != w.caps {
        bail!(
            "read back as mode {:04o} owner {}:{} capabilities {caps:?}, not {:04o} {}:{} {:?}",
            got.0,
            got.1,
            got.2,
            w.mode,
            w.uid,
            w.gid,
            w.caps
        );
    }
    Ok(())
}
