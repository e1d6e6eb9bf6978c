//! Removing under the root: entries through the fd of their parent as cached when looked at,
//! trees without following links or crossing mounts.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt as _;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use nix::errno::Errno;
use nix::fcntl::openat;
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use etcflip_format::manifest::is_same_or_below;

use super::node::Node;
use super::root::{split, Root, DIR_FLAGS};

impl Root {
    /// Removes a file or symlink (never what it points to). Missing is fine.
    pub(crate) fn unlink(&mut self, rel: &str) -> Result<()> {
        self.unlink_flags(rel, UnlinkatFlags::NoRemoveDir)
    }

    /// Removes an empty directory. Missing is fine.
    pub(crate) fn rmdir(&mut self, rel: &str) -> Result<()> {
        self.unlink_flags(rel, UnlinkatFlags::RemoveDir)?;
        self.dirs.retain(|k, _| !is_same_or_below(k, rel));
        Ok(())
    }

    /// Removes the entry at `rel` through the fd of its parent as cached when it was looked
    /// at (never by re-resolving the path: a parent swapped since for a link elsewhere is not
    /// followed). A directory goes only when empty: returns `false` when it is not.
    pub(crate) fn remove_entry(&mut self, rel: &str, dir: bool) -> Result<bool> {
        let flags = if dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        match self.unlink_at(rel, flags)? {
            Err(Errno::ENOTEMPTY) => Ok(false),
            Err(e) => bail!("cannot remove {}: {e}", self.show(rel)),
            Ok(()) => {
                if dir {
                    self.dirs.retain(|k, _| !is_same_or_below(k, rel));
                }
                Ok(true)
            }
        }
    }

    fn unlink_flags(&mut self, rel: &str, flags: UnlinkatFlags) -> Result<()> {
        match self.unlink_at(rel, flags)? {
            Ok(()) => Ok(()),
            Err(e) => bail!("cannot remove {}: {e}", self.show(rel)),
        }
    }

    /// `unlinkat` in the parent of `rel`; the outer error is a parent that is not a real
    /// directory, the inner one what `unlinkat` said. Missing is fine.
    fn unlink_at(&mut self, rel: &str, flags: UnlinkatFlags) -> Result<Result<(), Errno>> {
        let (parent, name) = split(rel);
        let shown = self.show(rel);
        let pfd = match self.dir_fd(parent) {
            Ok(Some(fd)) => fd,
            Ok(None) => return Ok(Ok(())),
            Err((at, e)) => bail!("cannot remove {shown}: {at} is not a directory ({e})"),
        };
        match unlinkat(pfd, name, flags) {
            Ok(()) | Err(Errno::ENOENT) => Ok(Ok(())),
            Err(e) => Ok(Err(e)),
        }
    }

    /// Removes `rel` and everything below it, without following links or crossing mounts.
    /// Only used on etcflip's own scratch trees and on trees the plan proved to be ours.
    pub(crate) fn remove_tree(&mut self, rel: &str) -> Result<()> {
        let Node::Dir(top) = self.node_with(rel, false)? else {
            return self.unlink(rel);
        };
        self.remove_below(rel, top.dev)?;
        self.rmdir(rel)
    }

    /// [`Root::remove_tree`] when something is there.
    pub(crate) fn remove_tree_if_present(&mut self, rel: &str) -> Result<()> {
        match self.node_with(rel, false)? {
            Node::Absent | Node::Blocked(_) => Ok(()),
            _ => self.remove_tree(rel),
        }
    }

    fn remove_below(&mut self, rel: &str, dev: u64) -> Result<()> {
        let shown = self.host.join(rel);
        let fd = self.dir(rel)?.try_clone()?;
        remove_contents(&fd, dev, &shown)?;
        // What was below `rel` is gone: no cached fd may name it any more.
        self.dirs
            .retain(|k, _| k == rel || !is_same_or_below(k, rel));
        Ok(())
    }
}

/// Empties the directory open at `dir` (shown as `shown`): names are taken as bytes, as the
/// listing gives them (a foreign tree may hold names that are not UTF-8); nothing is followed,
/// and no mount point, nor a directory of another device, is entered.
fn remove_contents(dir: &OwnedFd, dev: u64, shown: &Path) -> Result<()> {
    let listed = nix::dir::Dir::from_fd(dir.try_clone()?)
        .with_context(|| format!("cannot list {}", shown.display()))?
        .into_iter()
        .map(|e| e.map(|e| e.file_name().to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot list {}", shown.display()))?;
    nix::unistd::lseek(dir, 0, nix::unistd::Whence::SeekSet)
        .with_context(|| format!("cannot rewind {}", shown.display()))?;
    for name in listed {
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let child = shown.join(&*std::ffi::OsString::from_vec(bytes.to_vec()));
        let st = super::statx::statx_name(dir.as_fd(), &name)
            .with_context(|| format!("cannot stat {}", child.display()))?;
        let is_dir = SFlag::from_bits_truncate(st.mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR;
        if st.mount_root || (is_dir && st.dev != dev) {
            bail!("{} is a mount point; not removing it", child.display());
        }
        if is_dir {
            let sub = openat(dir, name.as_c_str(), DIR_FLAGS, Mode::empty())
                .with_context(|| format!("cannot open {}", child.display()))?;
            remove_contents(&sub, dev, &child)?;
        }
        let flags = if is_dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        match unlinkat(dir, name.as_c_str(), flags) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => bail!("cannot remove {}: {e}", child.display()),
        }
    }
    Ok(())
}
