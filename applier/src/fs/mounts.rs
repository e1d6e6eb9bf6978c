//! Mount points below a root's `/etc`, from `/proc/self/mountinfo`: a directory that holds a
//! mount point anywhere below it is never moved or removed (moving it would carry the mount
//! along under a scratch name, and removing it would fail half-way, after the flip). A mount
//! on the path itself is seen by `statx` (see [`crate::fs::statx`]); this covers the ones below.
//!
//! Read once per switch. Without `/proc` (it is mounted before activation runs) nothing is
//! known and nothing is found. mountinfo reads bytes: Linux accepts any mount point name, and
//! /proc/self/mountinfo is text only by convention.

use std::os::unix::ffi::OsStringExt as _;

use crate::fs::Root;

/// Targets (relative to `/etc`) that are mount points, sorted. Paths are compared as bytes
/// (a root's name need not be UTF-8; targets are, and a mount point's that is not is named
/// lossily, which still places it below the right directories).
pub(crate) fn below_etc(root: &Root) -> Vec<String> {
    let Some(info) = mountinfo() else {
        return Vec::new();
    };
    let mut prefix = root.host_path().join("etc").into_os_string().into_vec();
    prefix.push(b'/');
    let mut out: Vec<String> = (info.split(|&b| b == b'\n'))
        .filter_map(|l| l.split(|&b| b == b' ').nth(4))
        .map(unescape)
        // A name that is not UTF-8 is kept, lossily: what matters is the directory it lies in,
        // which it names right (dropped, the directory would be moved with the mount in it).
        .filter_map(|m| {
            m.strip_prefix(&prefix[..])
                .map(|t| String::from_utf8_lossy(t).into_owned())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `/proc/self/mountinfo` as bytes (one mount point named in bytes that are not UTF-8, anywhere
/// on the host, would otherwise hide all of them), read into a buffer sized for it at once: a
/// /proc file says it is empty, and grown from nothing it took eight reads, each a pass of the
/// kernel over the mount table.
fn mountinfo() -> Option<Vec<u8>> {
    use std::io::Read as _;
    let mut info = Vec::with_capacity(1 << 16);
    let mut file = std::fs::File::open("/proc/self/mountinfo").ok()?;
    file.read_to_end(&mut info).ok()?;
    Some(info)
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` (octal).
fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_undone() {
        let cases = [
            ("/etc/a", "/etc/a"),
            ("/etc/with\\040space", "/etc/with space"),
            ("/etc/tab\\011x", "/etc/tab\tx"),
            ("/etc/back\\134slash", "/etc/back\\slash"),
            ("/etc/not\\8", "/etc/not\\8"),
            ("/etc/end\\04", "/etc/end\\04"),
        ];
        for (field, want) in cases {
            assert_eq!(unescape(field.as_bytes()), want.as_bytes(), "{field}");
        }
    }
}
