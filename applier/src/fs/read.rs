//! Reading under the root: regular files only, bounded, never blocking on a FIFO or reading a
//! device.

use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};

use super::root::{split, Root};

/// The most [`Root::read_in_root`] reads: user databases and runtime copies are small, and a
/// huge or endless file must not exhaust memory at activation.
const MAX_READ: u64 = 64 << 20;

impl Root {
    /// Reads a regular file below the root (not following links).
    pub(crate) fn read(&mut self, rel: &str) -> Result<Vec<u8>> {
        let (parent, name) = split(rel);
        let shown = self.show(rel);
        let pfd = self.dir(parent)?;
        let fd = open_read(pfd, name, &shown)?;
        read_bounded(fd, &shown)
    }

    /// Opens `rel` read-only, not following it if it is a link.
    pub(crate) fn open_file(&mut self, rel: &str) -> Result<OwnedFd> {
        let (parent, name) = split(rel);
        let shown = self.show(rel);
        let pfd = self.dir(parent)?;
        open_read(pfd, name, &shown)
    }

    /// Reads the regular file `rel` resolving links *inside* the root (`RESOLVE_IN_ROOT`): for
    /// files such as `/etc/passwd` that may legitimately be a link (immutable user databases)
    /// and for the sources of runtime copies (`/run/secrets` is a link on sops-nix systems).
    /// `None` if missing; anything but a regular file is an error (a FIFO would hang us).
    pub(crate) fn read_in_root(&mut self, rel: &str) -> Result<Option<Vec<u8>>> {
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
}

/// Opens `name` in `pfd` for reading, refusing to follow a link there.
/// Only a regular file: `O_NONBLOCK` so that a FIFO put there meanwhile cannot block the
/// open, and the type checked on what was opened.
pub(super) fn open_read(pfd: &OwnedFd, name: &str, shown: &str) -> Result<OwnedFd> {
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
    // Sized from the start: grown by doubling, a 100 KiB `shadow` cost a dozen copies, and
    // the fresh pages each one faults in.
    let size = fstat(&fd).map_or(0, |st| u64::try_from(st.st_size).unwrap_or(0));
    let mut out = Vec::with_capacity(usize::try_from(size.min(MAX_READ)).unwrap_or(0) + 1);
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
pub(crate) fn read_regular(path: &Path) -> Result<Vec<u8>> {
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

/// A file read by its two ends only: what a reader whose cost must not grow with the file
/// (a boot on an image: `applied.json`, the generation's manifest) reads of it.
pub(crate) struct Ends {
    /// The first bytes (all of them, for a file no longer than what was asked).
    pub(crate) head: Vec<u8>,
    /// The last bytes.
    pub(crate) tail: Vec<u8>,
    /// The file's length.
    pub(crate) len: u64,
}

impl Ends {
    /// The first `head` and last `tail` bytes of `file` (`shown` in errors), each at most its
    /// length.
    pub(crate) fn of(file: &std::fs::File, (head, tail): (u64, u64), shown: &str) -> Result<Ends> {
        use std::os::unix::fs::FileExt as _;
        let len = (file.metadata())
            .with_context(|| format!("cannot stat {shown}"))?
            .len();
        let chunk = |at: u64, n: u64| -> Result<Vec<u8>> {
            let mut buf = vec![0u8; usize::try_from(n).unwrap_or(0)];
            (file.read_exact_at(&mut buf, at)).with_context(|| format!("cannot read {shown}"))?;
            Ok(buf)
        };
        Ok(Ends {
            head: chunk(0, head.min(len))?,
            tail: chunk(len.saturating_sub(tail), tail.min(len))?,
            len,
        })
    }
}

pub use etcflip_format::hash::sha256_bytes;
use etcflip_format::hash::sha256_stream;

/// sha256 of everything readable from `fd`, as lowercase hex.
pub(crate) fn sha256_fd(fd: OwnedFd) -> std::io::Result<String> {
    sha256_stream(std::fs::File::from(fd), None)
}
