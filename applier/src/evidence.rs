//! What counts as "ours": the claims that earlier generations (the applied one, any whose switch
//! was interrupted, or a legacy NixOS `/etc`) make on paths, and the test of a claim against
//! what is actually there.
//!
//! A path is ours only if some claim lists it **and** it still is what that claim made: a link
//! with exactly the recorded text, a file with the recorded sha256, a directory we manage.
//! Anything else is foreign, even at a path a manifest names.

use std::collections::BTreeMap;

use crate::manifest::{overlay_link, Kind, Manifest};
use crate::rootfs::Node;

/// One way a path may be ours.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Claim {
    /// A symlink with exactly this text.
    Link(String),
    /// A regular file with this sha256.
    Copy(String),
    /// A managed directory.
    Dir,
    /// A file or link listed in a legacy `/etc/.clean` (NixOS recorded no hash).
    LegacyFile,
}

/// Claims by target (relative to `/etc`).
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    claims: BTreeMap<String, Vec<Claim>>,
}

impl Evidence {
    /// Adds every entry of a manifest.
    pub fn add_manifest(&mut self, m: &Manifest) {
        for e in &m.entries {
            let claim = match e.kind {
                Kind::Symlink => Claim::Link(overlay_link(&m.overlay, &e.target)),
                Kind::DirectSymlink => match &e.source {
                    Some(s) => Claim::Link(s.clone()),
                    None => continue,
                },
                Kind::Copy => match &e.sha256 {
                    Some(h) => Claim::Copy(h.clone()),
                    None => continue,
                },
                Kind::Dir => Claim::Dir,
            };
            self.add(&e.target, claim);
        }
    }

    /// Adds every claim of `other`.
    pub fn merge(&mut self, other: Evidence) {
        for (t, list) in other.claims {
            for c in list {
                self.add(&t, c);
            }
        }
    }

    /// Adds one claim.
    pub fn add(&mut self, target: &str, claim: Claim) {
        let list = self.claims.entry(target.to_owned()).or_default();
        if !list.contains(&claim) {
            list.push(claim);
        }
    }

    /// Every claimed target, sorted.
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.claims.keys().map(String::as_str)
    }

    /// Whether any claim is made on `target`.
    pub fn claims(&self, target: &str) -> bool {
        self.claims.contains_key(target)
    }

    /// Whether what is at `target` is ours.
    pub fn is_ours(&self, target: &str, node: &Node) -> bool {
        self.claims
            .get(target)
            .is_some_and(|list| list.iter().any(|c| matches(c, node)))
    }

    /// Whether `target` is claimed as a managed directory.
    pub fn is_dir(&self, target: &str) -> bool {
        self.claims
            .get(target)
            .is_some_and(|list| list.contains(&Claim::Dir))
    }
}

fn matches(claim: &Claim, node: &Node) -> bool {
    match (claim, node) {
        (Claim::Link(want), Node::Link(have)) => want == have,
        (Claim::Copy(want), Node::File(f)) => *want == f.sha256,
        (Claim::Dir, Node::Dir(_)) | (Claim::LegacyFile, Node::File(_) | Node::Link(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Entry, Id, Mode};
    use crate::rootfs::{FileInfo, Meta};

    fn file(sha: &str) -> Node {
        Node::File(FileInfo {
            meta: Meta {
                mode: 0o644,
                uid: 0,
                gid: 0,
                dev: 1,
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
