//! The pure planner on inputs built in memory: one table per rule. Each case gives what the
//! root shows at a path and what the applied generation claimed, and expects the action.

use std::collections::BTreeMap;

use super::*;
use crate::etc::observe::{Seen, World};
use crate::fs::node::{FileInfo, Meta};
use crate::manifest::Manifest;

const OVERLAY: &str = "/etc/static";

/// A manifest of link entries (and their directories), as the generator writes it.
fn manifest(targets: &[&str]) -> Manifest<'static> {
    let entries: Vec<serde_json::Value> = targets
        .iter()
        .map(|t| serde_json::json!({"target": t, "kind": "symlink", "source": format!("/store/{t}")}))
        .collect();
    let text =
        serde_json::json!({"version": 1, "overlay": OVERLAY, "entries": entries}).to_string();
    Manifest::from_json(&text, "test").unwrap().into_owned()
}

fn link(t: &str) -> Node {
    Node::Link(format!("{OVERLAY}/{t}"))
}

fn file(sha: &str) -> Node {
    let meta = Meta {
        mode: 0o644,
        uid: 0,
        gid: 0,
        dev: 1,
        mount: false,
    };
    Node::File(FileInfo {
        meta,
        sha256: sha.into(),
    })
}

/// Plans `new` over `old` (claimed), with `world` observed, under `on_conflict`.
fn plan_with(
    new: &Manifest,
    old: &Manifest,
    world: &[(&str, Node)],
    on_conflict: OnConflict,
    overlay: &(Node, bool),
) -> Plan {
    let mut evidence = Evidence::default();
    evidence.add_manifest(old);
    let world: World = world
        .iter()
        .map(|(t, n)| ((*t).to_owned(), Seen::of(n.clone())))
        .collect();
    let runtime = BTreeMap::new();
    plan(&Inputs {
        new,
        evidence: &evidence,
        world: &world,
        overlay: (&overlay.0, "/gens/b/etc".to_owned(), overlay.1),
        on_conflict,
        owners: None,
        runtime: &runtime,
        mounts: &[],
        recorded: None,
    })
}

fn action_at(p: &Plan, target: &str) -> Option<Action> {
    p.steps
        .iter()
        .find(|s| s.target == target)
        .map(|s| s.action)
}

/// What is at a wanted path decides: absent is made, our right link kept, our wrong link
/// relinked, anything foreign a conflict under `abort`.
#[test]
fn a_wanted_path_is_made_kept_relinked_or_refused() {
    let new = manifest(&["a"]);
    let cases: [(&str, Node, &[&str], Action); 5] = [
        ("absent", Node::Absent, &[], Action::Create),
        ("our link", link("a"), &["a"], Action::Keep),
        ("our link, claimed or not", link("a"), &[], Action::Keep),
        (
            "a foreign link",
            Node::Link("/usr/bin/bash".into()),
            &[],
            Action::Conflict,
        ),
        ("a foreign file", file("ff"), &[], Action::Conflict),
    ];
    for (what, node, old, want) in cases {
        let p = plan_with(
            &new,
            &manifest(old),
            &[("a", node)],
            OnConflict::Abort,
            &(Node::Absent, false),
        );
        assert_eq!(action_at(&p, "a"), Some(want), "{what}: {p:#?}");
    }
}

/// A foreign path is backed up or overwritten when the user says so, refused otherwise.
#[test]
fn on_conflict_decides_what_happens_to_a_foreign_path() {
    let new = manifest(&["a"]);
    for (mode, want) in [
        (OnConflict::Abort, Action::Conflict),
        (OnConflict::Backup, Action::Backup),
        (OnConflict::Overwrite, Action::Overwrite),
    ] {
        let world = [("a", file("theirs"))];
        let p = plan_with(&new, &manifest(&[]), &world, mode, &(Node::Absent, false));
        assert_eq!(action_at(&p, "a"), Some(want), "{mode:?}: {p:#?}");
    }
}

/// A path the new generation drops is removed only while it is still ours.
#[test]
fn a_stale_path_is_removed_only_while_it_is_ours() {
    let new = manifest(&["a"]);
    let old = manifest(&["a", "gone"]);
    let cases: [(&str, Node, Option<Action>); 3] = [
        ("our link", link("gone"), Some(Action::Remove)),
        (
            "replaced by the admin",
            Node::Link("/elsewhere".into()),
            Some(Action::Leave),
        ),
        ("already gone", Node::Absent, None),
    ];
    for (what, node, want) in cases {
        let world = [("a", link("a")), ("gone", node)];
        let p = plan_with(
            &new,
            &old,
            &world,
            OnConflict::Abort,
            &(Node::Absent, false),
        );
        let got = action_at(&p, "gone").filter(|a| *a != Action::Keep);
        assert_eq!(got, want, "{what}: {p:#?}");
    }
}

/// An overlay case: what, the node there, whether it is ours, `--on-conflict`, whether the
/// switch is refused, and what is done with a foreign link.
type OverlayCase = (&'static str, Node, bool, OnConflict, bool, Option<Action>);

/// The overlay link: absent or ours is flipped; a link etcflip did not make is a conflict under
/// `abort`, backed up under `backup`; anything but a link is always a conflict.
#[test]
fn the_overlay_link_is_flipped_only_when_it_is_ours() {
    let new = manifest(&["a"]);
    let world = [("a", link("a"))];
    let cases: [OverlayCase; 5] = [
        (
            "absent",
            Node::Absent,
            false,
            OnConflict::Abort,
            false,
            None,
        ),
        (
            "ours",
            Node::Link("/gens/a/etc".into()),
            true,
            OnConflict::Abort,
            false,
            None,
        ),
        (
            "foreign, abort",
            Node::Link("/srv/x".into()),
            false,
            OnConflict::Abort,
            true,
            None,
        ),
        (
            "foreign, backup",
            Node::Link("/srv/x".into()),
            false,
            OnConflict::Backup,
            false,
            Some(Action::Backup),
        ),
        (
            "a directory",
            Node::Dir(Meta {
                mode: 0o755,
                uid: 0,
                gid: 0,
                dev: 1,
                mount: false,
            }),
            false,
            OnConflict::Overwrite,
            true,
            None,
        ),
    ];
    for (what, node, ours, mode, refused, foreign) in cases {
        let p = plan_with(&new, &manifest(&["a"]), &world, mode, &(node, ours));
        assert_eq!(!p.conflicts().is_empty(), refused, "{what}: {p:#?}");
        assert_eq!(p.flip.foreign, foreign, "{what}");
        assert_eq!(p.flip.to, "/gens/b/etc", "{what}");
    }
}

/// A switch that finds everything as wanted, with the overlay already there, is a no-op.
#[test]
fn nothing_to_do_is_a_noop() {
    let new = manifest(&["a", "b"]);
    let world = [("a", link("a")), ("b", link("b"))];
    let overlay = (Node::Link("/gens/b/etc".into()), true);
    let p = plan_with(&new, &new, &world, OnConflict::Abort, &overlay);
    assert!(p.is_noop(), "{p:#?}");
    let moved = (Node::Link("/gens/a/etc".into()), true);
    let p = plan_with(&new, &new, &world, OnConflict::Abort, &moved);
    assert!(!p.is_noop(), "a flip to make: {p:#?}");
}

mod trees;
