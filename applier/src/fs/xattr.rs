//! `security.capability` on an open file: the one extended attribute the applier reads and
//! writes (a capability wrapper's file capabilities, `applier/src/wrappers/`).
//!
//! Neither std nor nix wraps `fgetxattr`/`fsetxattr`; this file is the audited place that calls
//! libc for them. Both act on a descriptor the caller opened without following links.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd as _, BorrowedFd};

use nix::errno::Errno;

const NAME: &std::ffi::CStr = c"security.capability";

/// The file's `security.capability` value; `None` when it has none.
pub(crate) fn capability(fd: BorrowedFd<'_>) -> Result<Option<Vec<u8>>, Errno> {
    // Revision 3, the longest, is 24 bytes.
    let mut buf = [0u8; 64];
    // SAFETY: `NAME` is NUL-terminated and static, `buf` is writable for `buf.len()` bytes and
    // the kernel writes at most that many; `fd` is an open descriptor borrowed for the call.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            NAME.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    match usize::try_from(n) {
        Ok(n) => Ok(Some(buf[..n].to_vec())),
        Err(_) => match Errno::last() {
            Errno::ENODATA => Ok(None),
            e => Err(e),
        },
    }
}

/// Gives the file `value` as its `security.capability` (after its owner is set: a chown
/// clears it).
pub(crate) fn set_capability(fd: BorrowedFd<'_>, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: `NAME` is NUL-terminated and static, `value` is readable for `value.len()`
    // bytes; `fd` is an open descriptor borrowed for the call.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            NAME.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(rc).map(drop)
}
