//! What a switch does with a path it must replace that it did not make (`--on-conflict`):
//! one policy for every domain (`/etc`'s paths, `/run/wrappers/bin`), here so that each may
//! use it without importing another.

use anyhow::{bail, Result};
use serde::Serialize;

use crate::fs::{join, sha256_bytes, split, Root};

/// What to do with paths that are not ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OnConflict {
    /// Refuse the whole switch; nothing is changed.
    Abort,
    /// Move the foreign path aside to a unique `<path>.etcflip-backup…`.
    Backup,
    /// Replace the foreign path.
    Overwrite,
}

/// The stem of a backup's name (`--on-conflict backup`).
pub(crate) const BACKUP: &str = "backup";

/// Tries `<path>.etcflip-<stem>`, then `.1`, `.2`… (see [`aside_file_name`]) until `put`
/// succeeds: never overwrites an earlier one. `stem` is [`BACKUP`] for what is kept.
pub(crate) fn backup_name(
    root: &mut Root,
    at: &str,
    stem: &str,
    mut put: impl FnMut(&mut Root, &str) -> Result<bool>,
) -> Result<()> {
    let (parent, name) = split(at);
    for n in 0..10_000u32 {
        if put(root, &join(parent, &aside_file_name(name, stem, n)))? {
            return Ok(());
        }
    }
    bail!("no free name beside {} for what was there", root.show(at))
}

/// The `n`th name beside the file name `name`: `<name>.etcflip-<stem>`, then
/// `<name>.etcflip-<stem>.<n>`. A name too long for that within `NAME_MAX` (255 bytes) is cut
/// at a character boundary and marked with a hash of the whole name (`<cut>~<hash>…`), so the
/// backup, which comes after the flip, can never fail for its length.
pub(crate) fn aside_file_name(name: &str, stem: &str, n: u32) -> String {
    let suffix = if n == 0 {
        format!(".etcflip-{stem}")
    } else {
        format!(".etcflip-{stem}.{n}")
    };
    if name.len() + suffix.len() <= crate::manifest::MAX_NAME {
        return format!("{name}{suffix}");
    }
    let hash = &sha256_bytes(name.as_bytes())[..12];
    let mut cut = crate::manifest::MAX_NAME - suffix.len() - hash.len() - 1;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{hash}{suffix}", &name[..cut])
}

#[cfg(test)]
mod tests {
    use super::{aside_file_name, BACKUP};

    fn backup_file_name(name: &str, n: u32) -> String {
        aside_file_name(name, BACKUP, n)
    }

    #[test]
    fn backup_names_always_fit_and_stay_distinct() {
        let long = "n".repeat(250);
        let wide = "é".repeat(120); // 240 bytes, two per character
        let cases: [(&str, u32, Option<&str>); 4] = [
            ("motd", 0, Some("motd.etcflip-backup")),
            ("motd", 3, Some("motd.etcflip-backup.3")),
            (&long, 0, None),
            (&wide, 12, None),
        ];
        for (name, n, want) in cases {
            let got = backup_file_name(name, n);
            assert!(got.len() <= 255, "{got} is {} bytes", got.len());
            assert!(got.contains(".etcflip-backup"), "{got}");
            if let Some(want) = want {
                assert_eq!(got, want);
            } else {
                assert!(got.contains('~'), "a cut name is marked: {got}");
            }
        }
        assert_ne!(backup_file_name(&long, 0), backup_file_name(&long, 1));
        let other = format!("{}m", "n".repeat(249));
        assert_ne!(
            backup_file_name(&long, 0),
            backup_file_name(&other, 0),
            "names cut to the same prefix differ by their hash"
        );
    }
}
