//! `Root`: the only way the applier touches the file system under a root.
//!
//! The root is opened once as a directory fd; every path below it is walked component by
//! component with `O_NOFOLLOW | O_DIRECTORY`, and the last component is acted on through its
//! parent fd (`*at` calls with no-follow flags). So a symlink we did not create is never
//! followed, whatever it points at (a planted `/etc/ssh -> /usr/bin` included), and a live
//! system and a test's temporary root take exactly the same code path.
//!
//! Paths given to `Root` are relative to the root, `/`-separated, canonical (`etc/ssh/x`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt as _;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, renameat, renameat2, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode, SFlag};
use nix::unistd::{fchown, fsync, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::statx::{statx_at, Stat};

/// The most [`Root::read_in_root`] reads: user databases and runtime copies are small, and a
/// huge or endless file must not exhaust memory at activation.
const MAX_READ: u64 = 64 << 20;

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// What is at a path, looked at without following it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
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
    pub fn is_mount_point(&self) -> bool {
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
pub struct Meta {
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
pub struct FileInfo {
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

/// A root directory and a cache of directory fds below it.
pub struct Root {
    /// Shared, so that error messages can be built while a directory fd is borrowed, and only
    /// when there is an error (building them for every lookup was a tenth of a no-op switch).
    host: std::rc::Rc<Path>,
    fd: OwnedFd,
    dirs: HashMap<String, OwnedFd>,
    /// At most this many directory fds stay open (see [`max_cached_dirs`]).
    max_dirs: usize,
}

/// How many directory fds one [`Root`] keeps open: a quarter of the soft open-file limit (at
/// most 256). systemd starts services, `nixos-rebuild`'s switch among them, with a soft limit
/// of 1,024, and a tree can hold far more directories than that; the rest of the limit stays
/// for everything else (lock, state files, pipes to tmpfiles).
fn max_cached_dirs() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    usize::try_from(soft / 4).unwrap_or(256).clamp(4, 256)
}

/// Splits `a/b/c` into (`a/b`, `c`); a top-level name has the parent `""` (the root).
pub fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Joins two relative paths.
pub fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

impl Root {
    /// Opens `host` (the `--root` directory, `/` for the live system). What cannot be opened
    /// as a directory is bad usage (exit 2). From here on the root is this open directory:
    /// its path (normalized: no `.`, `..` or links, whatever `host` said) is only read back
    /// from the descriptor, for messages, mount points and paths inside the root.
    pub fn open(host: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(host, DIR_FLAGS.difference(OFlag::O_NOFOLLOW), Mode::empty())
            .map_err(|e| {
                crate::errors::Invalid::one(format!(
                    "--root {}: not a directory that can be opened ({e})",
                    host.display()
                ))
            })?;
        let real = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
        .or_else(|_| std::fs::canonicalize(host))
        .with_context(|| format!("cannot resolve the root {}", host.display()))?;
        Ok(Root {
            host: real.as_path().into(),
            fd,
            dirs: HashMap::new(),
            max_dirs: max_cached_dirs(),
        })
    }

    /// The root directory's fd (the directory itself, whatever path named it).
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// The root as the host sees it, normalized, as it was when opened (see [`Root::open`]).
    pub fn host_path(&self) -> &Path {
        &self.host
    }

    /// The host path of `rel`, for messages only (never opened by path).
    pub fn show(&self, rel: &str) -> String {
        self.host.join(rel).display().to_string()
    }

    /// Forgets cached directory fds: needed after directories were renamed or exchanged.
    pub fn forget_dirs(&mut self) {
        self.dirs.clear();
    }

    /// Opens directory `rel` without following any link on the way. `Ok(None)` if a component
    /// is missing; `Err` with [`Node::Blocked`] semantics is reported by [`Root::dir_state`].
    fn dir_fd(&mut self, rel: &str) -> Result<Option<&OwnedFd>, (String, Errno)> {
        if rel.is_empty() {
            return Ok(Some(&self.fd));
        }
        if !self.dirs.contains_key(rel) {
            let (parent, name) = split(rel);
            let fd = match self.dir_fd(parent)? {
                None => return Ok(None),
                Some(pfd) => match openat(pfd, name, DIR_FLAGS, Mode::empty()) {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) => return Ok(None),
                    Err(e) => return Err((rel.to_owned(), e)),
                },
            };
            if self.dirs.len() >= self.max_dirs {
                // Paths come sorted, so what is dropped is mostly done with; an ancestor
                // still needed is opened again (without following links, as always). `/etc`
                // itself stays: the switch's lock and its children hold it, and a swapped
                // `/etc` must never be opened again by name in the middle of a switch.
                self.dirs.retain(|k, _| k == "etc");
            }
            self.dirs.insert(rel.to_owned(), fd);
        }
        Ok(self.dirs.get(rel))
    }

    /// The fd of directory `rel`, which must exist as a real directory.
    pub fn dir(&mut self, rel: &str) -> Result<&OwnedFd> {
        let found = match self.dir_fd(rel) {
            Ok(found) => found.is_some(),
            Err((at, e)) => bail!(
                "{}: expected a real directory, but {} is not one ({e})",
                self.show(rel),
                self.show(&at)
            ),
        };
        if !found {
            bail!("{}: expected a directory, found nothing", self.show(rel));
        }
        let fd = if rel.is_empty() {
            Some(&self.fd)
        } else {
            self.dirs.get(rel)
        };
        fd.with_context(|| format!("internal: {rel} not cached"))
    }

    /// What is at `rel`, without following it; regular files are hashed.
    pub fn node(&mut self, rel: &str) -> Result<Node> {
        self.node_with(rel, true)
    }

    /// Like [`Root::node`]; `hash` false skips reading regular files (their sha256 is empty).
    pub fn node_with(&mut self, rel: &str, hash: bool) -> Result<Node> {
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
    pub fn stat(&mut self, rel: &str) -> Result<Option<Stat>> {
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

    /// Names in directory `rel`, sorted; empty if it does not exist.
    pub fn list(&mut self, rel: &str) -> Result<Vec<String>> {
        let shown = self.show(rel);
        let fd = match self.dir_fd(rel) {
            Ok(Some(fd)) => fd,
            Ok(None) => return Ok(Vec::new()),
            Err((at, e)) => bail!(
                "cannot list {shown}: {} is not a directory ({e})",
                self.show(&at)
            ),
        };
        let dup = fd
            .try_clone()
            .with_context(|| format!("cannot list {shown}"))?;
        let mut dir =
            nix::dir::Dir::from_fd(dup).with_context(|| format!("cannot list {shown}"))?;
        let mut names = Vec::new();
        for ent in dir.iter() {
            let ent = ent.with_context(|| format!("cannot list {shown}"))?;
            let name = ent.file_name().to_bytes();
            if name != b"." && name != b".." {
                // Names we manage are UTF-8; a foreign non-UTF-8 name only needs to be seen
                // (it makes a directory non-empty, a tree not ours), so a lossy form will do.
                names.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        // A Dir from a dup'ed fd shares the offset: rewind for the next reader.
        nix::unistd::lseek(fd, 0, nix::unistd::Whence::SeekSet)
            .with_context(|| format!("cannot rewind {shown}"))?;
        names.sort();
        Ok(names)
    }

    /// Creates directories `rel` and its missing parents (mode 0755), never following links.
    pub fn make_dirs(&mut self, rel: &str) -> Result<()> {
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
    pub fn symlink(&mut self, text: &str, rel: &str) -> Result<()> {
        let (parent, name) = split(rel);
        let shown = self.show(rel);
        let pfd = self.dir(parent)?;
        symlinkat(text, pfd, name).with_context(|| format!("cannot create the link {shown}"))
    }

    /// Writes a new regular file `rel` (which must not exist) with `content`, setting owner
    /// and mode on the fd before any byte is written (a secret is never readable by others),
    /// then fsyncs it.
    pub fn write_new(
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
        fchmod(&fd, Mode::from_bits_truncate(mode))
            .with_context(|| format!("cannot chmod {shown}"))?;
        let mut file = std::fs::File::from(fd);
        for part in content {
            file.write_all(part)
                .with_context(|| format!("cannot write {shown}"))?;
        }
        file.sync_all()
            .with_context(|| format!("cannot sync {shown}"))?;
        Ok(())
    }

    /// Reads a regular file below the root (not following links).
    pub fn read(&mut self, rel: &str) -> Result<Vec<u8>> {
        let (parent, name) = split(rel);
        let shown = self.show(rel);
        let pfd = self.dir(parent)?;
        let fd = open_read(pfd, name, &shown)?;
        read_bounded(fd, &shown)
    }

    /// Opens `rel` read-only, not following it if it is a link.
    pub fn open_file(&mut self, rel: &str) -> Result<OwnedFd> {
        let (parent, name) = split(rel);
        let shown = self.show(rel);
        let pfd = self.dir(parent)?;
        open_read(pfd, name, &shown)
    }

    /// Reads the regular file `rel` resolving links *inside* the root (`RESOLVE_IN_ROOT`): for
    /// files such as `/etc/passwd` that may legitimately be a link (immutable user databases)
    /// and for the sources of runtime copies (`/run/secrets` is a link on sops-nix systems).
    /// `None` if missing; anything but a regular file is an error (a FIFO would hang us).
    pub fn read_in_root(&mut self, rel: &str) -> Result<Option<Vec<u8>>> {
        // Looked at through an O_PATH fd first: opening a device to read it can have effects
        // (a watchdog, a tape); only a regular file is opened for reading, and only if the
        // path still names the same one then.
        let Some(path_fd) = self.open_in_root(rel, OFlag::O_PATH)? else {
            return Ok(None);
        };
        let shown = self.show(rel);
        let st = regular(&path_fd, &shown)?;
        let fd = self
            .open_in_root(rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?
            .with_context(|| format!("{shown} went away while it was read"))?;
        let again = fstat(&fd).with_context(|| format!("cannot stat {shown}"))?;
        if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
            bail!("{shown} was replaced while it was read");
        }
        read_bounded(fd, &shown).map(Some)
    }

    /// `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` of `rel`; `None` if missing.
    fn open_in_root(&self, rel: &str, flags: OFlag) -> Result<Option<OwnedFd>> {
        use nix::fcntl::{openat2, OpenHow, ResolveFlag};
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        loop {
            match openat2(&self.fd, rel, how) {
                Ok(fd) => return Ok(Some(fd)),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(Errno::ENOENT) => return Ok(None),
                Err(e) => bail!("cannot open {} inside the root: {e}", self.show(rel)),
            }
        }
    }

    /// Atomically replaces `to` with `from` (same directory), then syncs the directory.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.rename_flags(from, to, RenameFlags::empty())
    }

    /// Swaps `a` and `b` atomically (`RENAME_EXCHANGE`): no instant where either is missing.
    pub fn exchange(&mut self, a: &str, b: &str) -> Result<()> {
        self.rename_flags(a, b, RenameFlags::RENAME_EXCHANGE)?;
        self.forget_dirs();
        Ok(())
    }

    /// Renames `from` to `to` only if `to` does not exist; `Ok(false)` if it does.
    pub fn rename_noreplace(&mut self, from: &str, to: &str) -> Result<bool> {
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
    pub fn hardlink(&mut self, from: &str, to: &str) -> Result<bool> {
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

    /// Removes a file or symlink (never what it points to). Missing is fine.
    pub fn unlink(&mut self, rel: &str) -> Result<()> {
        self.unlink_flags(rel, UnlinkatFlags::NoRemoveDir)
    }

    /// Removes an empty directory. Missing is fine.
    pub fn rmdir(&mut self, rel: &str) -> Result<()> {
        self.unlink_flags(rel, UnlinkatFlags::RemoveDir)?;
        self.dirs
            .retain(|k, _| !crate::manifest::is_same_or_below(k, rel));
        Ok(())
    }

    /// Removes the entry at `rel` through the fd of its parent as cached when it was looked
    /// at (never by re-resolving the path: a parent swapped since for a link elsewhere is not
    /// followed). A directory goes only when empty: returns `false` when it is not.
    pub fn remove_entry(&mut self, rel: &str, dir: bool) -> Result<bool> {
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
                    self.dirs
                        .retain(|k, _| !crate::manifest::is_same_or_below(k, rel));
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
    pub fn remove_tree(&mut self, rel: &str) -> Result<()> {
        let Node::Dir(top) = self.node_with(rel, false)? else {
            return self.unlink(rel);
        };
        self.remove_below(rel, top.dev)?;
        self.rmdir(rel)
    }

    /// [`Root::remove_tree`] when something is there.
    pub fn remove_tree_if_present(&mut self, rel: &str) -> Result<()> {
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
            .retain(|k, _| k == rel || !crate::manifest::is_same_or_below(k, rel));
        Ok(())
    }

    /// Syncs directory `rel`.
    pub fn sync_dir(&mut self, rel: &str) -> Result<()> {
        let shown = self.show(rel);
        let fd = self.dir(rel)?;
        fsync(fd).with_context(|| format!("cannot sync {shown}"))
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
        let st = crate::statx::statx_name(dir.as_fd(), &name)
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

/// Opens `name` in `pfd` for reading, refusing to follow a link there.
/// Only a regular file: `O_NONBLOCK` so that a FIFO put there meanwhile cannot block the
/// open, and the type checked on what was opened.
fn open_read(pfd: &OwnedFd, name: &str, shown: &str) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd =
        openat(pfd, name, flags, Mode::empty()).with_context(|| format!("cannot open {shown}"))?;
    regular(&fd, shown)?;
    Ok(fd)
}

/// Fails unless `fd` is a regular file of at most `MAX_READ` bytes (64 MiB) (a device or a FIFO
/// would block or never end); returns its stat.
fn regular(fd: &OwnedFd, shown: &str) -> Result<nix::sys::stat::FileStat> {
    let st = fstat(fd).with_context(|| format!("cannot stat {shown}"))?;
    if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
        bail!("{shown} is not a regular file");
    }
    if u64::try_from(st.st_size).unwrap_or(u64::MAX) > MAX_READ {
        bail!("{shown} is larger than {} MiB", MAX_READ >> 20);
    }
    Ok(st)
}

/// Reads all of `fd` (checked by [`regular`]), at most `MAX_READ` bytes (64 MiB) even if it grows.
fn read_bounded(fd: OwnedFd, shown: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_READ + 1)
        .read_to_end(&mut out)
        .with_context(|| format!("cannot read {shown}"))?;
    if out.len() as u64 > MAX_READ {
        bail!("{shown} is larger than {} MiB", MAX_READ >> 20);
    }
    Ok(out)
}

/// Reads a regular file of the host (a generation's payload, following its links to the
/// sources, as readers will): never blocks on a FIFO or reads a device, at most
/// `MAX_READ` bytes (64 MiB).
pub fn read_regular(path: &Path) -> Result<Vec<u8>> {
    let shown = path.display().to_string();
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .with_context(|| format!("cannot open {shown}"))?;
    regular(&fd, &shown)?;
    read_bounded(fd, &shown)
}

/// The owner to give a file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
}

impl Owner {
    /// The effective user and group of this process.
    pub fn current() -> Owner {
        Owner {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }

    /// Applies the owner to an open fd. Skipped when it already matches, so an unprivileged
    /// run (a scratch root, an image build) can still write files it owns.
    pub fn apply(self, fd: &OwnedFd) -> Result<()> {
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

pub use etcflip_format::hash::{sha256_bytes, sha256_stream};

/// sha256 of everything readable from `fd`, as lowercase hex.
pub fn sha256_fd(fd: OwnedFd) -> std::io::Result<String> {
    sha256_stream(std::fs::File::from(fd), None)
}
