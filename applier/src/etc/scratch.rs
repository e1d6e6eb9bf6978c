//! Scratch names: where a switch stages, relinks and builds beside a target before the flip
//! (see `apply/mod.rs`). They are derived from the target, so a rerun finds a killed run's
//! leftovers, and contain `.etcflip-`, which targets may not contain; `observe` and the sweep
//! recognise them.

use crate::fs::{join, sha256_bytes, split};

/// The scratch name for `target` and a purpose (`stage`, `link`, `swap`), relative to the root.
pub(crate) fn scratch(target: &str, purpose: &str) -> String {
    let (parent, name) = split(target);
    let hash = &sha256_bytes(name.as_bytes())[..16];
    format!(
        "etc/{}",
        join(parent, &format!(".etcflip-{purpose}-{hash}"))
    )
}

pub(crate) const PURPOSES: [&str; 3] = ["stage", "link", "swap"];

/// Whether `name` is one of etcflip's scratch names (what [`scratch`] and the flip make, and
/// what a killed run's rerun sweeps). Backups (`.etcflip-backup…`) are not: they are the
/// user's, and never removed.
pub(crate) fn is_scratch(name: &str) -> bool {
    name == crate::txn::flip::SCRATCH
        || PURPOSES
            .iter()
            .any(|p| name.starts_with(&format!(".etcflip-{p}-")))
}
