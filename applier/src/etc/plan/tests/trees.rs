//! The planner's rules for trees: directories swapped in and built aside, ours directories
//! relinked first, paths inside a refused one, mount points held, and stale directories.
//! Inputs are built in memory; each table row is one situation.

use std::collections::BTreeMap;

use super::super::*;
use crate::etc::evidence::Evidence;
use crate::etc::observe::{Seen, World};
use crate::fs::node::{FileInfo, Meta};
use crate::manifest::Manifest;

/// A manifest of `(target, kind)` entries, as the generator writes them.
fn manifest(entries: &[(&str, &str)]) -> Manifest<'static> {
    let entries: Vec<serde_json::Value> = entries
        .iter()
        .map(|(t, kind)| match *kind {
            "dir" => {
                serde_json::json!({"target": t, "kind": "dir", "mode": "0755", "uid": 0, "gid": 0})
            }
            "copy" => serde_json::json!({"target": t, "kind": "copy", "mode": "0644", "uid": 0,
                "gid": 0, "sha256": crate::fs::sha256_bytes(t.as_bytes())}),
            _ => {
                serde_json::json!({"target": t, "kind": "symlink", "source": format!("/store/{t}")})
            }
        })
        .collect();
    let text = serde_json::json!({"version": 1, "overlay": "/etc/static", "entries": entries});
    Manifest::from_json(&text.to_string(), "test")
        .unwrap()
        .into_owned()
}

fn meta(mount: bool) -> Meta {
    Meta {
        mode: 0o755,
        uid: 0,
        gid: 0,
        dev: 1,
        mount,
    }
}

fn link(t: &str) -> Seen {
    Seen::of(Node::Link(format!("/etc/static/{t}")))
}

fn dir(listing: &[&str], mount: bool) -> Seen {
    Seen {
        node: Node::Dir(meta(mount)),
        listing: Some(listing.iter().map(|n| (*n).to_owned()).collect()),
        new_sha: None,
    }
}

fn file(sha: &str, mount: bool) -> Seen {
    Seen::of(Node::File(FileInfo {
        meta: Meta {
            mode: 0o644,
            ..meta(mount)
        },
        sha256: sha.into(),
    }))
}

/// One situation: what the new and the applied generation hold, what is seen (every path the
/// planner may look at), the mount points below `/etc`; and the steps expected, as
/// `(target, action, held, built with)`.
struct Case {
    what: &'static str,
    new: &'static [(&'static str, &'static str)],
    old: &'static [(&'static str, &'static str)],
    seen: Vec<(&'static str, Seen)>,
    mounts: &'static [&'static str],
    want: &'static [(&'static str, Action, bool, Option<&'static str>)],
}

fn plan_case(c: &Case) -> Plan {
    let (new, old) = (manifest(c.new), manifest(c.old));
    let mut evidence = Evidence::default();
    evidence.add_manifest(&old);
    let world: World = c
        .seen
        .iter()
        .map(|(t, s)| ((*t).to_owned(), s.clone()))
        .collect();
    let mounts: Vec<String> = c.mounts.iter().map(|m| (*m).to_owned()).collect();
    plan(&Inputs {
        new: &new,
        evidence: &evidence,
        world: &world,
        overlay: (&Node::Absent, "/gens/b/etc".to_owned(), false),
        on_conflict: OnConflict::Abort,
        owners: None,
        runtime: &BTreeMap::new(),
        mounts: &mounts,
        recorded: None,
    })
}

#[test]
fn trees_are_swapped_built_relinked_or_refused() {
    let cases = [
        Case {
            what: "our link becomes a directory: swapped in, its content built aside",
            new: &[("d", "dir"), ("d/x", "symlink")],
            old: &[("d", "symlink")],
            seen: vec![
                ("d", link("d")),
                ("d/x", Seen::of(Node::Blocked("etc/d".into()))),
            ],
            mounts: &[],
            want: &[
                ("d", Action::SwapIn, false, None),
                ("d/x", Action::Build, false, Some("d")),
            ],
        },
        Case {
            what: "our directory becomes a link: relinked",
            new: &[("e", "symlink")],
            old: &[("e", "dir"), ("e/a", "symlink")],
            seen: vec![("e", dir(&["a"], false)), ("e/a", link("e/a"))],
            mounts: &[],
            want: &[
                ("e", Action::Relink, false, None),
                ("e/a", Action::Remove, false, Some("e")),
            ],
        },
        Case {
            what: "our directory holding a foreign file is not replaced",
            new: &[("e", "symlink")],
            old: &[("e", "dir")],
            seen: vec![
                ("e", dir(&["theirs"], false)),
                ("e/theirs", file("t", false)),
            ],
            mounts: &[],
            want: &[("e", Action::Conflict, false, None)],
        },
        Case {
            what: "inside a refused path, everything is refused",
            new: &[("r", "dir"), ("r/y", "symlink")],
            old: &[],
            seen: vec![
                ("r", file("theirs", false)),
                ("r/y", Seen::of(Node::Blocked("etc/r".into()))),
            ],
            mounts: &[],
            want: &[
                ("r", Action::Conflict, false, None),
                ("r/y", Action::Conflict, false, None),
            ],
        },
        Case {
            what: "a stale directory goes only once nothing else is left in it",
            new: &[],
            old: &[("s", "dir"), ("s/a", "symlink")],
            seen: vec![("s", dir(&["a", "b"], false)), ("s/a", link("s/a"))],
            mounts: &[],
            want: &[
                ("s", Action::Leave, false, None),
                ("s/a", Action::Remove, false, None),
            ],
        },
        Case {
            what: "a stale directory emptied by the switch goes",
            new: &[],
            old: &[("s", "dir"), ("s/a", "symlink")],
            seen: vec![("s", dir(&["a"], false)), ("s/a", link("s/a"))],
            mounts: &[],
            want: &[
                ("s", Action::Remove, false, None),
                ("s/a", Action::Remove, false, None),
            ],
        },
    ];
    check(&cases);
}

/// What a mount point covers, or holds below it, is never moved, replaced or removed: it is
/// left, and held (still ours, for a later switch to finish).
#[test]
fn mount_points_are_left_and_held() {
    let cases = [
        Case {
            what: "a mount point on a wanted path is left, held",
            new: &[("m", "symlink")],
            old: &[("m", "symlink")],
            seen: vec![("m", file("bound", true))],
            mounts: &[],
            want: &[("m", Action::Leave, true, None)],
        },
        Case {
            what: "a mount point that is already right is kept, and held",
            new: &[("md", "dir")],
            old: &[("md", "dir")],
            seen: vec![("md", dir(&[], true))],
            mounts: &[],
            want: &[("md", Action::Keep, true, None)],
        },
        Case {
            what: "a directory holding a mount point is never relinked",
            new: &[("e", "symlink")],
            old: &[("e", "dir")],
            seen: vec![("e", dir(&["sub"], false))],
            mounts: &["e/sub"],
            want: &[("e", Action::Leave, true, None)],
        },
        Case {
            what: "a stale mount point is left, held",
            new: &[],
            old: &[("gone", "copy")],
            seen: vec![("gone", file(&crate::fs::sha256_bytes(b"gone"), true))],
            mounts: &[],
            want: &[("gone", Action::Leave, true, None)],
        },
    ];
    check(&cases);
}

fn check(cases: &[Case]) {
    for c in cases {
        let p = plan_case(c);
        let got: Vec<(&str, Action, bool, Option<&str>)> = p
            .steps
            .iter()
            .map(|s| (s.target.as_str(), s.action, s.held, s.with.as_deref()))
            .collect();
        assert_eq!(got, c.want, "{}: {p:#?}", c.what);
    }
}

/// A copy case: what, the applied generation, what is seen, the action, and why.
type CopyCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Seen,
    Action,
    Option<&'static str>,
);

/// A copy already right is kept, whoever made it. The right content with another mode is
/// restaged with the declared one, whoever made it; other content is refused unless ours.
#[test]
fn copies_are_kept_restaged_or_refused() {
    let sha = crate::fs::sha256_bytes(b"c");
    let mut wrong_mode = file(&sha, false);
    if let Node::File(f) = &mut wrong_mode.node {
        f.meta.mode = 0o600;
    }
    let cases: [CopyCase; 5] = [
        (
            "ours, right",
            &[("c", "copy")],
            file(&sha, false),
            Action::Keep,
            None,
        ),
        (
            "ours, wrong mode",
            &[("c", "copy")],
            wrong_mode.clone(),
            Action::Stage,
            Some("mode 0600, want 0644"),
        ),
        (
            "foreign, exactly right",
            &[],
            file(&sha, false),
            Action::Keep,
            None,
        ),
        (
            "foreign, identical content, another mode: given the declared one",
            &[],
            wrong_mode.clone(),
            Action::Stage,
            Some("mode 0600, want 0644"),
        ),
        (
            "foreign, different",
            &[],
            file("other", false),
            Action::Conflict,
            None,
        ),
    ];
    for (what, old, seen, action, why) in cases {
        let case = Case {
            what,
            new: &[("c", "copy")],
            old,
            seen: vec![("c", seen)],
            mounts: &[],
            want: &[],
        };
        let p = plan_case(&case);
        let step = &p.steps[0];
        assert_eq!(step.action, action, "{what}: {p:#?}");
        if let Some(why) = why {
            assert_eq!(step.why.as_deref(), Some(why), "{what}");
        }
    }
}

/// A foreign link to exactly the declared source is adopted; a foreign link elsewhere refused.
#[test]
fn a_foreign_link_to_the_same_source_is_adopted() {
    for (to, action) in [
        ("/store/l", Action::Adopt),
        ("/elsewhere", Action::Conflict),
    ] {
        let case = Case {
            what: "link",
            new: &[("l", "symlink")],
            old: &[],
            seen: vec![("l", Seen::of(Node::Link(to.into())))],
            mounts: &[],
            want: &[],
        };
        let p = plan_case(&case);
        assert_eq!(p.steps[0].action, action, "{to}: {p:#?}");
    }
}
