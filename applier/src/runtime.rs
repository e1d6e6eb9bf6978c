//! Runtime copies: `copy` entries whose `source` lies outside the store (`/run/secrets/x`,
//! mode 0400), read at switch time **under the root** (with `--root DIR`, `DIR/run/secrets/x`;
//! links are resolved inside the root) and copied again by every switch whose source content
//! differs from the copy. The manifest has no hash for them: the hash of what a switch
//! installs is recorded in the state (`runtime` in the journal, then `applied.json`), so that
//! the copy stays ours (and an edited one foreign) across switches and interruptions.
//!
//! A missing (or unreadable) source never blocks the rest: the entry is left as it is (no
//! partial file), named in the output, and the switch is *incomplete* (exit 1).

use std::collections::BTreeMap;

use anyhow::Result;

use crate::manifest::Manifest;
use crate::rootfs::{sha256_bytes, Root};

/// What a runtime copy's source held when the switch read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Its content and sha256.
    Read {
        /// The bytes to install: exactly what was hashed.
        content: Vec<u8>,
        /// Lowercase hex sha256 of `content`.
        sha256: String,
    },
    /// Not there, or not readable: why.
    Missing(String),
}

impl Source {
    /// The sha256 of what would be installed, if the source was read.
    pub fn sha256(&self) -> Option<&str> {
        match self {
            Source::Read { sha256, .. } => Some(sha256),
            Source::Missing(_) => None,
        }
    }
}

/// Sources by target.
pub type Sources = BTreeMap<String, Source>;

/// Reads the source of every runtime copy of `m` under the root.
pub fn read(root: &mut Root, m: &Manifest) -> Result<Sources> {
    let mut out = Sources::new();
    for e in m.entries.iter().filter(|e| e.is_runtime_copy()) {
        let source = e.source.as_deref().unwrap_or_default();
        let rel = source.trim_start_matches('/');
        let found = match root.read_in_root(rel) {
            Ok(Some(content)) => Source::Read {
                sha256: sha256_bytes(&content),
                content,
            },
            Ok(None) => Source::Missing(format!("its source {source} is missing")),
            Err(err) => Source::Missing(format!("its source {source} cannot be read: {err:#}")),
        };
        out.insert(e.target.to_string(), found);
    }
    Ok(out)
}

/// The runtime copies a switch leaves incomplete, one line each (`/etc/x: why`).
pub fn incomplete(sources: &Sources) -> Vec<String> {
    sources
        .iter()
        .filter_map(|(t, s)| match s {
            Source::Missing(why) => Some(format!("/etc/{t}: {why}; left as it was")),
            Source::Read { .. } => None,
        })
        .collect()
}

/// The hashes to record for the target generation's runtime copies: what this switch installs,
/// or, where the source is missing, what an earlier switch installed (still ours).
pub fn recorded(sources: &Sources, earlier: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    sources
        .iter()
        .filter_map(|(t, s)| {
            let sha = s
                .sha256()
                .map(str::to_owned)
                .or_else(|| earlier.get(t).cloned())?;
            Some((t.clone(), sha))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_hashes_keep_an_earlier_install_when_the_source_is_missing() {
        let mut sources = Sources::new();
        sources.insert(
            "a".into(),
            Source::Read {
                content: b"x".to_vec(),
                sha256: "new".into(),
            },
        );
        sources.insert("b".into(), Source::Missing("gone".into()));
        sources.insert("c".into(), Source::Missing("gone".into()));
        let earlier = BTreeMap::from([
            ("a".to_owned(), "old".to_owned()),
            ("b".to_owned(), "kept".to_owned()),
        ]);
        let got = recorded(&sources, &earlier);
        let want = BTreeMap::from([
            ("a".to_owned(), "new".to_owned()),
            ("b".to_owned(), "kept".to_owned()),
        ]);
        assert_eq!(got, want);
        assert_eq!(
            incomplete(&sources),
            [
                "/etc/b: gone; left as it was",
                "/etc/c: gone; left as it was"
            ]
        );
    }
}
