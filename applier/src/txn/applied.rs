//! `applied.json` read by its head and its size alone, not its manifest: what a boot on an
//! image that holds the generation checks (`applier/src/boot/mod.rs`), at the same cost
//! whatever the manifest's size.

use anyhow::Result;

use super::state::{head_view, state_dir, APPLIED};
use crate::fs::Root;

/// Whether `applied.json` records exactly `generation` (as the root sees it) with a manifest of
/// `manifest_len` bytes and nothing pending or held, read by its head and its size alone (not
/// its manifest): what a boot on an image that holds the generation checks, at the same cost
/// whatever the manifest's size. The generation being a store path, immutable, its path and
/// size stand for its bytes.
pub(crate) fn applied_is(root: &mut Root, generation: &str, manifest_len: u64) -> Result<bool> {
    let rel = format!("{}/{APPLIED}", state_dir());
    if !matches!(root.node_with(&rel, false)?, crate::fs::Node::File(_)) {
        return Ok(false);
    }
    let file = std::fs::File::from(root.open_file(&rel)?);
    let ends = crate::fs::Ends::of(&file, (1 << 16, 2), &root.show(&rel))?;
    let key = b"\"manifest\":";
    let Some(at) = memchr::memmem::find(&ends.head, key) else {
        return Ok(false);
    };
    let head = &ends.head[..at + key.len()];
    // The manifest and the record's closing `}\n` fill the rest: nothing pending or held
    // follows it.
    let whole = u64::try_from(head.len()).unwrap_or(u64::MAX) + manifest_len + 2;
    if whole != ends.len || ends.tail != b"}\n" {
        return Ok(false);
    }
    Ok(head_view(head).is_some_and(|v| v.generation == generation && v.runtime.is_empty()))
}
