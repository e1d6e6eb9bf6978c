//! Building a wrappers directory aside (phase 4) and flipping `bin` to it (phase 8).
//!
//! Each wrapper is created at mode 0000 in a fresh directory that only root may enter, given
//! its owner, then its capabilities or set-id bits, then its mode, in that order: a chown clears
//! both, and a wrapper is never privileged under a wrong owner at any instant. The directory is
//! opened to others only once complete, and `bin` is flipped to it with one `rename(2)`.

use std::io::Write as _;
use std::os::fd::{AsFd as _, OwnedFd};

use anyhow::{bail, Context as _, Result};
use etcflip_format::wrapper::Reference;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode};

use super::plan::{Want, Work};
use super::{BIN, DIR, NEW_LINK};
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
    // Complete: others may now enter it (NixOS's `chmod a+rx`).
    let dfd = root.dir(&rel)?;
    fchmod(dfd, Mode::from_bits_truncate(0o755))
        .with_context(|| format!("cannot chmod {}", root.show(&rel)))?;
    root.sync_dir(&rel)?;
    root.sync_dir(DIR)?;
    Ok(name)
}

/// Points `bin` at `name` with one rename, then removes `remove` (directories `bin` no longer
/// points at).
pub(crate) fn flip(root: &mut Root, name: Option<&str>, work: &Work) -> Result<()> {
    if work.new_link {
        root.unlink(NEW_LINK)?;
    }
    let remove = &work.remove;
    if let Some(name) = name {
        root.unlink(NEW_LINK)?;
        root.symlink(&format!("/run/wrappers/{name}"), NEW_LINK)?;
        root.rename(NEW_LINK, BIN)?;
    }
    for dir in remove.iter().filter(|d| Some(d.as_str()) != name) {
        root.remove_tree_if_present(&join(DIR, dir))?;
    }
    if !remove.is_empty() {
        root.sync_dir(DIR)?;
    }
    Ok(())
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
    file.sync_all()?;
    let fd = OwnedFd::from(file);
    Owner {
        uid: w.uid,
        gid: w.gid,
    }
    .apply(&fd)?;
    if w.caps != etcflip_format::caps::Sets::default() {
        crate::fs::xattr::set_capability(fd.as_fd(), &w.caps.to_xattr())
            .context("cannot set security.capability")?;
    }
    fchmod(&fd, Mode::from_bits_truncate(w.mode))?;
    let st = fstat(&fd)?;
    let got = (st.st_mode & 0o7777, st.st_uid, st.st_gid);
    if got != (w.mode, w.uid, w.gid) {
        bail!(
            "read back as mode {:04o} owner {}:{}, not {:04o} {}:{}",
            got.0,
            got.1,
            got.2,
            w.mode,
            w.uid,
            w.gid
        );
    }
    Ok(())
}
