//! What counts as "ours": the claims that earlier generations (the applied one, any whose switch
//! was interrupted, or a legacy NixOS `/etc`) make on paths, and the test of a claim against
//! what is actually there.
//!
//! A path is ours only if some claim lists it **and** it still is what that claim made: a link
//! with exactly the recorded text, a file with the recorded sha256, a directory we manage.
//! Anything else is foreign, even at a path a manifest names.

use std::collections::BTreeMap;

use crate::fs::Node;
use crate::manifest::{Entry, Kind, Manifest, Str};

/// One way a path may be ours.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Claim<'a> {
    /// A symlink with exactly the text `<overlay>/<target>`, for the overlay with this index
    /// in [`Evidence`] (kept apart so that no per-entry link text is built).
    Overlay(usize),
    /// A symlink with exactly this text.
    Link(Str<'a>),
    /// A regular file with this sha256.
    Copy(Str<'a>),
    /// A regular file whose sha256, digested with the root's key, is this (runtime copies:
    /// see [`crate::etc::runtime::Key`]).
    Keyed(String),
    /// A managed directory.
    Dir,
    /// A file or link listed in a legacy `/etc/.clean` (NixOS recorded no hash).
    LegacyFile,
}

/// Claims by target (relative to `/etc`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Evidence<'a> {
    claims: BTreeMap<Str<'a>, Vec<Claim<'a>>>,
    overlays: Vec<Str<'a>>,
    key: Option<crate::etc::runtime::Key>,
}

impl<'a> Evidence<'a> {
    /// Adds every entry of a manifest.
    pub(crate) fn add_manifest(&mut self, m: &Manifest<'a>) {
        let ov = self.overlay_index(&m.overlay);
        if self.claims.is_empty() {
            // The common case, one manifest: entries are sorted, so build the map in bulk.
            self.claims = m
                .entries
                .iter()
                .filter_map(|e| Some((e.target.clone(), claims_of(ov, e)?)))
                .collect();
            return;
        }
        for e in &m.entries {
            for claim in claims_of(ov, e).into_iter().flatten() {
                self.add(e.target.clone(), claim);
            }
        }
    }

    /// The index of `overlay` in the overlay table, added if new.
    fn overlay_index(&mut self, overlay: &Str<'a>) -> usize {
        self.overlays
            .iter()
            .position(|o| o == overlay)
            .unwrap_or_else(|| {
                self.overlays.push(overlay.clone());
                self.overlays.len() - 1
            })
    }

    /// Adds the keyed digests of the runtime copies a switch installed (recorded in the
    /// state, not the manifest); `key` is the root's. Without a key they prove nothing.
    pub(crate) fn add_copies(
        &mut self,
        runtime: &BTreeMap<String, String>,
        key: Option<&crate::etc::runtime::Key>,
    ) {
        let Some(key) = key else {
            return;
        };
        self.key = Some(key.clone());
        for (target, digest) in runtime {
            self.add(Str::from(target.clone()), Claim::Keyed(digest.clone()));
        }
    }

    /// Adds every claim of `other`.
    pub(crate) fn merge(&mut self, other: Evidence<'a>) {
        if self.key.is_none() {
            self.key = other.key;
        }
        for (t, list) in other.claims {
            for c in list {
                let c = match c {
                    Claim::Overlay(i) => Claim::Overlay(self.overlay_index(&other.overlays[i])),
                    c => c,
                };
                self.add(t.clone(), c);
            }
        }
    }

    /// Adds a claim.
    pub(crate) fn add(&mut self, target: Str<'a>, claim: Claim<'a>) {
        let list = self.claims.entry(target).or_default();
        if !list.contains(&claim) {
            list.push(claim);
        }
    }

    /// Every claimed target, sorted.
    pub(crate) fn targets(&self) -> impl Iterator<Item = &str> {
        self.claims.keys().map(Str::as_str)
    }

    /// Whether what is at `target` is ours.
    pub(crate) fn is_ours(&self, target: &str, node: &Node) -> bool {
        self.claims
            .get(target)
            .is_some_and(|list| list.iter().any(|c| self.matches(c, target, node)))
    }

    /// Whether `target` is claimed as a managed directory.
    pub(crate) fn is_dir(&self, target: &str) -> bool {
        self.claims
            .get(target)
            .is_some_and(|list| list.contains(&Claim::Dir))
    }
}

/// The claims a manifest entry makes on its path: what the entry makes, and for every other
/// kind also the overlay link, which a switch puts there before its flip when the path changes
/// kind (a switch stopped right then leaves it; it is ours by construction).
fn claims_of<'a>(overlay: usize, e: &Entry<'a>) -> Option<Vec<Claim<'a>>> {
    let own = match e.kind {
        Kind::Symlink => return Some(vec![Claim::Overlay(overlay)]),
        Kind::DirectSymlink => Claim::Link(e.source.clone()?),
        // A runtime copy's hash is in the state: see `add_copies`.
        Kind::Copy if e.is_runtime_copy() => return Some(vec![Claim::Overlay(overlay)]),
        Kind::Copy => Claim::Copy(e.sha256.clone()?),
        Kind::Dir => Claim::Dir,
    };
    Some(vec![own, Claim::Overlay(overlay)])
}

impl Evidence<'_> {
    fn matches(&self, claim: &Claim, target: &str, node: &Node) -> bool {
        match (claim, node) {
            (Claim::Overlay(i), Node::Link(have)) => {
                crate::manifest::is_overlay_link(have, &self.overlays[*i], target)
            }
            (Claim::Link(want), Node::Link(have)) => want.as_str() == have.as_str(),
            (Claim::Copy(want), Node::File(f)) => want.as_str() == f.sha256.as_str(),
            (Claim::Keyed(want), Node::File(f)) => self
                .key
                .as_ref()
                .is_some_and(|k| k.digest(&f.sha256) == *want),
            (Claim::Dir, Node::Dir(_)) | (Claim::LegacyFile, Node::File(_) | Node::Link(_)) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::node::{FileInfo, Meta};
    use crate::manifest::{Id, Mode};

    fn file(sha: &str) -> Node {
        Node::File(FileInfo {
            meta: Meta {
                mode: 0o644,
                uid: 0,
                gid: 0,
                dev: 1,
                mount: false,
            },
            sha256: sha.into(),
        })
    }

    #[test]
    fn ours_means_listed_and_unchanged() {
        let mut m = Manifest::empty("/etc/static");
        m.entries.push(Entry {
            target: "a".into(),
            kind: Kind::Symlink,
            source: Some("/nix/store/a".into()),
            mode: None,
            uid: None,
            gid: None,
            sha256: None,
        });
        m.entries.push(Entry {
            target: "c".into(),
            kind: Kind::Copy,
            source: None,
            mode: Some(Mode(0o440)),
            uid: Some(Id::Num(0)),
            gid: Some(Id::Num(0)),
            sha256: Some("h1".into()),
        });
        let mut ev = Evidence::default();
        ev.add_manifest(&m);
        assert!(ev.is_ours("a", &Node::Link("/etc/static/a".into())));
        // The link text is compared exactly: no resolution, no prefix matching.
        assert!(!ev.is_ours("a", &Node::Link("/etc/static/a/".into())));
        assert!(!ev.is_ours("a", &Node::Link("/usr/bin/bash".into())));
        assert!(!ev.is_ours("a", &file("h1")));
        assert!(ev.is_ours("c", &file("h1")));
        assert!(!ev.is_ours("c", &file("edited")));
        assert!(!ev.is_ours("unlisted", &Node::Link("/etc/static/unlisted".into())));
    }
}
