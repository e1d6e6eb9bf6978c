//! The user database, the second domain: `group`, `passwd`, `shadow`, `subuid` and `subgid`
//! merged from a generation's `users` part, with NixOS's ledgers in `/var/lib/nixos`, homes
//! and lingering. Phase 1 plans it (`plan`); phase 3 writes it (`write`).
//!
//! - `files.rs` reads the colon-separated files keeping what it does not understand;
//! - `ledger.rs` reads NixOS's ledgers in their own formats;
//! - `plan/` plans, purely: ids, members, removals, subordinate ids, and the clashes that
//!   refuse a switch; `shadow.rs` gives each declared user its password field (never
//!   re-salted) and expiry;
//! - `homes.rs` finds and makes homes and linger files;
//! - `write.rs` writes it all under `/etc/.pwd.lock`, planning again under the lock.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use etcflip_format::users::Users;

use crate::errors::Invalid;
use crate::fs::{Node, Root};

pub(crate) mod files;
mod homes;
mod ledger;
mod plan;
mod shadow;
mod write;

pub(crate) use write::write;

/// What the users phase would do, as a switch reports it. With `--json`: `changes`,
/// `clashes` (when any), `passwd` and `group` as they would be, and `uid_map` and `gid_map`,
/// NixOS's ledgers as they would be (they only grow), taken from the plan when it is shown
/// rather than copied into every report (a re-switch at every boot shows none).
#[derive(Debug, Clone)]
pub struct Report {
    /// One line per change ("create user alice (uid 1000)").
    pub changes: Vec<String>,
    /// Why the switch is refused (an id another account holds on the root); nothing written.
    pub clashes: Vec<String>,
    /// `/etc/passwd` as it would be.
    pub passwd: String,
    /// `/etc/group` as it would be.
    pub group: String,
    /// Whether the files and ledgers already are what the plan makes: then the phase writes
    /// nothing.
    pub(crate) current: bool,
    /// The plan itself, for the phase that writes it.
    pub(crate) planned: plan::Planned,
    /// Homes and linger files to make or fix.
    pub(crate) homes: Vec<homes::Action>,
    /// Whether `shadow` was found open to others.
    pub(crate) shadow_open: bool,
    /// The ledgers as this plan read them.
    pub(crate) recorded: ledger::Ledgers,
    /// What the plan was made from (phase 3 plans again only when the root changed).
    pub(crate) inputs: Inputs,
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'r> {
            changes: &'r [String],
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            clashes: &'r [String],
            passwd: &'r str,
            group: &'r str,
            uid_map: &'r BTreeMap<String, u32>,
            gid_map: &'r BTreeMap<String, u32>,
        }
        Shown {
            changes: &self.changes,
            clashes: &self.clashes,
            passwd: &self.passwd,
            group: &self.group,
            uid_map: &self.planned.db.ledgers.uids,
            gid_map: &self.planned.db.ledgers.gids,
        }
        .serialize(s)
    }
}

/// What the users phase reads from the root, as it read it: the five files, the ledgers and
/// the declared password files. The plan is a function of these and the declaration (and of
/// the homes, which it looks at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inputs {
    texts: [String; 5],
    ledgers: ledger::Texts,
    password_files: BTreeMap<String, Result<Option<Vec<u8>>, String>>,
}

/// Reads what the users phase needs from the root (its own files, never the host's NSS).
pub(crate) fn read_inputs(root: &mut Root, decl: &Users) -> Result<Inputs> {
    Ok(Inputs {
        texts: [
            read(root, "etc/passwd")?,
            read(root, "etc/group")?,
            read(root, "etc/shadow")?,
            read(root, "etc/subuid")?,
            read(root, "etc/subgid")?,
        ],
        ledgers: ledger::read(root)?,
        password_files: password_files(root, decl),
    })
}

/// Reads what the users phase needs from the root and plans it.
pub(crate) fn plan(root: &mut Root, decl: &Users) -> Result<Report> {
    let inputs = read_inputs(root, decl)?;
    plan_from(root, decl, inputs)
}

/// Plans the users phase on what [`read_inputs`] read.
pub(crate) fn plan_from(root: &mut Root, decl: &Users, inputs: Inputs) -> Result<Report> {
    let Inputs {
        texts,
        ledgers,
        password_files,
    } = inputs;
    let found = plan::Found {
        db: plan::Database {
            passwd: files::Table::parse(&texts[0], 7),
            group: files::Table::parse(&texts[1], 4),
            shadow: files::Table::parse(&texts[2], 9),
            subuid: files::Table::parse(&texts[3], 3),
            subgid: files::Table::parse(&texts[4], 3),
            ledgers: ledger::Ledgers::parse(root, &ledgers)?,
        },
        password_files,
    };
    let mut p = plan::plan(decl, &found);
    p.clashes.extend(unwritable(root)?);
    if !p.invalid.is_empty() {
        return Err(Invalid::many("the users part", p.invalid).into());
    }
    let rendered = [
        p.db.passwd.render(),
        p.db.group.render(),
        p.db.shadow.render(),
        p.db.subuid.render(),
        p.db.subgid.render(),
    ];
    let homes = homes::look(root, decl, (&p.db.passwd, &found.db.passwd))?;
    p.changes.extend(homes.iter().map(ToString::to_string));
    let shadow_open = shadow_open(root)?;
    if shadow_open {
        p.changes
            .push("make /etc/shadow unreadable by others".to_owned());
    }
    let current = rendered == texts
        && p.db.ledgers == found.db.ledgers
        && !homes.iter().any(homes::Action::acts)
        && !shadow_open;
    let [passwd, group, ..] = rendered;
    Ok(Report {
        changes: std::mem::take(&mut p.changes),
        clashes: std::mem::take(&mut p.clashes),
        passwd,
        group,
        current,
        planned: p,
        homes,
        shadow_open,
        recorded: found.db.ledgers,
        inputs: Inputs {
            texts,
            ledgers,
            password_files: found.password_files,
        },
    })
}

/// Whether `shadow` is readable by others or group-writable: fixed even when its lines are
/// right.
fn shadow_open(root: &mut Root) -> Result<bool> {
    Ok(matches!(root.node_with("etc/shadow", false)?,
        Node::File(f) if f.meta.mode & 0o027 != 0))
}

/// Whether what `before` looked at besides its [`Inputs`] (homes, linger files, whether
/// `shadow` is open) is still as it found it, so that its plan still stands.
pub(crate) fn looks_the_same(root: &mut Root, decl: &Users, before: &Report) -> Result<bool> {
    let found_passwd = files::Table::parse(&before.inputs.texts[0], 7);
    let homes = homes::look(root, decl, (&before.planned.db.passwd, &found_passwd))?;
    Ok(homes == before.homes && shadow_open(root)? == before.shadow_open)
}

/// The files phase 3 would replace that it cannot: only a regular file (or nothing) is
/// replaced, and only in a real directory; anything else (a link into `/persist`, a bind
/// mount) is found here, before anything is written, not half-way through the phase.
fn unwritable(root: &mut Root) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let ledgers = ledger::FILES.iter().map(|f| format!("{}/{f}", ledger::DIR));
    let files = [
        "etc/group",
        "etc/passwd",
        "etc/shadow",
        "etc/subuid",
        "etc/subgid",
    ];
    for rel in files.iter().map(|f| (*f).to_owned()).chain(ledgers) {
        let ok = match root.node_with(&rel, false)? {
            Node::Absent => true,
            Node::File(f) => !f.meta.mount,
            _ => false,
        };
        if !ok {
            out.push(format!(
                "{} is not a regular file etcflip can replace (a link, a mount point, or below \
                 one): nothing was written",
                root.show(&rel)
            ));
        }
    }
    Ok(out)
}

/// Every declared `hashedPasswordFile`, read under the root (never the host's).
fn password_files(
    root: &mut Root,
    decl: &Users,
) -> BTreeMap<String, Result<Option<Vec<u8>>, String>> {
    let paths = decl
        .users
        .iter()
        .filter_map(|u| u.hashed_password_file.as_ref());
    paths
        .map(|p| {
            let read = root
                .read_in_root(p.trim_start_matches('/'))
                .map_err(|e| format!("{e:#}"));
            (p.to_string(), read)
        })
        .collect()
}

/// A file of the user database as text; missing is empty.
fn read(root: &mut Root, rel: &str) -> Result<String> {
    let bytes = root.read_in_root(rel)?.unwrap_or_default();
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{} is not UTF-8", root.show(rel)))
}
