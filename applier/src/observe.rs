//! Looks at every path of old ∪ new (read-only), producing the [`World`] the plan is computed
//! from. Cost is proportional to the manifests, not to `/etc`: one `readlinkat` per link
//! entry, and nothing at all below a path that is not a real directory.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::evidence::Evidence;
use crate::manifest::{Id, Kind, Manifest};
use crate::plan::{Seen, World};
use crate::rootfs::{split, Node, Root};

/// Observes `new` ∪ the claimed targets.
pub fn observe(root: &mut Root, new: &Manifest, ev: &Evidence, gen_host: &Path) -> Result<World> {
    let mut targets: Vec<&str> = new.entries.iter().map(|e| e.target.as_str()).collect();
    targets.extend(ev.targets().filter(|t| new.get(t).is_none()));
    targets.sort_unstable();
    let mut world = World::new();
    for t in targets {
        let node = match inherited(&world, t) {
            Some(node) => node,
            None => root.node(&format!("etc/{t}"))?,
        };
        let mut seen = Seen::of(node);
        let entry = new.get(t);
        if matches!(seen.node, Node::Dir(_))
            && ev.is_dir(t)
            && entry.is_none_or(|e| e.kind != Kind::Dir)
        {
            seen.listing = Some(root.list(&format!("etc/{t}"))?);
        }
        if let (Node::File(_), Some(e)) = (&seen.node, entry) {
            if e.kind == Kind::Symlink {
                seen.new_sha = Some(match &e.sha256 {
                    Some(h) => h.clone(),
                    None => payload_sha(gen_host, t),
                });
            }
        }
        world.insert(t.to_owned(), seen);
    }
    Ok(world)
}

/// What a path is known to be from its parent's observation, without a syscall.
fn inherited(world: &World, t: &str) -> Option<Node> {
    let (parent, _) = split(t);
    if parent.is_empty() {
        return None;
    }
    match &world.get(parent)?.node {
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
    match std::fs::read(&path) {
        Ok(bytes) => crate::rootfs::sha256_bytes(&bytes),
        // Unreadable (a dangling source, a directory): nothing can be identical to it.
        Err(_) => String::new(),
    }
}

/// Resolves the owners of copies to numbers, reading the root's own `passwd` and `group`
/// (never the host's NSS, like `systemd-tmpfiles --root`).
pub fn resolve_owners(root: &mut Root, new: &Manifest) -> Result<BTreeMap<String, (u32, u32)>> {
    let copies: Vec<_> = new
        .entries
        .iter()
        .filter(|e| e.kind == Kind::Copy)
        .collect();
    let named = copies
        .iter()
        .any(|e| matches!(e.uid, Some(Id::Name(_))) || matches!(e.gid, Some(Id::Name(_))));
    let (users, groups) = if named {
        (read_db(root, "etc/passwd")?, read_db(root, "etc/group")?)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut out = BTreeMap::new();
    for e in copies {
        let uid = lookup(e.uid.as_ref(), &users, &e.target, "user", "passwd")?;
        let gid = lookup(e.gid.as_ref(), &groups, &e.target, "group", "group")?;
        out.insert(e.target.clone(), (uid, gid));
    }
    Ok(out)
}

fn lookup(
    id: Option<&Id>,
    table: &[(String, u32)],
    target: &str,
    what: &str,
    file: &str,
) -> Result<u32> {
    match id {
        None => Ok(0),
        Some(Id::Num(n)) => Ok(*n),
        Some(Id::Name(name)) => table
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
            .with_context(|| {
                format!("/etc/{target}: {what} {name:?} is not in the root's /etc/{file}")
            }),
    }
}

/// `name:x:id:...` lines of a passwd-like file; missing file → empty.
fn read_db(root: &mut Root, rel: &str) -> Result<Vec<(String, u32)>> {
    let Some(bytes) = root.read_in_root(rel)? else {
        return Ok(Vec::new());
    };
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            Some((name.to_owned(), id))
        })
        .collect())
}
