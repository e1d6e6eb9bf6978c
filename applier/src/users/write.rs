//! Phase 3: the user database written, holding `/etc/.pwd.lock` the way `lckpwdf` takes it
//! (an `fcntl` record lock: a `flock` would not exclude `useradd`).
//!
//! Under the lock the files are read again, and planned again when they (or the ledgers or
//! password files) differ from what phase 1 planned: when `passwd` or `group` changed (a
//! `useradd` meanwhile), the switch stops before anything visible changed, and a rerun plans
//! with the new account; nothing is lost. When nothing differs, and the homes, linger files
//! and `shadow`'s mode are as phase 1 found them, phase 1's plan stands. Then `group`,
//! `passwd`, `shadow`, `subuid` and `subgid` are replaced in that order, each atomically, keeping its mode and
//! owner (new: 0644, and `shadow` 0640, group `shadow` when there is one); the mode is set
//! before any byte is written, so `shadow` is never readable by others. The ledgers come
//! last: a switch killed before them is planned again the same way, because the files already
//! hold what it allocated.

use std::time::Duration;

use anyhow::{bail, Result};

use etcflip_format::users::Users;

use super::files::id_of;
use super::ledger::{Ledgers, DIR};
use super::Report;
use crate::fs::lock::{Interrupted, NotLocked, RecordLock};
use crate::fs::{Node, Owner, Root};

/// How long phase 3 waits for another program holding `/etc/.pwd.lock`.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Writes what phase 1 planned (`before`), if the root still is as it was then. A signal
/// (`interrupted`) ends the wait for the lock; the journal lets a rerun finish.
pub(crate) fn write(
    root: &mut Root,
    decl: &Users,
    before: &Report,
    interrupted: Interrupted,
) -> Result<()> {
    let rel = "etc/.pwd.lock";
    let shown = root.show(rel);
    let fd = root.open_lock_file(rel)?;
    let _lock = match RecordLock::take(fd, (&shown, LOCK_WAIT), interrupted)? {
        Ok(lock) => lock,
        Err(NotLocked::Interrupted(why)) => bail!(
            "interrupted by {why} while waiting for {shown}; nothing visible was switched; \
             run the switch again to finish"
        ),
        Err(_) => bail!(
            "{shown} stayed locked by another program (useradd, passwd…) for {} s; nothing \
             visible was switched; run the switch again",
            LOCK_WAIT.as_secs()
        ),
    };
    let inputs = super::read_inputs(root, decl)?;
    let replanned;
    let now = if inputs == before.inputs && super::looks_the_same(root, decl, before)? {
        // Reading cannot see a file that became a link or a mount point since phase 1.
        let clashes = super::unwritable(root)?;
        if !clashes.is_empty() {
            bail!("{}", clashes.join("\n"));
        }
        before
    } else {
        replanned = super::plan_from(root, decl, inputs)?;
        &replanned
    };
    if now.passwd != before.passwd || now.group != before.group || !now.clashes.is_empty() {
        bail!(
            "the user database changed while this switch planned; nothing visible was \
             switched; run the switch again"
        );
    }
    if now.current {
        return Ok(());
    }
    let p = &now.planned;
    // The ledgers first as the union of before and after: a switch killed among the files
    // leaves every new id recorded and every account it made still counted as declared, so
    // that whatever generation runs next treats them as declarative, never as run-time ones.
    let mut early = now.recorded.clone();
    early.uids.extend(p.db.ledgers.uids.clone());
    early.gids.extend(p.db.ledgers.gids.clone());
    early.auto_subuids.extend(p.db.ledgers.auto_subuids.clone());
    early
        .declarative_users
        .extend(p.db.ledgers.declarative_users.iter().cloned());
    early
        .declarative_groups
        .extend(p.db.ledgers.declarative_groups.iter().cloned());
    write_ledgers(root, &early)?;
    let shadow_gid =
        p.db.group
            .get("shadow")
            .and_then(|g| id_of(g, 2))
            .unwrap_or(0);
    replace(root, "etc/group", &p.db.group.render(), (0o644, 0), 0)?;
    replace(root, "etc/passwd", &p.db.passwd.render(), (0o644, 0), 0)?;
    replace(
        root,
        "etc/shadow",
        &p.db.shadow.render(),
        (0o640, shadow_gid),
        0o027,
    )?;
    replace(root, "etc/subuid", &p.db.subuid.render(), (0o644, 0), 0)?;
    replace(root, "etc/subgid", &p.db.subgid.render(), (0o644, 0), 0)?;
    write_ledgers(root, &p.db.ledgers)?;
    super::homes::apply(root, &now.homes)
}

/// Replaces `rel` with `text` unless it already holds it, keeping its mode and owner (new:
/// `mode`, root and group `gid`) without the bits in `never` (`shadow` is never left
/// group-writable or readable by others, whatever it was). A link or a mount point there is
/// not replaced.
fn replace(
    root: &mut Root,
    rel: &str,
    text: &str,
    (mode, gid): (u32, u32),
    never: u32,
) -> Result<()> {
    let (mode, owner) = match root.node(rel)? {
        Node::Absent => (mode, Owner { uid: 0, gid }),
        Node::File(f) if f.meta.mount => bail!(
            "{} is a mount point: etcflip does not replace it",
            root.show(rel)
        ),
        Node::File(f) => {
            let same = f.sha256 == crate::fs::sha256_bytes(text.as_bytes());
            if same && f.meta.mode & never == 0 {
                return Ok(());
            }
            (
                f.meta.mode,
                Owner {
                    uid: f.meta.uid,
                    gid: f.meta.gid,
                },
            )
        }
        other => bail!(
            "{} should be a regular file, found {other:?}: etcflip does not replace it",
            root.show(rel)
        ),
    };
    root.atomic_write_as(rel, &[text.as_bytes()], mode & !never, owner)
}

/// The ledgers, in `update-users-groups.pl`'s formats (see `ledger.rs`).
fn write_ledgers(root: &mut Root, l: &Ledgers) -> Result<()> {
    root.make_dirs(DIR)?;
    let names = |set: &std::collections::BTreeSet<String>| {
        set.iter().map(String::as_str).collect::<Vec<_>>().join(" ")
    };
    let files = [
        ("uid-map", serde_json::to_string(&l.uids)?),
        ("gid-map", serde_json::to_string(&l.gids)?),
        ("declarative-users", names(&l.declarative_users)),
        ("declarative-groups", names(&l.declarative_groups)),
        ("auto-subuid-map", serde_json::to_string(&l.auto_subuids)?),
    ];
    for (name, text) in files {
        replace(root, &format!("{DIR}/{name}"), &text, (0o644, 0), 0)?;
    }
    Ok(())
}
