//! The flip: the one `rename(2)` that switches what readers see, from one generation to the
//! next. A new link is made beside the flip point under [`SCRATCH`], then renamed over it:
//! the path never goes missing, and a reader resolves the old target or the new one.

use anyhow::{Context as _, Result};

use crate::fs::{join, split, Root};

/// The name the new link has, beside the flip point, until the rename. A killed flip leaves
/// it behind; the next switch removes it.
pub(crate) const SCRATCH: &str = ".etcflip-flip";

/// Points the link at `at` (absolute in the root, such as `/etc/static`) to `to`, with one
/// rename; its parent directories are made if missing.
pub(crate) fn flip(root: &mut Root, at: &str, to: &str) -> Result<()> {
    let rel = at.trim_start_matches('/');
    let (parent, _) = split(rel);
    root.make_dirs(parent)?;
    let tmp = join(parent, SCRATCH);
    root.remove_tree_if_present(&tmp)?;
    root.symlink(to, &tmp)?;
    root.rename(&tmp, rel)
        .with_context(|| format!("the flip of {at} failed; nothing visible changed"))
}

/// Removes what a flip at `at` killed between its link and its rename left behind.
pub(crate) fn sweep(root: &mut Root, at: &str) -> Result<()> {
    let (parent, _) = split(at.trim_start_matches('/'));
    root.remove_tree_if_present(&join(parent, SCRATCH))
}
