//! What is at a path below the root, looked at without following it: [`Node`], its
//! metadata, and the lookups that give it.

use std::os::fd::AsFd;

use anyhow::{bail, Context as _, Result};
use nix::errno::Errno;
use nix::fcntl::readlinkat;
use nix::sys::stat::SFlag;

use super::read::{open_read, sha256_fd};
use super::root::{split, Root};
use super::statx::{statx_at, Stat};

/// What is at a path, looked at without following it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// Nothing.
    Absent,
    /// A symlink and its exact text.
    Link(String),
    /// A regular file.
    File(FileInfo),
    /// A real directory.
    Dir(Meta),
    /// A device, fifo, socket, or a link whose text is not UTF-8; whether it is a mount
    /// point (`mount --bind /dev/null` masks a file that way).
    Other(bool),
    /// A component above the path is not a real directory (a link or a file): the path was
    /// not looked at, because that would mean following it. Holds that ancestor.
    Blocked(String),
}

impl Node {
    /// Whether the path is a mount point (something mounted on it, e.g. by nixos-enter).
    pub(crate) fn is_mount_point(&self) -> bool {
        match self {
            Node::File(f) => f.meta.mount,
            Node::Dir(m) => m.mount,
            Node::Other(mount) => *mount,
            _ => false,
        }
    }
}

/// Mode and owner of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device, to notice mount points below a tree being removed.
    pub dev: u64,
    /// The path itself is a mount point: never renamed, removed or replaced.
    pub mount: bool,
}

/// A regular file's metadata and content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileInfo {
    /// Mode and owner.
    pub meta: Meta,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
}

impl Meta {
    fn of(st: &Stat) -> Meta {
        Meta {
            mode: st.mode & 0o7777,
            uid: st.uid,
            gid: st.gid,
            dev: st.dev,
            mount: st.mount_root,
        }
    }
}

impl Root {
    /// What is at `rel`, without following it; regular files are hashed.
    pub(crate) fn node(&mut self, rel: &str) -> Result<Node> {
        self.node_with(rel, true)
    }

    /// Like [`Root::node`]; `hash` false skips reading regular files (their sha256 is empty).
    pub(crate) fn node_with(&mut self, rel: &str, hash: bool) -> Result<Node> {
        let (parent, name) = split(rel);
        let host = std::rc::Rc::clone(&self.host);
        let shown = || host.join(rel).display().to_string();
        let pfd = match self.dir_fd(parent) {
            Ok(Some(fd)) => fd,
            Ok(None) => return Ok(Node::Absent),
            Err((at, Errno::ENOTDIR | Errno::ELOOP)) => return Ok(Node::Blocked(at)),
            Err((at, e)) => bail!("{}: cannot open the directory {at}: {e}", shown()),
        };
        // Links are the common case: one readlinkat answers for them.
        match readlinkat(pfd, name) {
            Ok(mut text) => {
                // nix reads into a PATH_MAX buffer and hands it over as is: keeping 4 KiB per
                // link cost a fresh page (a fault) per entry. Give the slack back at once.
                text.shrink_to_fit();
                return Ok(text.into_string().map_or(Node::Other(false), Node::Link));
            }
            Err(Errno::ENOENT) => return Ok(Node::Absent),
            Err(Errno::EINVAL) => {}
            Err(e) => bail!("{}: cannot read the link: {e}", shown()),
        }
        let st = statx_at(pfd.as_fd(), name).with_context(|| format!("cannot stat {}", shown()))?;
        let meta = Meta::of(&st);
        match SFlag::from_bits_truncate(st.mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => Ok(Node::Dir(meta)),
            SFlag::S_IFREG if !hash => Ok(Node::File(FileInfo {
                meta,
                sha256: String::new(),
            })),
            SFlag::S_IFREG => {
                let fd = open_read(pfd, name, &shown())?;
                let sha256 = sha256_fd(fd).with_context(|| format!("cannot read {}", shown()))?;
                Ok(Node::File(FileInfo { meta, sha256 }))
            }
            _ => Ok(Node::Other(meta.mount)),
        }
    }

    /// `statx` of `rel` without following it; `None` if it (or a directory above it) is
    /// missing, or a component above it is not a real directory.
    pub(crate) fn stat(&mut self, rel: &str) -> Result<Option<Stat>> {
        let (parent, name) = split(rel);
        let shown = self.show(rel);
        let pfd = match self.dir_fd(parent) {
            Ok(Some(fd)) => fd,
            Ok(None) | Err((_, Errno::ENOTDIR | Errno::ELOOP)) => return Ok(None),
            Err((at, e)) => bail!("{shown}: cannot open the directory {at}: {e}"),
        };
        if rel.is_empty() {
            return Ok(None);
        }
        match statx_at(pfd.as_fd(), name) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => bail!("cannot stat {shown}: {e}"),
        }
    }
}
