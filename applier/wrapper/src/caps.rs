//! A capability wrapper's duty: the capabilities in its own file's `security.capability`
//! attribute go into the inheritable and ambient sets, so that they survive the `execve` of the
//! target (which has no file capabilities of its own). Every one of them, up to and including
//! the last capability the kernel knows (NixOS's wrapper stops one short), and never
//! `CAP_SETPCAP`. Only what the process holds in its permitted set is raised: run under
//! `no_new_privs`, or from a `nosuid` mount, the file grants nothing and the target runs
//! unprivileged, as it would without a wrapper.
//!
//! This file is one of the audited `unsafe` spots (see the workspace's `Cargo.toml`): the
//! system calls `fgetxattr`, `capget`, `capset` and `prctl(PR_CAP_AMBIENT)`, which neither
//! `std` nor `nix` wraps. Ambient capabilities are inherited by every child of the target.

#![allow(unsafe_code)]

use std::io;

use etcflip_format::caps::{Sets as FileSets, SETPCAP as CAP_SETPCAP};

/// The capabilities a `security.capability` value grants (permitted | inheritable), as a
/// 64-bit mask; an error for a value the kernel would not accept either.
pub(crate) fn granted(value: &[u8]) -> Result<u64, String> {
    FileSets::from_xattr(value).map(|s| s.permitted | s.inheritable)
}

/// The capabilities to raise: `granted` and held (`permitted`), up to `last_cap`, without
/// `CAP_SETPCAP`.
pub(crate) fn to_raise(granted: u64, permitted: u64, last_cap: u32) -> Vec<u32> {
    (0..=last_cap.min(63))
        .filter(|&c| c != CAP_SETPCAP && (granted & permitted) >> c & 1 == 1)
        .collect()
}

/// Raises this process's file capabilities into its inheritable and ambient sets; nothing when
/// its file has none, or none the kernel could grant.
pub(crate) fn raise() -> io::Result<()> {
    let Some(value) = capability_attribute()? else {
        return Ok(());
    };
    let granted = granted(&value).map_err(io::Error::other)?;
    let mut sets = capget()?;
    let permitted = u64::from(sets[0].permitted) | u64::from(sets[1].permitted) << 32;
    let raise = to_raise(granted, permitted, last_cap()?);
    for &c in &raise {
        sets[(c / 32) as usize].inheritable |= 1 << (c % 32);
    }
    capset(&sets)?;
    for &c in &raise {
        // SAFETY: prctl with integer arguments only; no memory is passed.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                libc::c_ulong::from(c),
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The last capability the kernel knows.
fn last_cap() -> io::Result<u32> {
    let text = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::other(format!("cap_last_cap reads {text:?}")))
}

/// The `security.capability` attribute of this process's own file, if it has one the kernel
/// could grant. Read by path, through `/proc/self/exe`: a wrapper is often execute-only (NixOS's
/// default is `u+rx,g+x,o+x`), and opening it would need read permission. Nothing is raised
/// when there is no attribute, no `/proc`, or a revision-3 attribute whose root user this user
/// namespace does not map (`EOVERFLOW`: the kernel granted nothing either).
fn capability_attribute() -> io::Result<Option<Vec<u8>>> {
    let mut buf = [0u8; 64];
    // SAFETY: both strings are NUL-terminated and `buf` is valid for `buf.len()` bytes; the
    // kernel writes at most that many.
    let n = unsafe {
        libc::getxattr(
            c"/proc/self/exe".as_ptr(),
            c"security.capability".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    match usize::try_from(n) {
        Ok(n) => Ok(Some(buf[..n].to_vec())),
        Err(_) => match io::Error::last_os_error() {
            e if matches!(
                e.raw_os_error(),
                Some(libc::ENODATA | libc::EOPNOTSUPP | libc::EOVERFLOW | libc::ENOENT)
            ) =>
            {
                Ok(None)
            }
            e => Err(e),
        },
    }
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Sets {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, as two `Sets`.
const VERSION_3: u32 = 0x2008_0522;

fn capget() -> io::Result<[Sets; 2]> {
    let mut sets = [Sets::default(); 2];
    capability_call(libc::SYS_capget, &mut sets)?;
    Ok(sets)
}

fn capset(sets: &[Sets; 2]) -> io::Result<()> {
    capability_call(libc::SYS_capset, &mut sets.clone())
}

/// `capget` or `capset` (`call`) of this process's sets, version 3.
fn capability_call(call: libc::c_long, sets: &mut [Sets; 2]) -> io::Result<()> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    // SAFETY: with version 3 both calls read or write exactly two `Sets`, which `sets` holds,
    // and the header, which lives until the call returns.
    let rc = unsafe { libc::syscall(call, std::ptr::from_mut(&mut header), sets.as_mut_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REVISION_1: u32 = 0x0100_0000;
    const REVISION_2: u32 = 0x0200_0000;
    const REVISION_3: u32 = 0x0300_0000;

    fn value(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn attribute_values_of_every_revision_read_as_the_kernel_reads_them() {
        // cap_net_raw (13) and cap_sys_admin (21) permitted, cap_chown (0) inheritable; in
        // revisions 2 and 3 also cap_audit_read (37, bit 5 of the second word).
        let cases: [(Vec<u8>, Result<u64, &str>); 7] = [
            (
                value(&[REVISION_1 | 1, 1 << 13 | 1 << 21, 1]),
                Ok(1 << 13 | 1 << 21 | 1),
            ),
            (
                value(&[REVISION_2 | 1, 1 << 13, 1, 1 << 5, 0]),
                Ok(1 << 13 | 1 | 1 << 37),
            ),
            (
                value(&[REVISION_3, 1 << 13, 0, 0, 1 << 5, 0]),
                Ok(1 << 13 | 1 << 37),
            ),
            (value(&[REVISION_2, 1 << 13]), Err("not 20")),
            (value(&[REVISION_3, 1, 0, 0, 0]), Err("not 24")),
            (value(&[0x0400_0000, 1, 0]), Err("unknown revision")),
            (vec![1, 2], Err("shorter than its header")),
        ];
        for (v, want) in cases {
            match (granted(&v), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{v:?}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{got}"),
                (got, want) => panic!("{v:?}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn every_granted_and_held_capability_is_raised_up_to_the_last_but_setpcap() {
        let all = u64::MAX;
        // (granted, permitted, last_cap, raised)
        let cases: [(u64, u64, u32, &[u32]); 5] = [
            (1 << 13, all, 40, &[13]),
            (1 << 40 | 1 << 13, all, 40, &[13, 40]),
            (1 << 41, all, 40, &[]),
            (1 << 8 | 1 << 12, all, 40, &[12]),
            (1 << 13 | 1 << 21, 1 << 21, 40, &[21]),
        ];
        for (granted, permitted, last, want) in cases {
            assert_eq!(to_raise(granted, permitted, last), want, "{granted:#x}");
        }
    }
}
