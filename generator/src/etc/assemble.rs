//! From the declarations to the `/etc` manifest: each declaration on its own (`resolve.rs`)
//! gives leaves; then the rules between entries, and the implied directories.
//!
//! Rules between entries:
//! 1. Two leaves with one target must be identical (same kind, source or content, mode and
//!    owner): then they are one entry, as NixOS builds them. If they differ they are refused
//!    (NixOS's etc builder silently keeps the first link and the last sidecars, mixing two
//!    entries).
//! 2. A leaf at a path that another target needs as a directory is a file-vs-directory conflict.
//! 3. Every ancestor of a leaf (not `/etc` itself) becomes a `dir` entry, 0755 root:root.
//!
//! Everything is kept in sorted vectors and `BTreeMap`s: linear-logarithmic in the number of
//! entries, and the output order is the byte order of targets (parents before children).

use std::collections::BTreeMap;

use etcflip_format::manifest::{check_overlay, Entry, Id, Kind, Manifest, Mode, MANIFEST_VERSION};

use crate::decl::Decl;
use crate::etc::resolve::{ancestors, resolve, Context, Leaf};
use crate::etc::source::check_store;
use crate::Inputs;

/// Mode of every directory the generator implies.
const DIR_MODE: Mode = Mode(0o755);

/// The `/etc` part of a generation, every rule checked, not yet written: the manifest and the
/// payload texts it refers to. Not called a plan: in the applier
/// (`applier/src/etc/plan/mod.rs`) a plan is what a switch will do.
#[derive(Debug)]
pub(crate) struct Assembled {
    /// The manifest, entries sorted by target.
    pub(crate) manifest: Manifest<'static>,
    /// Payload content of text entries, by target.
    pub(crate) texts: BTreeMap<String, String>,
}

/// The `/etc` part of the generation: the overlay and the spec's store are checked, then every
/// declaration on its own (`resolve.rs`), then the rules between them. Problems are appended to
/// `problems`; the result is only meaningful when there are none.
pub(crate) fn assemble(inputs: &Inputs, overlay: &str, problems: &mut Vec<String>) -> Assembled {
    let overlay_ok = check_overlay(overlay).map_err(|m| problems.push(m)).is_ok();
    let spec_store = inputs
        .store
        .as_deref()
        .filter(|s| check_store(s).map_err(|m| problems.push(m)).is_ok());
    let ctx = Context {
        overlay_rel: overlay.strip_prefix("/etc/").filter(|_| overlay_ok),
        overlay,
        spec_dir: inputs.spec_dir.as_deref(),
        spec_store,
        tree_store: inputs.tree_store.as_deref().or(spec_store),
    };
    let decls = &inputs.decls;
    let mut leaves = Vec::with_capacity(decls.len());
    for (i, d) in decls.iter().enumerate() {
        resolve(d, i, &ctx, &mut leaves, problems);
    }
    from_leaves(decls, leaves, overlay, problems)
}

/// Applies the cross-entry rules to `leaves` and assembles the manifest. Problems are appended
/// to `problems`; the result is only meaningful when there are none.
fn from_leaves(
    decls: &[Decl],
    mut leaves: Vec<Leaf>,
    overlay: &str,
    problems: &mut Vec<String>,
) -> Assembled {
    merge_duplicates(decls, &mut leaves, problems);
    let mut entries = implied_dirs(decls, &leaves, problems);
    entries.reserve(leaves.len());
    let mut texts = BTreeMap::new();
    for l in leaves {
        if let Some(t) = l.text {
            texts.insert(l.entry.target.to_string(), t);
        }
        entries.push(l.entry);
    }
    entries.sort_by(|a, b| a.target.cmp(&b.target));
    Assembled {
        manifest: Manifest {
            version: MANIFEST_VERSION,
            overlay: overlay.to_owned().into(),
            entries,
            users: None,
            wrappers: None,
        },
        texts,
    }
}

/// Rule 1: sorts `leaves` by target and keeps one of identical duplicates; a duplicate that
/// differs is a problem.
fn merge_duplicates(decls: &[Decl], leaves: &mut Vec<Leaf>, problems: &mut Vec<String>) {
    // Stable: among duplicates the earlier declaration comes first and is named as "first".
    leaves.sort_by(|a, b| a.entry.target.cmp(&b.entry.target));
    leaves.dedup_by(|later, first| {
        let dup = later.entry.target == first.entry.target;
        if dup && (later.entry != first.entry || later.text != first.text) {
            problems.push(decls[later.decl].problem(
                "target",
                &format!(
                    "{:?} is also the target of {}, with another source, content, mode or \
                     owner (duplicate targets must be identical)",
                    later.entry.target,
                    decls[first.decl].label()
                ),
            ));
        }
        dup
    });
}

/// Rules 2 and 3: the `dir` entries the leaves' ancestors imply, and a problem for each leaf at
/// a path that another leaf needs as a directory.
fn implied_dirs(
    decls: &[Decl],
    leaves: &[Leaf],
    problems: &mut Vec<String>,
) -> Vec<Entry<'static>> {
    // Which leaf first needs each directory (for naming it in conflicts).
    let mut dirs: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, l) in leaves.iter().enumerate() {
        for dir in ancestors(&l.entry.target) {
            dirs.entry(dir).or_insert(i);
        }
    }
    for l in leaves {
        if let Some(&child) = dirs.get(l.entry.target.as_str()) {
            let c = &leaves[child];
            problems.push(decls[l.decl].problem(
                "target",
                &format!(
                    "{:?} is a {} entry, but {} needs it to be a directory for {:?}",
                    l.entry.target,
                    l.entry.kind,
                    decls[c.decl].label(),
                    c.entry.target
                ),
            ));
        }
    }
    dirs.keys().map(|d| dir_entry(d)).collect()
}

fn dir_entry(target: &str) -> Entry<'static> {
    Entry {
        target: target.to_owned().into(),
        kind: Kind::Dir,
        source: None,
        mode: Some(DIR_MODE),
        uid: Some(Id::Num(0)),
        gid: Some(Id::Num(0)),
        sha256: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::decl::Origin;

    fn decl(attr: &str) -> Decl {
        Decl {
            attr: attr.into(),
            origin: Origin::Spec,
            target: attr.into(),
            source: None,
            text: None,
            mode: "symlink".into(),
            user: "+0".into(),
            group: "+0".into(),
        }
    }

    fn link(decl: usize, target: &'static str) -> Leaf {
        link_to(decl, target, "/s")
    }

    fn link_to(decl: usize, target: &'static str, source: &'static str) -> Leaf {
        Leaf {
            decl,
            entry: Entry {
                target: target.into(),
                kind: Kind::Symlink,
                source: Some(source.into()),
                mode: None,
                uid: None,
                gid: None,
                sha256: None,
            },
            text: None,
        }
    }

    #[test]
    fn dirs_are_implied_and_sorted() {
        let decls = [decl("x")];
        let mut problems = Vec::new();
        let leaves = vec![link(0, "b/c/d"), link(0, "a"), link(0, "b/c-e")];
        let a = from_leaves(&decls, leaves, "/etc/static", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let got: Vec<_> = a
            .manifest
            .entries
            .iter()
            .map(|e| format!("{} {}", e.kind, e.target))
            .collect();
        assert_eq!(
            got,
            [
                "symlink a",
                "dir b",
                "dir b/c",
                "symlink b/c-e",
                "symlink b/c/d"
            ]
        );
        assert_eq!(a.manifest.problems(), Vec::<String>::new());
    }

    #[test]
    fn identical_duplicates_are_one_entry() {
        let decls = [decl("one"), decl("two")];
        let mut problems = Vec::new();
        let a = from_leaves(
            &decls,
            vec![link(0, "x"), link(1, "x")],
            "/etc/static",
            &mut problems,
        );
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(a.manifest.entries.len(), 1);
    }

    #[test]
    fn duplicates_and_conflicts_name_both_attributes() {
        let decls = [decl("one"), decl("two"), decl("three")];
        let mut problems = Vec::new();
        let leaves = vec![
            link(0, "x"),
            link_to(1, "x", "/other"),
            link(2, "x/y"),
            link(2, "z"),
        ];
        from_leaves(&decls, leaves, "/etc/static", &mut problems);
        assert_eq!(
            problems,
            [
                "etc.\"two\".target: \"x\" is also the target of etc.\"one\", with another \
                 source, content, mode or owner (duplicate targets must be identical)",
                "etc.\"one\".target: \"x\" is a symlink entry, but etc.\"three\" needs it to be a \
                 directory for \"x/y\"",
            ]
        );
    }
}
