//! The users plan, pure: from the declaration, the root's `passwd` and `group` and NixOS's
//! ledgers, the new tables, the new ledgers, one line per change, and the clashes that refuse
//! the switch. NixOS's rules, without its defects:
//! - every static id, every id on the root and every ledger id of another name is reserved
//!   before anything is allocated; a static id another name holds on the root is a clash, not
//!   a skip, and so is a declared id that differs from the account's id on the root;
//! - a new name gets its old id back from the ledger when it is free; otherwise system uids
//!   and all gids are allocated from 999 down to 400, normal uids from 1000 up to 29999;
//! - `mutableUsers`: accounts nobody declared are kept, unless the previous generation declared
//!   them (then they were removed from the declaration); without it, only declared accounts
//!   stay. Ledgers only grow.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use etcflip_format::borrowed::Str;
use etcflip_format::users::{User, Users, NOLOGIN};

use super::files::{id_of, Entry, Table};
use super::ledger::{Ledgers, Names};
use super::lines::Lines;
use super::shadow;

mod ids;
mod order;
mod subids;

use ids::{declared, settle_id, Holders, Ids, NORMAL, SYSTEM};
use order::Rows;

/// The user database: its five files and NixOS's ledgers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Database {
    pub(crate) passwd: Table,
    pub(crate) group: Table,
    pub(crate) shadow: Table,
    pub(crate) subuid: Table,
    pub(crate) subgid: Table,
    pub(crate) ledgers: Ledgers,
}

/// What the users phase finds on the root.
#[derive(Debug, Clone, Default)]
pub(crate) struct Found {
    pub(crate) db: Database,
    /// The declared `hashedPasswordFile`s as read under the root.
    pub(crate) password_files: BTreeMap<String, FileRead>,
    /// What salts derive from (an image's plan), else `None`: random.
    pub(crate) seed: Option<super::Seed>,
}

/// A file as read: its content, `None` when missing, or why it could not be read.
pub(crate) type FileRead = Result<Option<Vec<u8>>, String>;

/// The plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct Planned {
    /// The database as it will be.
    pub(crate) db: Database,
    /// One line per change, in order ("create user alice (uid 1000)").
    pub(crate) changes: Lines,
    /// Why the switch must be refused; nothing is written when this is not empty.
    pub(crate) clashes: Vec<String>,
    /// Declarations the root cannot satisfy (a password file missing, empty or holding
    /// more than a hash): invalid input, exit 2, nothing written.
    pub(crate) invalid: Vec<String>,
}

/// Plans the users phase (see the module comment).
pub(crate) fn plan(decl: &Users, found: &Found) -> Planned {
    let mut p = Planned {
        // A first switch reports about two lines per account.
        changes: Lines::with_capacity(2 * (decl.users.len() + decl.groups.len()), 48),
        ..Planned::default()
    };
    p.db.ledgers.clone_from(&found.db.ledgers);
    p.db.group.other.clone_from(&found.db.group.other);
    p.db.group.nis.clone_from(&found.db.group.nis);
    p.db.passwd.other.clone_from(&found.db.passwd.other);
    p.db.passwd.nis.clone_from(&found.db.passwd.nis);
    p.db.shadow.other.clone_from(&found.db.shadow.other);
    p.db.shadow.nis.clone_from(&found.db.shadow.nis);
    // The root's accounts that are declared, asked from the declaration's side: `Table::get`
    // looks through a small table and indexes a large one, and the set holds only these.
    let declared: HashSet<&str> = (decl.users.iter().map(|u| u.name.as_str()))
        .filter(|n| found.db.passwd.get(n).is_some())
        .collect();
    let removed = removed_users(decl, found, &declared);
    let gids = plan_groups(decl, found, &removed, &mut p);
    let kept = plan_users(decl, (found, &declared), &gids, &mut p);
    subids::plan(decl, found, &kept, &mut p);
    p.db.ledgers.declarative_groups = Names::new(decl.groups.iter().map(|g| g.name.as_str()));
    p.db.ledgers.declarative_users = Names::new(decl.users.iter().map(|u| u.name.as_str()));
    p
}

/// The accounts on the root this plan removes: undeclared ones the previous generation
/// declared, or, without `mutableUsers`, every undeclared one.
fn removed_users<'a>(
    decl: &Users,
    found: &'a Found,
    declared: &HashSet<&str>,
) -> BTreeSet<&'a str> {
    (found.db.passwd.entries.iter())
        .map(|e| &e[0])
        .filter(|n| !declared.contains(n))
        .filter(|n| !decl.mutable_users || found.db.ledgers.declarative_users.contains(n))
        .collect()
}

fn plan_groups(
    decl: &Users,
    found: &Found,
    removed: &BTreeSet<&str>,
    p: &mut Planned,
) -> BTreeMap<String, u32> {
    let declared_groups: HashSet<&str> = decl.groups.iter().map(|g| g.name.as_str()).collect();
    let holders = Holders::of(&found.db.group, 2);
    let statics = decl.groups.iter().filter_map(|g| declared(g.gid));
    let mut ids = Ids::new(holders.ids(), statics, &found.db.ledgers.gids);
    let mut gids = BTreeMap::new();
    let mut rows = Rows::with_capacity(decl.groups.len() + found.db.group.entries.len());
    for g in &decl.groups {
        let on_root = holders.by_name.get(g.name.as_str()).copied();
        let at = (on_root, declared(g.gid));
        let Some(gid) = settle_id(("group", &g.name), at, &holders, (&mut ids, SYSTEM), p) else {
            continue;
        };
        if p.db.ledgers.gids.get(g.name.as_str()) != Some(&gid) {
            p.db.ledgers.gids.insert(g.name.to_string(), gid);
        }
        gids.insert(g.name.to_string(), gid);
        let old = found.db.group.get(&g.name);
        let mut members: BTreeSet<&str> = g.members.iter().map(Str::as_str).collect();
        if decl.mutable_users {
            // Members added at run time stay; a member the previous generation declared is a
            // member only if this one declares it too (so taking a user out of a group works).
            let kept = old
                .map(|e| e[3].split(',').filter(|m| !m.is_empty()))
                .into_iter()
                .flatten();
            members.extend(kept.filter(|m| {
                !found.db.ledgers.declarative_users.contains(m) && !removed.contains(*m)
            }));
        }
        let members = members.into_iter().collect::<Vec<_>>().join(",");
        let pw = old.map_or("x", |e| &e[1]);
        if let Some(old) = old.filter(|e| e[3] != *members) {
            p.changes.push_fmt(format_args!(
                "set the members of group {}: {} → {members}",
                g.name, &old[3]
            ));
        }
        let entry = Entry::new([g.name.as_str(), pw, &gid.to_string(), &members]);
        rows.push(gid, entry, None);
    }
    for e in &found.db.group.entries {
        if declared_groups.contains(&e[0]) {
            continue;
        }
        let keep = decl.mutable_users && !found.db.ledgers.declarative_groups.contains(&e[0]);
        if stays(("group", "gid"), e, keep, p) {
            // A removed user leaves the groups that stay.
            let members: Vec<&str> = (e[3].split(','))
                .filter(|m| !m.is_empty() && !removed.contains(*m))
                .collect();
            let kept = e.with(3, &members.join(","));
            rows.push(id_of(e, 2).unwrap_or(u32::MAX), kept, None);
        }
    }
    p.db.group.set_entries(rows.sorted().0);
    gids
}

/// Whether an account on the root that nobody declares stays (`keep`); when it goes, the
/// removal is noted, and removing root (id 0) is a clash.
fn stays((kind, what): (&str, &str), e: &Entry, keep: bool, p: &mut Planned) -> bool {
    if !keep {
        if id_of(e, 2) == Some(0) {
            p.clashes.push(format!(
                "{kind} {} ({what} 0) would be removed: declare it",
                &e[0]
            ));
        } else {
            p.changes.push_fmt(format_args!(
                "remove {kind} {} (its {what} stays reserved)",
                &e[0]
            ));
        }
    }
    keep
}

/// Plans the users; returns the accounts on the root that nobody declares and that stay.
fn plan_users(
    decl: &Users,
    (found, declared_users): (&Found, &HashSet<&str>),
    gids: &BTreeMap<String, u32>,
    p: &mut Planned,
) -> BTreeSet<String> {
    let mut kept = BTreeSet::new();
    // Recorded at the end, at once: a thousand new names are one sorted build, not a
    // thousand inserts (no declared name repeats, and ids are allocated from `found`'s ledger).
    let mut new_uids = Vec::new();
    let holders = Holders::of(&found.db.passwd, 2);
    let statics = decl.users.iter().filter_map(|u| declared(u.uid));
    let mut ids = Ids::new(holders.ids(), statics, &found.db.ledgers.uids);
    let mut rows = Rows::with_capacity(decl.users.len() + found.db.passwd.entries.len());
    for u in &decl.users {
        let Some(gid) = gids
            .get(u.group.as_str())
            .copied()
            .or_else(|| u.group.parse().ok())
        else {
            // Its group clashed (reported there) or was never declared (refused at build time).
            continue;
        };
        let on_root = holders.by_name.get(u.name.as_str()).copied();
        let range = if u.is_system_user { SYSTEM } else { NORMAL };
        let at = (on_root, declared(u.uid));
        let Some(uid) = settle_id(("user", &u.name), at, &holders, (&mut ids, range), p) else {
            continue;
        };
        if p.db.ledgers.uids.get(u.name.as_str()) != Some(&uid) {
            new_uids.push((u.name.to_string(), uid));
        }
        let row = passwd_row(u, (uid, gid), found.db.passwd.get(&u.name), p);
        let shadow = shadow_row(u, decl.mutable_users, found, p);
        rows.push(uid, row, shadow);
    }
    for e in &found.db.passwd.entries {
        if declared_users.contains(&e[0]) {
            continue;
        }
        let keep = decl.mutable_users && !found.db.ledgers.declarative_users.contains(&e[0]);
        if stays(("user", "uid"), e, keep, p) {
            let shadow = found.db.shadow.get(&e[0]).cloned();
            rows.push(id_of(e, 2).unwrap_or(u32::MAX), e.clone(), shadow);
            kept.insert(e[0].to_owned());
        }
    }
    let (passwd, shadow) = rows.sorted();
    p.db.passwd.set_entries(passwd);
    p.db.shadow.set_entries(shadow);
    if p.db.ledgers.uids.is_empty() {
        p.db.ledgers.uids = new_uids.into_iter().collect();
    } else {
        p.db.ledgers.uids.extend(new_uids);
    }
    kept
}

/// The passwd entry of a declared user (`old`: its entry on the root).
fn passwd_row(u: &User, (uid, gid): (u32, u32), old: Option<&Entry>, p: &mut Planned) -> Entry {
    let shell = u.shell.as_deref().or(old.map(|e| &e[6])).unwrap_or(NOLOGIN);
    let pw = old.map_or("x", |e| &e[1]);
    let (mut u_buf, mut g_buf) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (uid_text, gid_text) = (u_buf.format(uid), g_buf.format(gid));
    let row = Entry::new([
        &u.name,
        pw,
        uid_text,
        gid_text,
        &u.description,
        &u.home,
        shell,
    ]);
    if let Some(old) = old.filter(|e| **e != row) {
        p.changes.push_fmt(format_args!(
            "change user {}: {} → {}",
            u.name,
            old.line(),
            row.line()
        ));
    }
    row
}

/// The shadow entry of a declared user; `None` (and the reason in `p.invalid`) when its
/// password file cannot be used.
fn shadow_row(u: &User, mutable: bool, found: &Found, p: &mut Planned) -> Option<Entry> {
    let old = found.db.shadow.get(&u.name);
    let mut read = |path: &str| match found.password_files.get(path) {
        Some(Ok(content)) => Ok(content.clone()),
        Some(Err(why)) => Err(anyhow::anyhow!("{why}")),
        None => Ok(None),
    };
    let old_field = old.map(|e| &e[1]);
    match shadow::password(u, (old_field, mutable), &mut read, found.seed.as_ref()) {
        Ok((field, source)) => {
            if old_field != Some(&*field) {
                p.changes.push_parts(&[
                    "set the password of user ",
                    &u.name,
                    ": ",
                    &source.label(),
                ]);
            }
            Some(shadow::entry(u, &field, old))
        }
        Err(why) => {
            p.invalid.push(why);
            None
        }
    }
}

#[cfg(test)]
mod tests;
