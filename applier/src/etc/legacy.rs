//! Migration from an `/etc` managed by NixOS's `setup-etc.pl`.
//!
//! When no etcflip state exists but `/etc/static` is a link and `/etc/.clean` exists, the root
//! was set up by `setup-etc.pl`. Its paths are ours the way that script saw them:
//! - a link whose text is exactly `/etc/static/<its own path>` (what the script writes);
//! - a path listed in `/etc/.clean` (its copies and direct links; no hash was recorded);
//! - the directories holding them.
//!
//! Finding the links needs one walk of `/etc` (not following links, not crossing mounts). It
//! happens once: the first switch records etcflip's own state, and later runs never walk,
//! unless the overlay was moved behind etcflip's back (see below).
//!
//! **Rollback.** While `/etc/.clean` exists and the overlay is `/etc/static`, every switch
//! rewrites it to list etcflip's own copies and direct links ([`keep_clean`]). A rollback to a
//! NixOS generation that still uses `setup-etc.pl` then removes exactly what etcflip made and
//! the older configuration lacks (its cleanup treats `/etc/static/<path>` links as its own, and
//! etcflip's links have that form). When etcflip is switched to again, the overlay no longer
//! shows the generation etcflip recorded: the switch then trusts nothing it recorded, looks at
//! every entry and counts the legacy paths as ours again (see `switch`).

use anyhow::Result;

use crate::etc::evidence::{Claim, Evidence};
use crate::fs::{join, Node, Root};
use crate::manifest::{is_same_or_below, Kind, Manifest, STATE_DIR_NAME};

/// The legacy flip point.
pub(crate) const LEGACY_OVERLAY: &str = "/etc/static";

/// Claims of a legacy NixOS `/etc`, or `None` when the root does not look like one.
pub(crate) fn evidence(root: &mut Root) -> Result<Option<Evidence<'static>>> {
    if !matches!(root.node_with("etc/static", false)?, Node::Link(_)) {
        return Ok(None);
    }
    let clean = match root.node_with("etc/.clean", false)? {
        Node::File(_) => String::from_utf8_lossy(&root.read("etc/.clean")?).into_owned(),
        _ => return Ok(None),
    };
    let mut ev = Evidence::default();
    for line in clean.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if crate::manifest::check_target(line).is_ok() {
            claim_with_parents(&mut ev, line, Claim::LegacyFile);
        }
    }
    let dev = match root.node_with("etc", false)? {
        Node::Dir(m) => m.dev,
        _ => return Ok(Some(ev)),
    };
    walk(root, "", dev, &mut ev)?;
    Ok(Some(ev))
}

fn walk(root: &mut Root, rel: &str, dev: u64, ev: &mut Evidence<'static>) -> Result<()> {
    let dir = if rel.is_empty() {
        "etc".to_owned()
    } else {
        format!("etc/{rel}")
    };
    for name in root.list(&dir)? {
        let t = join(rel, &name);
        if is_same_or_below(&t, STATE_DIR_NAME) || t == "static" {
            continue;
        }
        match root.node_with(&format!("etc/{t}"), false)? {
            Node::Link(text) if text == format!("{LEGACY_OVERLAY}/{t}") => {
                claim_with_parents(ev, &t, Claim::Link(text.into()));
            }
            Node::Dir(m) if m.dev == dev => walk(root, &t, dev, ev)?,
            _ => {}
        }
    }
    Ok(())
}

fn claim_with_parents(ev: &mut Evidence<'static>, target: &str, claim: Claim<'static>) {
    ev.add(target.to_owned().into(), claim);
    let mut t = target;
    while let Some((parent, _)) = t.rsplit_once('/') {
        ev.add(parent.to_owned().into(), Claim::Dir);
        t = parent;
    }
}

/// Rewrites `/etc/.clean`, if there is one and `new` uses the legacy overlay, to list `new`'s
/// copies and direct links the way `setup-etc.pl` does (sorted relative paths, one a line).
/// Nothing is written when it already does.
pub(crate) fn keep_clean(root: &mut Root, new: &Manifest) -> Result<()> {
    if new.overlay != LEGACY_OVERLAY || !matches!(root.node_with(CLEAN, false)?, Node::File(_)) {
        return Ok(());
    }
    let mut text = String::new();
    for e in &new.entries {
        if matches!(e.kind, Kind::Copy | Kind::DirectSymlink) {
            text.push_str(&e.target);
            text.push('\n');
        }
    }
    if root.read(CLEAN)? == text.as_bytes() {
        return Ok(());
    }
    root.atomic_write(CLEAN, text.as_bytes())
}

/// setup-etc.pl's list of its copies.
const CLEAN: &str = "etc/.clean";

/// Removes what a killed [`keep_clean`] left (we hold the lock).
pub(crate) fn sweep(root: &mut Root) -> Result<()> {
    root.remove_tree_if_present(&crate::fs::temp_name(CLEAN))
}
