//! Writing under the root: directories, links, new files, atomic replacement, renames. Every
//! change is made through the fd of its parent directory and synced before it counts.

use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{bail, Context as _, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, renameat2, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode};
use nix::unistd::{fchown, fsync, linkat, symlinkat, Gid, Uid};

use super::node::Node;
use super::root::{join, split, Root};

impl Root {
    /// Creates directories `rel` and its missing parents (mode 0755), never following links.
    pub(crate) fn make_dirs(&mut self, rel: &str) -> Result<()> {
        let mut done = String::new();
        for comp in rel.split('/').filter(|c| !c.is_empty()) {
            let next = join(&done, comp);
            if !matches!(self.node_with(&next, false)?, Node::Dir(_)) {
                let pfd = self.dir(&done)?;
                match mkdirat(pfd, comp, Mode::from_bits_truncate(0o755)) {
                    Ok(()) => {
                        // 0755 whatever the caller's umask: a directory on the way to the
                        // overlay must be readable by every user of /etc.
                        let made = self.dir(&next)?;
                        fchmod(made, Mode::from_bits_truncate(0o755)).with_context(|| {
                            format!("cannot set the mode of {}", self.show(&next))
                        })?;
                    }
                    Err(Errno::EEXIST) => {}
                    Err(e) => bail!("cannot create the directory {}: {e}", self.show(&next)),
                }
                let fd = self.dir(&done)?.try_clone()?;
                fsync(fd).with_context(|| format!("cannot sync {}", self.show(&done)))?;
            }
            done = next;
        }
        Ok(())
    }

    /// Creates a symlink `rel` → `text`. Absolute texts are deliberate: links point at the
    /// overlay or at store paths, which are the same inside and outside the root.
    pub(crate) fn symlink(&mut self, text: &str, rel: &str) -> Result<()> {
        let (parent, name) = split(rel);
        let shown = self.show(rel);
        let pfd = self.dir(parent)?;
        symlinkat(text, pfd, name).with_context(|| format!("cannot create the link {shown}"))
    }

    /// Writes a new regular file `rel` (which must not exist) with `content`, then fsyncs it.
    /// It is made with mode 0000 and given its owner before any byte is written, and its mode
    /// after the last (a secret is never readable by others, and set-id bits survive).
    ///
    /// Unprivileged (a scratch root, an image build), the file keeps its owner's read bit:
    /// such a run cannot read back what its owner may not read (mode 0000), nor could an image
    /// tool running as the same user pack it. It cannot give the declared owner either; both
    /// reach the image through what `etcflip image` writes for the image tool.
    pub(crate) fn write_new(
        &mut self,
        rel: &str,
        content: &[&[u8]],
        mode: u32,
        owner: Owner,
    ) -> Result<()> {
        let (parent, name) = split(rel);
        let shown = self.show(rel);
        let pfd = self.dir(parent)?;
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(pfd, name, flags, Mode::empty())
            .with_context(|| format!("cannot create {shown}"))?;
        owner
            .apply(&fd)
            .with_context(|| format!("cannot chown {shown}"))?;
        let mut file = std::fs::File::from(fd);
        for part in content {
            file.write_all(part)
                .with_context(|| format!("cannot write {shown}"))?;
        }
        // After the content: a write by a process without CAP_FSETID (an image build) clears
        // the set-id bits, as a chown does.
        fchmod(&file, Mode::from_bits_truncate(as_written(mode)))
            .with_context(|| format!("cannot chmod {shown}"))?;
        file.sync_all()
            .with_context(|| format!("cannot sync {shown}"))?;
        Ok(())
    }

    /// Atomically replaces `to` with `from` (same directory), then syncs the directory.
    pub(crate) fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.rename_flags(from, to, RenameFlags::empty())
    }

    /// Swaps `a` and `b` atomically (`RENAME_EXCHANGE`): no instant where either is missing.
    pub(crate) fn exchange(&mut self, a: &str, b: &str) -> Result<()> {
        self.rename_flags(a, b, RenameFlags::RENAME_EXCHANGE)?;
        self.forget_dirs();
        Ok(())
    }

    /// Renames `from` to `to` only if `to` does not exist; `Ok(false)` if it does.
    pub(crate) fn rename_noreplace(&mut self, from: &str, to: &str) -> Result<bool> {
        match self.rename_at(from, to, RenameFlags::RENAME_NOREPLACE)? {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST) => Ok(false),
            Err(e) => bail!(
                "cannot rename {} to {}: {e}",
                self.show(from),
                self.show(to)
            ),
        }
    }

    fn rename_flags(&mut self, from: &str, to: &str, flags: RenameFlags) -> Result<()> {
        match self.rename_at(from, to, flags)? {
            Ok(()) => Ok(()),
            Err(e) => bail!(
                "cannot rename {} to {}: {e}",
                self.show(from),
                self.show(to)
            ),
        }
    }

    /// `renameat` (`renameat2` with `flags`) within one directory, then an fsync of it. The
    /// outer error is anything but the rename itself, the inner one what the rename said.
    fn rename_at(&mut self, from: &str, to: &str, flags: RenameFlags) -> Result<Result<(), Errno>> {
        let (pa, na) = split(from);
        let (pb, nb) = split(to);
        if pa != pb {
            bail!("internal: rename across directories {from} -> {to}");
        }
        let sb = self.show(to);
        let pfd = self.dir(pa)?;
        let res = if flags.is_empty() {
            renameat(pfd, na, pfd, nb)
        } else {
            renameat2(pfd, na, pfd, nb, flags)
        };
        if let Err(e) = res {
            return Ok(Err(e));
        }
        fsync(pfd).with_context(|| format!("cannot sync the directory of {sb}"))?;
        Ok(Ok(()))
    }

    /// Makes a hard link `to` of `from` (a file or the symlink itself, never its target).
    pub(crate) fn hardlink(&mut self, from: &str, to: &str) -> Result<bool> {
        let (pa, na) = split(from);
        let (pb, nb) = split(to);
        let (sa, sb) = (self.show(from), self.show(to));
        let a = self.dir(pa)?.try_clone()?;
        let b = self.dir(pb)?;
        match linkat(&a, na, b, nb, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST) => Ok(false),
            Err(e) => bail!("cannot link {sa} to {sb}: {e}"),
        }
    }

    /// Syncs directory `rel`.
    pub(crate) fn sync_dir(&mut self, rel: &str) -> Result<()> {
        let shown = self.show(rel);
        let fd = self.dir(rel)?;
        fsync(fd).with_context(|| format!("cannot sync {shown}"))
    }

    /// Replaces `rel` atomically with `bytes` (mode 0644): a temp file in the same directory
    /// ([`temp_name`]), written and fsynced, renamed over `rel`, then the directory fsynced.
    ///
    /// # Atomicity
    /// A reader (or a crash) sees the old content or the new, never a partial file. Callers hold
    /// the lock, so the temp name is theirs; a killed run's temp file is swept under the lock.
    pub(crate) fn atomic_write(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        self.atomic_write_parts(rel, &[bytes])
    }

    /// [`Root::atomic_write`] of the concatenation of `parts` (written in turn, never copied
    /// together).
    pub(crate) fn atomic_write_parts(&mut self, rel: &str, parts: &[&[u8]]) -> Result<()> {
        self.atomic_write_as(rel, parts, 0o644, Owner::current())
    }

    /// [`Root::atomic_write_parts`] with `mode` and `owner`, given to the temp file as
    /// [`Root::write_new`] does: a file readable only by its owner is never readable by others.
    pub(crate) fn atomic_write_as(
        &mut self,
        rel: &str,
        parts: &[&[u8]],
        mode: u32,
        owner: Owner,
    ) -> Result<()> {
        let tmp = temp_name(rel);
        self.remove_tree_if_present(&tmp)?;
        self.write_new(&tmp, parts, mode, owner)?;
        self.rename(&tmp, rel)
    }

    /// Gives the real directory `rel` (never a link) `owner` and `mode`.
    pub(crate) fn set_dir_owner_mode(&mut self, rel: &str, owner: Owner, mode: u32) -> Result<()> {
        let shown = self.show(rel);
        let fd = self.dir(rel)?.try_clone()?;
        owner
            .apply(&fd)
            .with_context(|| format!("cannot chown {shown}"))?;
        fchmod(&fd, Mode::from_bits_truncate(mode)).with_context(|| format!("cannot chmod {shown}"))
    }

    /// Opens (making it, mode 0600, if missing) the lock file `rel` for writing, not following
    /// a link there: a record lock needs a descriptor open for writing.
    pub(crate) fn open_lock_file(&mut self, rel: &str) -> Result<OwnedFd> {
        let (parent, name) = split(rel);
        let shown = self.show(rel);
        let pfd = self.dir(parent)?;
        let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        openat(pfd, name, flags, Mode::from_bits_truncate(0o600))
            .with_context(|| format!("cannot open the lock {shown}"))
    }
}

/// The mode a file declared `mode` gets: `mode` itself, except that an unprivileged run (a
/// scratch root, an image build) keeps its owner's read bit, without which it could neither
/// read back nor pack what it wrote (see [`Root::write_new`]). What judges a file's mode
/// (`etc/right.rs`) expects the same.
pub(crate) fn as_written(mode: u32) -> u32 {
    if nix::unistd::geteuid().is_root() {
        mode
    } else {
        mode | 0o400
    }
}

/// The temporary name [`Root::atomic_write`] uses for `rel`: beside it, with etcflip's reserved
/// mark.
pub(crate) fn temp_name(rel: &str) -> String {
    let (parent, name) = split(rel);
    join(parent, &format!(".{name}.etcflip-tmp"))
}

/// The owner to give a file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
}

impl Owner {
    /// The effective user and group of this process.
    pub(crate) fn current() -> Owner {
        Owner {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }

    /// Applies the owner to an open fd. Skipped when it already matches, so an unprivileged
    /// run (a scratch root, an image build) can still write files it owns.
    pub(crate) fn apply(self, fd: &OwnedFd) -> Result<()> {
        let st = fstat(fd)?;
        if st.st_uid == self.uid && st.st_gid == self.gid {
            return Ok(());
        }
        match fchown(
            fd.as_fd(),
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
        ) {
            Ok(()) => Ok(()),
            Err(Errno::EPERM) if !Uid::effective().is_root() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
