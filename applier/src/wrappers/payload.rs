//! The wrappers' payload in a generation (`GEN/wrappers/<program>`), checked in phase 1,
//! before anything is written: a generation whose wrappers do not match its manifest is
//! invalid (exit 2).
//!
//! Every payload is a copy of one binary with its own target in the placeholder, so the first
//! is hashed once (from the state its shared bytes leave) and each other one compared with it, and hashed from the state the first
//! left after the bytes they share ([`etcflip_format::wrapper::Reference`]): a hundred
//! wrappers of a megabyte cost one hash, a hundred comparisons and a hundred hashes of their
//! last pages, which matters at every boot, when `/run/wrappers` starts empty.

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use etcflip_format::errors::Invalid;
use etcflip_format::wrapper::Reference;

use super::plan::Want;

/// Checks the payload of every one of `wants` against the manifest; returns the first, from
/// which every wrapper is then written ([`Reference::parts`]: each payload was read once).
pub(crate) fn check(gen_host: &Path, wants: &[Want]) -> Result<Option<Reference>> {
    let Some(first) = wants.first() else {
        return Ok(None);
    };
    let bytes = read(gen_host, &first.program)?;
    let shown = |w: &Want| path(gen_host, &w.program).display().to_string();
    let invalid = |problems| Invalid::many(&format!("generation {}", gen_host.display()), problems);
    // The reference's own hash is the one its prefix state gives (its placeholder holds
    // exactly its target, so the copy it rebuilds is these bytes): one hash, not two.
    let reference = Reference::new(bytes, &first.source)
        .map_err(|why| invalid(vec![format!("{}: {why}", shown(first))]))?;
    if reference.sha256_of(&first.source) != first.sha256 {
        let problem = format!("{}: content does not match its sha256", shown(first));
        return Err(invalid(vec![problem]).into());
    }
    let mut problems = Vec::new();
    for w in &wants[1..] {
        let copy = read(gen_host, &w.program)?;
        // The copy is the reference with its target, whose hash the manifest must record.
        let why = match reference.alike(&copy, &w.source) {
            Err(why) => format!(" ({why})"),
            Ok(()) if reference.sha256_of(&w.source) != w.sha256 => String::new(),
            Ok(()) => continue,
        };
        problems.push(format!(
            "{}: content does not match its sha256{why}",
            shown(w)
        ));
    }
    if problems.is_empty() {
        return Ok(Some(reference));
    }
    Err(invalid(problems).into())
}

/// A wrapper's payload: a regular file, not followed if it is a link.
pub(crate) fn read(gen_host: &Path, program: &str) -> Result<Vec<u8>> {
    let path = path(gen_host, program);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| {
            Invalid::one(format!(
                "{}: cannot read this wrapper of the generation ({e})",
                path.display()
            ))
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        let why = format!("{}: not a regular file", path.display());
        return Err(Invalid::one(why).into());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}

/// Where a wrapper's payload lies in the generation.
pub(crate) fn path(gen_host: &Path, program: &str) -> PathBuf {
    gen_host
        .join(etcflip_format::wrappers::PAYLOAD_DIR)
        .join(program)
}
