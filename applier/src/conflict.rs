//! What a switch does with a path it must replace that it did not make (`--on-conflict`):
//! one policy for every domain (`/etc`'s paths, `/run/wrappers/bin`), here so that each may
//! use it without importing another.

use serde::Serialize;

/// What to do with paths that are not ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OnConflict {
    /// Refuse the whole switch; nothing is changed.
    #[default]
    Abort,
    /// Move the foreign path aside to a unique `<path>.etcflip-backup…`.
    Backup,
    /// Replace the foreign path.
    Overwrite,
}
