//! `Root`: the root handle, its directory cache, and listing a directory.
//!
//! The root is opened once as a directory fd; every path below it is walked component by
//! component with `O_NOFOLLOW | O_DIRECTORY`, and the last component is acted on through its
//! parent fd (`*at` calls with no-follow flags). So a symlink we did not create is never
//! followed, whatever it points at (a planted `/etc/ssh -> /usr/bin` included), and a live
//! system and a test's temporary root take exactly the same code path.
//!
//! Paths given to `Root` are relative to the root, `/`-separated, canonical (`etc/ssh/x`).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

pub(super) const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// A root directory and a cache of directory fds below it.
pub(crate) struct Root {
    /// Shared, so that error messages can be built while a directory fd is borrowed, and only
    /// when there is an error (building them for every lookup was a tenth of a no-op switch).
    pub(super) host: std::rc::Rc<Path>,
    pub(super) fd: OwnedFd,
    pub(super) dirs: HashMap<String, OwnedFd>,
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
pub(crate) fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Joins two relative paths.
pub(crate) fn join(parent: &str, name: &str) -> String {
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
    pub(crate) fn open(host: &Path) -> Result<Root> {
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

    /// The root as the host sees it, normalized, as it was when opened (see [`Root::open`]).
    pub(crate) fn host_path(&self) -> &Path {
        &self.host
    }

    /// The host path of `rel`, for messages only (never opened by path).
    pub(crate) fn show(&self, rel: &str) -> String {
        self.host.join(rel).display().to_string()
    }

    /// Whether the directory `rel` is on a read-only mount (an image's `/etc`); a missing one
    /// is not. Asked through the directory's own descriptor, never by a path that could follow
    /// a link.
    pub(crate) fn read_only(&mut self, rel: &str) -> Result<bool> {
        if !matches!(self.node_with(rel, false)?, super::Node::Dir(_)) {
            return Ok(false);
        }
        let shown = self.show(rel);
        let st = nix::sys::statvfs::fstatvfs(self.dir(rel)?)
            .with_context(|| format!("cannot look at the mount of {shown}"))?;
        Ok(st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    }

    /// Forgets cached directory fds: needed after directories were renamed or exchanged.
    pub(crate) fn forget_dirs(&mut self) {
        self.dirs.clear();
    }

    /// Opens directory `rel` without following any link on the way. `Ok(None)` if a component
    /// is missing; `Err` (a component that is not a real directory) becomes an error in
    /// [`Root::dir`] and `Node::Blocked` in [`Root::node_with`].
    pub(super) fn dir_fd(&mut self, rel: &str) -> Result<Option<&OwnedFd>, (String, Errno)> {
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
    pub(crate) fn dir(&mut self, rel: &str) -> Result<&OwnedFd> {
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

    /// Names in directory `rel`, sorted; empty if it does not exist.
    pub(crate) fn list(&mut self, rel: &str) -> Result<Vec<String>> {
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
}
