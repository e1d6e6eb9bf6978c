//! Looks at the paths of old ∪ new (read-only), producing the [`World`] the plan is computed
//! from. Cost is proportional to the manifests, not to `/etc`: one `readlinkat` per link
//! entry, and nothing at all below a path that is not a real directory.
//!
//! A switch to a *different* generation is a transition: an entry that is identical in the
//! applied and the target manifest (same kind, same link text, same copy content, mode and
//! owner) is taken to be as recorded and not looked at, so its cost follows the change, not
//! the size of `/etc`. Everything else is looked at: changed and new entries, stale ones, and
//! every entry when re-switching to the applied generation (the full check that repairs
//! drift), after an interrupted switch, or when migrating. `etcflip verify` checks everything.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::etc::evidence::Evidence;
use crate::fs::{split, Node, Root};
use crate::manifest::{Entry, Kind, Manifest};

/// One observed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// What is there.
    pub node: Node,
    /// Sorted names inside, for directories we may have to remove or replace.
    pub listing: Option<Vec<String>>,
    /// sha256 of what the new generation would put here, when a regular file is in the way.
    pub new_sha: Option<String>,
}

impl Seen {
    /// An observation with nothing extra.
    pub(crate) fn of(node: Node) -> Seen {
        Seen {
            node,
            listing: None,
            new_sha: None,
        }
    }
}

/// Observations by target.
pub(crate) type World = BTreeMap<String, Seen>;

/// Observes `new` ∪ the claimed targets. `recorded[i]` says that `new.entries[i]` wants the
/// same as the applied generation (a transition): it is taken as recorded, not looked at,
/// and has no row in the world. (Its ancestors are recorded too: a parent is a `dir` entry
/// in both manifests, and `dir` entries are always the same at their path.)
pub(crate) fn observe(
    root: &mut Root,
    new: &Manifest,
    ev: &Evidence,
    gen_host: &Path,
    recorded: Option<&[bool]>,
) -> Result<World> {
    // Paths come in sorted order: push them into a Vec (binary search when needed) and build
    // the map in bulk at the end; a BTreeMap insert per path cost more than the readlinks.
    let mut seen_so_far: Vec<(String, Seen)> = Vec::with_capacity(new.entries.len());
    let mut rel = String::with_capacity(256);
    for (t, indexed) in union(new, ev) {
        let entry = indexed.map(|(_, e)| e);
        let same = indexed
            .and_then(|(i, _)| recorded.and_then(|r| r.get(i)))
            .is_some_and(|r| *r);
        if same {
            continue; // taken as recorded: no observation at all (the plan skips it too)
        }
        let node = if let Some(node) = inherited(&seen_so_far, t) {
            node
        } else {
            rel.clear();
            rel.push_str("etc/");
            rel.push_str(t);
            root.node(&rel)?
        };
        let mut seen = Seen::of(node);
        if matches!(seen.node, Node::Dir(_))
            && ev.is_dir(t)
            && entry.is_none_or(|e| e.kind != Kind::Dir)
        {
            // Scratch names are etcflip's own and swept; they don't make a directory foreign
            // or non-empty. Backups do.
            let mut names = root.list(&format!("etc/{t}"))?;
            names.retain(|n| !crate::etc::scratch::is_scratch(n));
            seen.listing = Some(names);
        }
        if let (Node::File(_), Some(e)) = (&seen.node, entry) {
            if e.kind == Kind::Symlink {
                seen.new_sha = Some(match &e.sha256 {
                    Some(h) => h.to_string(),
                    None => payload_sha(gen_host, t),
                });
            }
        }
        seen_so_far.push((t.to_owned(), seen));
    }
    Ok(seen_so_far.into_iter().collect::<World>())
}

/// Every target of `new` ∪ the claimed ones, sorted, with its new entry: a merge of two
/// sorted sequences (no sort, no lookups).
type Indexed<'a> = Option<(usize, &'a Entry<'a>)>;

fn union<'a>(new: &'a Manifest<'a>, ev: &'a Evidence<'a>) -> Vec<(&'a str, Indexed<'a>)> {
    let mut out = Vec::with_capacity(new.entries.len());
    let mut entries = new.entries.iter().enumerate().peekable();
    let mut claimed = ev.targets().peekable();
    let take = |(i, e): (usize, &'a Entry<'a>)| (e.target.as_str(), Some((i, e)));
    loop {
        let next = match (entries.peek(), claimed.peek()) {
            (None, None) => break,
            (Some((_, e)), Some(c)) if e.target.as_str() == *c => {
                claimed.next();
                entries.next().map(take)
            }
            (Some((_, e)), Some(c)) if e.target.as_str() < *c => entries.next().map(take),
            (Some(_), None) => entries.next().map(take),
            (_, Some(_)) => claimed.next().map(|c| (c, None)),
        };
        out.extend(next);
    }
    out
}

/// What a path is known to be from its parent's observation, without a syscall. `so_far`
/// is sorted; the parent is usually among the last few paths, so look there first.
fn inherited(so_far: &[(String, Seen)], t: &str) -> Option<Node> {
    let (parent, _) = split(t);
    if parent.is_empty() {
        return None;
    }
    let recent = so_far.iter().rev().take(4).find(|(p, _)| p == parent);
    let found = if let Some((_, s)) = recent {
        s
    } else {
        let i = so_far
            .binary_search_by(|(p, _)| p.as_str().cmp(parent))
            .ok()?;
        &so_far[i].1
    };
    match &found.node {
        Node::Dir(_) => None,
        Node::Absent => Some(Node::Absent),
        Node::Blocked(anc) => Some(Node::Blocked(anc.clone())),
        _ => Some(Node::Blocked(format!("etc/{parent}"))),
    }
}

/// sha256 of what the generation's payload shows at `target` (following its links: they are
/// the generation's own, pointing at its sources).
fn payload_sha(gen_host: &Path, target: &str) -> String {
    let path = gen_host.join("etc").join(target);
    match crate::fs::read_regular(&path) {
        Ok(bytes) => crate::fs::sha256_bytes(&bytes),
        // Unreadable (a dangling source, a directory, a FIFO): nothing can be identical to it.
        Err(_) => String::new(),
    }
}
