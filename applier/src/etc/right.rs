//! Is an entry right? The one answer the plan (what must change), `verify` (what drifted) and
//! the read-back after creating (did it take) all use, and the one way they name what they
//! found.

use crate::fs::Node;
use crate::manifest::{is_overlay_link, Entry, Kind};

/// What an entry wants at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want<'a> {
    /// A symlink to `<overlay>/<target>` (compared without building the text).
    OverlayLink { overlay: &'a str, target: &'a str },
    /// A symlink with exactly this text (`None`: no text is right).
    Link(Option<&'a str>),
    /// A real directory, whatever its mode and owner.
    Dir,
    /// A regular file with this content (`None`: not known, so no file is right); its mode
    /// and owner too, where they are given.
    File {
        sha256: Option<&'a str>,
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
    },
}

/// How a path compares with what its entry wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Exactly what the entry wants.
    Right,
    /// The right content, but the wrong mode or owner (files): says which.
    Attributes(String),
    /// Anything else.
    Wrong,
}

impl<'a> Want<'a> {
    /// What `e` wants under `overlay`. A copy wants the content `sha256` (the manifest's, or a
    /// runtime copy's source as read now), its mode, and `owner` when owners are checked.
    pub(crate) fn of(
        e: &'a Entry,
        overlay: &'a str,
        sha256: Option<&'a str>,
        owner: Option<(u32, u32)>,
    ) -> Want<'a> {
        match e.kind {
            Kind::Symlink => Want::OverlayLink {
                overlay,
                target: &e.target,
            },
            Kind::DirectSymlink => Want::Link(e.source.as_deref()),
            Kind::Dir => Want::Dir,
            Kind::Copy => Want::File {
                sha256,
                mode: Some(crate::fs::as_written(e.mode.map_or(0, |m| m.0))),
                owner,
            },
        }
    }

    /// How `node` compares with this.
    pub(crate) fn judge(&self, node: &Node) -> Verdict {
        let right = match (self, node) {
            (Want::OverlayLink { overlay, target }, Node::Link(text)) => {
                is_overlay_link(text, overlay, target)
            }
            (Want::Link(want), Node::Link(text)) => *want == Some(text.as_str()),
            (Want::Dir, Node::Dir(_)) => true,
            (
                Want::File {
                    sha256,
                    mode,
                    owner,
                },
                Node::File(f),
            ) => {
                if *sha256 != Some(f.sha256.as_str()) {
                    return Verdict::Wrong;
                }
                let mut wrong = Vec::new();
                if let Some(mode) = mode.filter(|m| *m != f.meta.mode) {
                    wrong.push(format!("mode {:04o}, want {mode:04o}", f.meta.mode));
                }
                if let Some((uid, gid)) = owner.filter(|o| *o != (f.meta.uid, f.meta.gid)) {
                    wrong.push(format!(
                        "owner {}:{}, want {uid}:{gid}",
                        f.meta.uid, f.meta.gid
                    ));
                }
                if !wrong.is_empty() {
                    return Verdict::Attributes(wrong.join(", "));
                }
                true
            }
            _ => false,
        };
        if right {
            Verdict::Right
        } else {
            Verdict::Wrong
        }
    }

    /// Whether `node` is exactly what this wants.
    pub(crate) fn is_right(&self, node: &Node) -> bool {
        self.judge(node) == Verdict::Right
    }
}

/// How a report names what it found at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Naming {
    /// In a plan's reasons: the kind only ("regular file").
    Kind,
    /// In a drift report: with an article, and a file's hash, mode and owner.
    Full,
    /// Like `Full`, but never a file's hash (runtime copies: often secrets).
    Secret,
}

/// Names what was found at a path.
pub(crate) fn describe(node: &Node, naming: Naming) -> String {
    let full = naming != Naming::Kind;
    let a = if full { "a " } else { "" };
    match node {
        Node::Absent => "nothing".into(),
        Node::Link(t) => format!("{a}symlink to {t}"),
        Node::File(_) if !full => "regular file".into(),
        Node::File(f) if naming == Naming::Secret => format!(
            "a file of other content or attributes, mode {:04o}, owner {}:{}",
            f.meta.mode, f.meta.uid, f.meta.gid
        ),
        Node::File(f) => format!(
            "a file with sha256 {}, mode {:04o}, owner {}:{}",
            f.sha256, f.meta.mode, f.meta.uid, f.meta.gid
        ),
        Node::Dir(_) => format!("{a}directory"),
        Node::Other(_) => format!("{a}special file"),
        Node::Blocked(anc) if full => format!("nothing reachable (/{anc} is not a directory)"),
        Node::Blocked(anc) => format!("path below /{anc}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::node::{FileInfo, Meta};
    use crate::manifest::{Mode, Str};

    fn file(sha: &str, mode: u32, uid: u32) -> Node {
        let meta = Meta {
            mode,
            uid,
            gid: uid,
            dev: 1,
            mount: false,
        };
        Node::File(FileInfo {
            meta,
            sha256: sha.into(),
        })
    }

    fn entry(target: &str, kind: Kind, source: Option<&'static str>) -> Entry<'static> {
        Entry {
            target: Str::from(target.to_owned()),
            kind,
            source: source.map(Str::borrowed),
            mode: (kind == Kind::Copy).then_some(Mode(0o640)),
            uid: None,
            gid: None,
            sha256: None,
        }
    }

    #[test]
    fn each_kind_is_right_only_as_declared() {
        let link = |t: &str| Node::Link(t.into());
        let dir = Node::Dir(Meta {
            mode: 0o700,
            uid: 5,
            gid: 5,
            dev: 1,
            mount: false,
        });
        let sym = entry("a/b", Kind::Symlink, Some("/nix/store/x"));
        let direct = entry("d", Kind::DirectSymlink, Some("/run/x"));
        let d = entry("dir", Kind::Dir, None);
        let copy = entry("c", Kind::Copy, Some("/nix/store/c"));
        let ov = "/etc/static";
        let attrs = |s: &str| Verdict::Attributes(s.into());
        let cases: Vec<(Want, Node, Verdict)> = vec![
            (
                Want::of(&sym, ov, None, None),
                link("/etc/static/a/b"),
                Verdict::Right,
            ),
            (
                Want::of(&sym, ov, None, None),
                link("/etc/static/a/c"),
                Verdict::Wrong,
            ),
            (
                Want::of(&sym, ov, None, None),
                link("/etc/staticx/a/b"),
                Verdict::Wrong,
            ),
            (
                Want::of(&sym, ov, None, None),
                link("/nix/store/x"),
                Verdict::Wrong,
            ),
            (Want::of(&sym, ov, None, None), Node::Absent, Verdict::Wrong),
            (
                Want::of(&direct, ov, None, None),
                link("/run/x"),
                Verdict::Right,
            ),
            (
                Want::of(&direct, ov, None, None),
                link("/etc/static/d"),
                Verdict::Wrong,
            ),
            (Want::Link(None), link(""), Verdict::Wrong),
            (Want::of(&d, ov, None, None), dir.clone(), Verdict::Right),
            (
                Want::of(&d, ov, None, None),
                link("/etc/static/dir"),
                Verdict::Wrong,
            ),
            (
                Want::of(&copy, ov, Some("h"), None),
                file("h", 0o640, 9),
                Verdict::Right,
            ),
            (
                Want::of(&copy, ov, Some("h"), Some((9, 9))),
                file("h", 0o640, 9),
                Verdict::Right,
            ),
            (
                Want::of(&copy, ov, Some("h"), None),
                file("g", 0o640, 9),
                Verdict::Wrong,
            ),
            (
                Want::of(&copy, ov, None, None),
                file("h", 0o640, 9),
                Verdict::Wrong,
            ),
            (
                Want::of(&copy, ov, Some("h"), Some((0, 0))),
                file("h", 0o644, 9),
                attrs("mode 0644, want 0640, owner 9:9, want 0:0"),
            ),
            (Want::of(&copy, ov, Some("h"), None), dir, Verdict::Wrong),
            (
                Want::File {
                    sha256: Some("h"),
                    mode: None,
                    owner: None,
                },
                file("h", 0o600, 3),
                Verdict::Right,
            ),
        ];
        for (want, node, verdict) in cases {
            assert_eq!(want.judge(&node), verdict, "{want:?} at {node:?}");
        }
    }

    #[test]
    fn names_say_as_much_as_the_report_may() {
        let f = file("abc", 0o600, 0);
        let cases = [
            (Naming::Kind, f.clone(), "regular file"),
            (
                Naming::Full,
                f.clone(),
                "a file with sha256 abc, mode 0600, owner 0:0",
            ),
            (
                Naming::Secret,
                f,
                "a file of other content or attributes, mode 0600, owner 0:0",
            ),
            (Naming::Kind, Node::Link("/x".into()), "symlink to /x"),
            (Naming::Full, Node::Link("/x".into()), "a symlink to /x"),
            (Naming::Secret, Node::Link("/x".into()), "a symlink to /x"),
            (
                Naming::Kind,
                Node::Blocked("etc/a".into()),
                "path below /etc/a",
            ),
            (
                Naming::Full,
                Node::Blocked("etc/a".into()),
                "nothing reachable (/etc/a is not a directory)",
            ),
            (Naming::Kind, Node::Other(false), "special file"),
            (Naming::Full, Node::Absent, "nothing"),
        ];
        for (naming, node, said) in cases {
            assert_eq!(describe(&node, naming), said, "{naming:?} {node:?}");
        }
    }
}
