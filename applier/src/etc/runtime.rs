//! Runtime copies: `copy` entries whose `source` lies outside the store (`/run/secrets/x`,
//! mode 0400), read at switch time **under the root** (with `--root DIR`, `DIR/run/secrets/x`;
//! links are resolved inside the root) and copied again by every switch whose source content
//! differs from the copy. The manifest has no hash for them: what a switch installs is
//! recorded in the state (`runtime` in the journal, then `applied.json`), so that the copy
//! stays ours (and an edited one foreign) across switches and interruptions. It is recorded as
//! a digest keyed with the root's own secret ([`Key`]): the state files are world-readable,
//! and a plain sha256 of a short secret can be brute-forced.
//!
//! A missing (or unreadable) source never blocks the rest: the entry is left as it is (no
//! partial file), named in the output, and the switch is *incomplete* (exit 1).

use std::collections::BTreeMap;

use anyhow::{bail, Context as _, Result};

use crate::fs::{sha256_bytes, Node, Owner, Root};
use crate::manifest::Manifest;
use crate::txn::state::state_dir;

/// What a runtime copy's source held when the switch read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
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
    pub(crate) fn sha256(&self) -> Option<&str> {
        match self {
            Source::Read { sha256, .. } => Some(sha256),
            Source::Missing(_) => None,
        }
    }
}

/// Sources by target.
pub(crate) type Sources = BTreeMap<String, Source>;

/// Reads the source of every runtime copy of `m` under the root.
pub(crate) fn read(root: &mut Root, m: &Manifest) -> Sources {
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
    out
}

/// The runtime copies a switch leaves incomplete, one line each (`/etc/x: why`).
pub(crate) fn incomplete(sources: &Sources) -> Vec<String> {
    sources
        .iter()
        .filter_map(|(t, s)| match s {
            Source::Missing(why) => Some(format!("/etc/{t}: {why}; left as it was")),
            Source::Read { .. } => None,
        })
        .collect()
}

/// Whether what the state records of `m`'s runtime copies can be keyed: it has none, or the
/// root has a key (made by the first switch that writes one, never by a refused or no-op one).
pub(crate) fn keyed(m: &Manifest, key: Option<&Key>) -> bool {
    key.is_some()
        || !m
            .entries
            .iter()
            .any(crate::manifest::Entry::is_runtime_copy)
}

/// The root's secret for runtime-copy digests: `/etc/.etcflip/key`, 32 random bytes, mode
/// 0600, made by the first switch that needs it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)") // never printed
    }
}

/// The key file, in the state directory.
pub(crate) const KEY_FILE: &str = "key";

impl Key {
    /// The keyed digest of a content hash.
    pub(crate) fn digest(&self, sha256: &str) -> String {
        let mut bytes = self.0.clone();
        bytes.extend_from_slice(sha256.as_bytes());
        sha256_bytes(&bytes)
    }

    /// The root's key, if it has one and this process may read it: without it a dry run or
    /// `verify` simply proves nothing about runtime copies.
    pub(crate) fn read(root: &mut Root) -> Option<Key> {
        Key::read_to_write(root).ok().flatten()
    }

    /// The root's key for a switch that writes: an existing key must be readable (it is
    /// never replaced: the recorded digests depend on it).
    pub(crate) fn read_to_write(root: &mut Root) -> Result<Option<Key>> {
        let rel = format!("{}/{KEY_FILE}", state_dir());
        match root.node_with(&rel, false)? {
            Node::Absent => Ok(None),
            Node::File(_) => {
                let bytes = root.read(&rel).with_context(|| {
                    "the runtime-copy key cannot be read (switch as root)".to_owned()
                })?;
                Ok(Some(Key(bytes)).filter(|k| !k.0.is_empty()))
            }
            other => bail!(
                "{} should be a regular file, found {other:?}",
                root.show(&rel)
            ),
        }
    }

    /// The root's key, made now (atomically, 0600) if it has none. Called under the lock.
    pub(crate) fn read_or_make(root: &mut Root) -> Result<Key> {
        if let Some(key) = Key::read_to_write(root)? {
            return Ok(key);
        }
        let mut bytes = vec![0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)
            .context("cannot read /dev/urandom for the runtime-copy key")?;
        let rel = format!("{}/{KEY_FILE}", state_dir());
        root.atomic_write_as(&rel, &[&bytes], 0o600, Owner::current())?;
        Ok(Key(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_names_every_missing_source() {
        let mut sources = Sources::new();
        sources.insert(
            "a".into(),
            Source::Read {
                content: b"x".to_vec(),
                sha256: "new".into(),
            },
        );
        sources.insert("b".into(), Source::Missing("gone".into()));
        assert_eq!(incomplete(&sources), ["/etc/b: gone; left as it was"]);
    }

    #[test]
    fn digests_depend_on_the_key_and_never_equal_the_plain_hash() {
        let (k1, k2) = (Key(vec![1; 32]), Key(vec![2; 32]));
        let sha = sha256_bytes(b"1234");
        assert_ne!(k1.digest(&sha), sha);
        assert_ne!(k1.digest(&sha), k2.digest(&sha));
        assert_eq!(k1.digest(&sha), k1.digest(&sha));
        assert_eq!(format!("{k1:?}"), "Key(..)");
    }
}
