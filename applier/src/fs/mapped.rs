//! Whole files mapped read-only: the manifests a switch parses.
//!
//! Reading a 2 MB manifest with `read(2)` allocates and zeroes 500 fresh pages and copies the
//! file into them; on the machines we measured that is ~1.5 ms per file, a tenth of a small
//! switch. A populated read-only mapping of the page cache costs ~0.2 ms, and the parsed
//! manifest borrows its strings from it (see [`crate::borrowed`]).
//!
//! A mapping is only sound while nobody modifies the file in place: the bytes behind a shared
//! borrow would change (and could stop being UTF-8). So [`Mapped::of`] is an `unsafe fn` whose
//! caller promises that; there are two, each with its reason: the state files (replaced only
//! by rename, under the lock the switch holds) and a generation's manifest (immutable: a Nix
//! store path, an image). Truncating a mapped file makes reads past its new end raise SIGBUS,
//! which ends the switch like a SIGKILL (which a switch survives at every instant).
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use anyhow::{bail, Context as _, Result};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use nix::sys::stat::{fstat, SFlag};

/// A regular file's bytes, mapped (or empty).
pub(crate) struct Mapped {
    /// Start and length of the mapping; `None` for an empty file (`mmap` refuses length 0).
    map: Option<(NonNull<c_void>, NonZeroUsize)>,
}

impl Mapped {
    /// Maps the whole file open at `fd`; `shown` names it in errors.
    ///
    /// # Safety
    /// Nobody may modify the file in place (write to it, truncate it) while the result or
    /// anything borrowed from it lives. Replacing it by rename is fine: the mapping keeps the
    /// old inode.
    pub(crate) unsafe fn of(fd: &OwnedFd, shown: &str) -> Result<Mapped> {
        let st = fstat(fd).with_context(|| format!("cannot stat {shown}"))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            bail!("{shown} should be a regular file");
        }
        let len = usize::try_from(st.st_size).with_context(|| format!("{shown}: bad size"))?;
        let Some(len) = NonZeroUsize::new(len) else {
            return Ok(Mapped { map: None });
        };
        // SAFETY: a fresh private read-only mapping of an open file; no Rust object aliases it.
        // MAP_POPULATE maps every page now, in one call, instead of a fault per page later.
        let ptr = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_POPULATE,
                fd,
                0,
            )
        }
        .with_context(|| format!("cannot map {shown}"))?;
        Ok(Mapped {
            map: Some((ptr, len)),
        })
    }

    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self.map {
            // SAFETY: `ptr` is a live mapping of `len` readable bytes until `drop`, and the
            // slice cannot outlive `self`. See the module comment for why the bytes do not
            // change under us.
            Some((ptr, len)) => unsafe {
                std::slice::from_raw_parts(ptr.as_ptr().cast::<u8>(), len.get())
            },
            None => &[],
        }
    }

    /// The bytes as text; `None` if they are not UTF-8.
    pub(crate) fn text(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes()).ok()
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if let Some((ptr, len)) = self.map.take() {
            // SAFETY: the mapping was made by `of` and nothing borrows it any more (`&self`
            // borrows ended before drop).
            let _ = unsafe { munmap(ptr, len.get()) };
        }
    }
}

/// Maps a file holding `bytes`, for tests; the file and its directory (one per call, so that
/// tests on other threads never share it) are gone before it returns.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn map(bytes: &[u8]) -> Mapped {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("etcflip-mapped-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("f{}", bytes.len()));
    std::fs::write(&p, bytes).unwrap();
    let fd = OwnedFd::from(std::fs::File::open(&p).unwrap());
    // SAFETY: the test's own file, not written again.
    let m = unsafe { Mapped::of(&fd, "f") }.unwrap();
    std::fs::remove_file(&p).unwrap();
    std::fs::remove_dir(&dir).unwrap();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_whole_files_empty_ones_too() {
        assert_eq!(map(b"").bytes(), b"");
        assert_eq!(map(b"").text(), Some(""));
        let big: Vec<u8> = (0..10_000u32)
            .flat_map(|i| i.to_string().into_bytes())
            .collect();
        assert_eq!(map(&big).bytes(), &big[..]);
        assert_eq!(map(b"\xff\xfe").text(), None);
    }

    #[test]
    fn refuses_directories() {
        let fd = OwnedFd::from(std::fs::File::open("/").unwrap());
        // SAFETY: nothing is mapped (a directory is refused).
        let err = unsafe { Mapped::of(&fd, "/") }.err().unwrap();
        assert!(format!("{err:#}").contains("regular file"), "{err:#}");
    }
}
