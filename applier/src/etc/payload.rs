//! The `/etc` payload of a generation (`GEN/etc`), checked against its manifest before
//! anything is written: copies and text files by sha256, direct links by their text.

use std::path::Path;

use crate::fs::sha256_bytes;
use crate::manifest::{Kind, Manifest};

/// Every way the payload differs from `m` (for
/// [`crate::txn::generation::Generation::parse`]).
pub(crate) fn payload_problems(host: &Path, m: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    let etc = host.join("etc");
    for e in &m.entries {
        if e.sha256.is_none() && e.kind != Kind::DirectSymlink {
            continue; // nothing recorded to check (links to sources, directories)
        }
        let p = etc.join(e.target.as_str());
        match (e.kind, &e.sha256) {
            (Kind::Copy | Kind::Symlink, Some(want)) => match crate::fs::read_regular(&p) {
                Ok(bytes) if sha256_bytes(&bytes) == want.as_str() => {}
                Ok(_) => out.push(format!(
                    "{}: content does not match its sha256",
                    p.display()
                )),
                Err(err) => out.push(format!("cannot read the payload: {err:#}")),
            },
            (Kind::DirectSymlink, _) => match std::fs::read_link(&p) {
                Ok(t) if t.to_str().is_some() && t.to_str() == e.source.as_deref() => {}
                Ok(t) => out.push(format!(
                    "{}: links to {}, the manifest says {}",
                    p.display(),
                    t.display(),
                    e.source.as_deref().unwrap_or("")
                )),
                Err(err) => out.push(format!("{}: not a link ({err})", p.display())),
            },
            _ => {}
        }
    }
    out
}
