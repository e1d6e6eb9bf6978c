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
use super::ledger::{Ledgers, Texts, DIR, FILES as FILES_OF_LEDGERS};
use super::place::{Place, ReadFrom, MARK, NAMES};
use super::{Full, Report};
use crate::fs::lock::{Interrupted, NotLocked, RecordLock};
use crate::fs::{Node, Owner, Root};

/// How long phase 3 waits for another program holding `/etc/.pwd.lock`.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Removes the temporary files a killed run of this phase left beside the files it writes
/// (`fs::temp_name`): in `/etc`, and in `/var/lib/nixos` (the ledgers, and the default place
/// of the user database with its mark). Run under the lock at every switch, since the next
/// may not write those files again (a generation without users). Another place is swept by
/// [`sweep_place`] for the generations a killed run was switching to.
pub(crate) fn sweep(root: &mut Root) -> Result<()> {
    for name in NAMES {
        root.remove_tree_if_present(&crate::fs::temp_name(&crate::fs::join("etc", name)))?;
    }
    sweep_place(root, DIR)?;
    for name in FILES_OF_LEDGERS {
        root.remove_tree_if_present(&crate::fs::temp_name(&crate::fs::join(DIR, name)))?;
    }
    Ok(())
}

/// Removes what a killed run left in the place `dir` (relative to the root, or absolute in
/// it) of a user database kept outside `/etc`: its files' and its mark's temporary names.
pub(crate) fn sweep_place(root: &mut Root, dir: &str) -> Result<()> {
    let dir = dir.trim_start_matches('/');
    for name in NAMES.iter().chain(&[MARK]) {
        root.remove_tree_if_present(&crate::fs::temp_name(&crate::fs::join(dir, name)))?;
    }
    Ok(())
}

/// Writes what phase 1 planned (`before`), if the root still is as it was then. A signal
/// (`interrupted`) ends the wait for the lock; the journal lets a rerun finish.
pub(crate) fn write(
    root: &mut Root,
    decl: &Users,
    before: &Report,
    interrupted: Interrupted,
) -> Result<()> {
    let rel = super::place::Place::of(decl).lock_file(root)?;
    let shown = root.show(&rel);
    let fd = root.open_lock_file(&rel)?;
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
    let Some(full) = before.full() else {
        bail!("internal: phase 3 was given no plan of the users phase");
    };
    let inputs = super::read_inputs(root, decl, full.inputs.seed)?;
    let replanned;
    let now = if inputs == full.inputs && super::looks_the_same(root, decl, full)? {
        // Reading cannot see a file that became a link or a mount point since phase 1.
        let clashes = super::unwritable(root, &full.place)?;
        if !clashes.is_empty() {
            bail!("{}", clashes.join("\n"));
        }
        before
    } else {
        replanned = super::plan_from(root, decl, inputs)?;
        &replanned
    };
    let plan = now
        .full()
        .filter(|_| now.passwd_group() == before.passwd_group() && now.clashes.is_empty());
    let Some(plan) = plan else {
        bail!(
            "the user database changed while this switch planned; nothing visible was \
             switched; run the switch again"
        );
    };
    let ledgers = if now.current {
        plan.inputs.ledgers.clone()
    } else {
        write_plan(root, plan)?
    };
    let proof = super::seal::Proof {
        files: [0, 1, 2, 3, 4].map(|i| plan.rendered[i].as_str()),
        ledgers: &ledgers,
        password_files: &plan.inputs.password_files,
        passwd: &plan.planned.db.passwd,
    };
    if plan.place.elsewhere() {
        // The seal proves only files in /etc (see `seal.rs`): elsewhere, every switch plans.
        return super::seal::remove(root);
    }
    super::seal::record(root, decl, &proof)
}

/// Writes `plan` (see the module comment for the order), each file only if it differs
/// from what the plan read under the lock; returns the ledgers' texts as written.
fn write_plan(root: &mut Root, plan: &Full) -> Result<Texts> {
    let p = &plan.planned;
    let found = &plan.inputs;
    // The ledgers first as the union of before and after: a switch killed among the files
    // leaves every new id recorded and every account it made still counted as declared, so
    // that whatever generation runs next treats them as declarative, never as run-time ones.
    let mut ledgers = found.ledgers.clone();
    // Written unless the new ledgers add nothing to the old (then the union is on disk); when
    // the old ones hold nothing more (a first switch, a switch that only adds), the union is
    // the new ledgers, and nothing is left to write after the files.
    let mut settled = false;
    if !p.db.ledgers.within(&plan.recorded) {
        if plan.recorded.within(&p.db.ledgers) {
            ledgers = write_ledgers(root, &p.db.ledgers, &ledgers)?;
            settled = true;
        } else {
            ledgers = write_ledgers(root, &plan.recorded.union(&p.db.ledgers), &ledgers)?;
        }
    }
    let shadow_gid =
        p.db.group
            .get("shadow")
            .and_then(|g| id_of(g, 2))
            .unwrap_or(0);
    // (index in FILES, mode and group when new, bits never left)
    let order = [
        (1, 0o644, 0, 0),
        (0, 0o644, 0, 0),
        (2, 0o640, shadow_gid, 0o027),
    ];
    let order = order
        .into_iter()
        .chain([(3, 0o644, 0, 0), (4, 0o644, 0, 0)]);
    let place = &plan.place;
    if place.elsewhere() {
        root.make_dirs(place.dir())?;
    }
    let mut moved_back = Vec::new();
    for (i, mode, gid, never) in order {
        // What the place's file held, when the plan read it from there; the file read
        // otherwise, whose mode and owner a new file takes.
        let (had, like) = match found.from[i] {
            ReadFrom::Place => (Some(found.texts[i].as_str()), None),
            ReadFrom::Etc => (None, Some(Like::File(format!("etc/{}", NAMES[i])))),
        };
        // Back in /etc: a link etcflip made to a place is replaced by the file it showed.
        let back = if place.elsewhere() {
            None
        } else {
            Place::ours_link(root, i)?
        };
        let like = back.clone().map(Like::LinkTo).or(like);
        let file = place.file(i);
        replace(
            root,
            &file,
            (&plan.rendered[i], had),
            (mode, gid, never),
            like.as_ref(),
        )?;
        moved_back.extend(back);
    }
    // Once every link is a file again (not before: the mark is what proves them etcflip's).
    for shown in &moved_back {
        Place::unmark(root, shown)?;
    }
    place.mark(root)?;
    place.link(root)?;
    if !settled {
        ledgers = write_ledgers(root, &p.db.ledgers, &ledgers)?;
    }
    super::homes::apply(root, &plan.homes)?;
    Ok(ledgers)
}

/// What a file [`replace`] makes takes its mode and owner from, besides its own.
enum Like {
    /// The file the content was read from, moved: its mode and owner.
    File(String),
    /// The link at the path, which etcflip made, is replaced: the mode of the file it showed
    /// (the owner is root, whoever owned that file).
    LinkTo(String),
}

/// Replaces `rel` with `text` unless it already holds it (`had`: what it held when read
/// under the lock; `None` if unknown), keeping its mode and owner (`like`'s when given, else
/// its own; new: `mode`, root and group `gid`) without the bits in `never` (`shadow` is never
/// left group-writable or readable by others, whatever it was). A link or a mount point
/// there is not replaced, except the link [`Like::LinkTo`] names.
fn replace(
    root: &mut Root,
    rel: &str,
    (text, had): (&str, Option<&str>),
    (mode, gid, never): (u32, u32, u32),
    like: Option<&Like>,
) -> Result<()> {
    let new = (mode, Owner { uid: 0, gid });
    let like_rel = match like {
        Some(Like::File(r) | Like::LinkTo(r)) => Some(r.clone()),
        None => None,
    };
    let liked = match like_rel.map(|r| root.node_with(&r, false)).transpose()? {
        Some(Node::File(f)) if matches!(like, Some(Like::File(_))) => Some((
            f.meta.mode,
            Owner {
                uid: f.meta.uid,
                gid: f.meta.gid,
            },
        )),
        Some(Node::File(f)) => Some((f.meta.mode, new.1)),
        _ => None,
    };
    let (mode, owner) = match root.node_with(rel, false)? {
        Node::Absent => liked.unwrap_or(new),
        Node::Link(_) if matches!(like, Some(Like::LinkTo(_))) => liked.unwrap_or(new),
        Node::File(f) if f.meta.mount => bail!(
            "{} is a mount point: etcflip does not replace it",
            root.show(rel)
        ),
        // Moved here: the moved file's mode and owner, not those of what it replaces.
        Node::File(_) if liked.is_some() && had.is_none() => liked.unwrap_or(new),
        Node::File(f) => {
            if had == Some(text) && f.meta.mode & never == 0 {
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

/// Writes the ledgers in `update-users-groups.pl`'s formats (see `ledger.rs`), each unless
/// it holds that already (`had`: their texts, `None` where missing); returns their texts now.
fn write_ledgers(root: &mut Root, l: &Ledgers, had: &Texts) -> Result<Texts> {
    root.make_dirs(DIR)?;
    let texts = [
        serde_json::to_string(&l.uids)?,
        serde_json::to_string(&l.gids)?,
        l.declarative_users.text().to_owned(),
        l.declarative_groups.text().to_owned(),
        serde_json::to_string(&l.auto_subuids)?,
    ];
    for ((name, text), had) in FILES_OF_LEDGERS.iter().zip(&texts).zip(had) {
        let rel = format!("{DIR}/{name}");
        replace(root, &rel, (text, had.as_deref()), (0o644, 0, 0), None)?;
    }
    Ok(texts.map(Some))
}
