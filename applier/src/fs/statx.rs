//! `statx(2)` of a name in a directory, without following it: the one stat call of the
//! applier. Besides what `fstatat` gives it tells whether the path is a **mount point**
//! (`STATX_ATTR_MOUNT_ROOT`, Linux ≥ 5.8), which a switch must never rename, remove or replace
//! (a bind-mounted `/etc/resolv.conf` under nixos-enter, a tmpfs on a managed directory), and
//! it carries the timestamps in nanoseconds that a `etc/stamps.rs` fingerprint records.
//!
//! nix (the syscall layer) has no `statx`; this file is the audited place that calls libc.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd as _, BorrowedFd};

use nix::errno::Errno;

/// What `statx` says about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device (`makedev(major, minor)`, as `st_dev`).
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, nanoseconds since the epoch.
    pub mtime: i128,
    /// Last status change, nanoseconds since the epoch.
    pub ctime: i128,
    /// The path is the root of a mount (false where the kernel cannot tell).
    pub mount_root: bool,
}

fn nanos(t: libc::statx_timestamp) -> i128 {
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

/// `statx(dirfd, name, AT_SYMLINK_NOFOLLOW)`.
pub(crate) fn statx_at(dirfd: BorrowedFd<'_>, name: &str) -> Result<Stat, Errno> {
    let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
    statx_name(dirfd, &name)
}

/// [`statx_at`] for a name of any bytes (as a directory listing gives it).
pub(crate) fn statx_name(dirfd: BorrowedFd<'_>, name: &std::ffi::CStr) -> Result<Stat, Errno> {
    let mut buf = std::mem::MaybeUninit::<libc::statx>::zeroed();
    let mask = libc::STATX_BASIC_STATS;
    // SAFETY: `name` is a NUL-terminated string that outlives the call, `buf` is a writable
    // statx buffer of the right size, and `dirfd` is an open descriptor borrowed for the call.
    // The kernel writes only into `buf`.
    let rc = unsafe {
        libc::statx(
            dirfd.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            mask,
            buf.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(Errno::last());
    }
    // SAFETY: statx returned 0, so the kernel filled the buffer (it was zeroed before, so
    // fields outside the returned mask are 0, never uninitialised).
    let st = unsafe { buf.assume_init() };
    let mount_flag = u64::from(libc::STATX_ATTR_MOUNT_ROOT.unsigned_abs());
    Ok(Stat {
        mode: u32::from(st.stx_mode),
        uid: st.stx_uid,
        gid: st.stx_gid,
        dev: libc::makedev(st.stx_dev_major, st.stx_dev_minor),
        ino: st.stx_ino,
        size: st.stx_size,
        mtime: nanos(st.stx_mtime),
        ctime: nanos(st.stx_ctime),
        mount_root: st.stx_attributes_mask & mount_flag != 0 && st.stx_attributes & mount_flag != 0,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::fd::AsFd as _;

    #[test]
    fn the_root_of_proc_is_a_mount_point_and_a_plain_directory_is_not() {
        let slash = std::fs::File::open("/").unwrap();
        // /proc is a mount on every Linux system these tests run on.
        assert!(statx_at(slash.as_fd(), "proc").unwrap().mount_root);
        let tmp = std::env::temp_dir().join(format!("etcflip-statx-{}", std::process::id()));
        std::fs::create_dir_all(tmp.join("d")).unwrap();
        let dir = std::fs::File::open(&tmp).unwrap();
        let st = statx_at(dir.as_fd(), "d").unwrap();
        assert!(!st.mount_root);
        assert_eq!(st.mode & 0o170_000, 0o040_000);
        assert!(st.mtime > 0 && st.ctime > 0);
        assert_eq!(statx_at(dir.as_fd(), "missing"), Err(Errno::ENOENT));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
