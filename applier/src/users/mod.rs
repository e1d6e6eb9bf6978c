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

use std::borrow::Cow;
use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use etcflip_format::users::Users;

use crate::errors::Invalid;
use crate::fs::{Node, Root};

pub(crate) mod files;
mod homes;
mod ledger;
mod lines;
pub(crate) mod names;
mod place;
mod plan;
pub(crate) mod seal;
mod shadow;
mod write;

pub use lines::Lines;

/// What a reproducible plan derives its salts from (see `shadow.rs`); `None` in a plan: random
/// salts.
pub type Seed = [u8; 32];
pub(crate) use write::{sweep, sweep_place, write};

/// The user database files in `/etc`, relative to the root, in the order [`Inputs`] holds
/// them: where they are unless the declaration puts them elsewhere (`place.rs`). The seal
/// serves only this place.
const FILES: [&str; 5] = [
    "etc/passwd",
    "etc/group",
    "etc/shadow",
    "etc/subuid",
    "etc/subgid",
];

/// What the users phase would do, as a switch reports it. With `--json`: `changes`,
/// `clashes` (when any), `passwd` and `group` as they would be, and `uid_map` and `gid_map`,
/// NixOS's ledgers as they would be (they only grow), taken from the plan when it is shown
/// rather than copied into every report (a re-switch at every boot shows none).
#[derive(Debug, Clone)]
pub struct Report {
    /// One line per change ("create user alice (uid 1000)").
    pub changes: Lines,
    /// Why the switch is refused (an id another account holds on the root); nothing written.
    pub clashes: Vec<String>,
    /// Whether the files and ledgers already are what the plan makes: then the phase writes
    /// nothing.
    pub(crate) current: bool,
    /// What the report stands on.
    pub(crate) basis: Basis,
}

/// What a [`Report`] stands on.
#[derive(Debug, Clone)]
pub(crate) enum Basis {
    /// A plan, made from the root and the declaration.
    Planned(Box<Full>),
    /// The seal, which held: the root is as the last switch to this generation left it, so
    /// nothing was planned (see `seal.rs`). The files' texts as they are, for the report.
    Sealed {
        passwd: String,
        group: String,
        uid_map: Option<String>,
        gid_map: Option<String>,
    },
}

/// A plan of the users phase, with what phase 3 needs to write it.
#[derive(Debug, Clone)]
pub(crate) struct Full {
    /// The five files as the plan makes them, in [`FILES`]' order.
    pub(crate) rendered: [String; 5],
    /// The plan itself.
    pub(crate) planned: plan::Planned,
    /// Homes and linger files to make or fix.
    pub(crate) homes: Vec<homes::Action>,
    /// Whether `shadow` was found open to others.
    pub(crate) shadow_open: bool,
    /// Where the files live.
    pub(crate) place: place::Place,
    /// The ledgers as this plan read them.
    pub(crate) recorded: ledger::Ledgers,
    /// What the plan was made from (phase 3 plans again only when the root changed).
    pub(crate) inputs: Inputs,
}

impl Report {
    /// `passwd` and `group` as they would be.
    pub(crate) fn passwd_group(&self) -> (&str, &str) {
        match &self.basis {
            Basis::Planned(full) => (&full.rendered[0], &full.rendered[1]),
            Basis::Sealed { passwd, group, .. } => (passwd, group),
        }
    }

    /// The plan, unless the seal made one needless.
    pub(crate) fn full(&self) -> Option<&Full> {
        match &self.basis {
            Basis::Planned(full) => Some(full),
            Basis::Sealed { .. } => None,
        }
    }

    /// `passwd` and `group` as they would be, as tables (owner names resolve in them).
    pub(crate) fn tables(&self) -> (Cow<'_, files::Table>, Cow<'_, files::Table>) {
        match &self.basis {
            Basis::Planned(full) => (
                Cow::Borrowed(&full.planned.db.passwd),
                Cow::Borrowed(&full.planned.db.group),
            ),
            Basis::Sealed { passwd, group, .. } => (
                Cow::Owned(files::Table::parse(passwd, 7)),
                Cow::Owned(files::Table::parse(group, 4)),
            ),
        }
    }
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'r> {
            changes: &'r Lines,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            clashes: &'r [String],
            passwd: &'r str,
            group: &'r str,
            uid_map: Cow<'r, BTreeMap<String, u32>>,
            gid_map: Cow<'r, BTreeMap<String, u32>>,
        }
        let (passwd, group) = self.passwd_group();
        let (uid_map, gid_map) = match &self.basis {
            Basis::Planned(full) => (
                Cow::Borrowed(&full.planned.db.ledgers.uids),
                Cow::Borrowed(&full.planned.db.ledgers.gids),
            ),
            Basis::Sealed {
                uid_map, gid_map, ..
            } => {
                let ids = |t: &Option<String>| {
                    ledger::ids(t.as_deref())
                        .map(Cow::Owned)
                        .map_err(serde::ser::Error::custom)
                };
                (ids(uid_map)?, ids(gid_map)?)
            }
        };
        Shown {
            changes: &self.changes,
            clashes: &self.clashes,
            passwd,
            group,
            uid_map,
            gid_map,
        }
        .serialize(s)
    }
}

/// The report of a root the seal shows current (see `seal.rs`), if it does: then the
/// declaration need not even be parsed.
pub(crate) fn sealed(root: &mut Root) -> Result<Option<Report>> {
    let Some(mut read) = seal::holds(root)? else {
        return Ok(None);
    };
    let mut text = |i: usize, rel: &str| -> Result<Option<String>> {
        let bytes = read.get_mut(i).and_then(Option::take);
        bytes
            .map(String::from_utf8)
            .transpose()
            .map_err(|_| anyhow::anyhow!("{} is not UTF-8", root.show(rel)))
    };
    let passwd = text(0, FILES[0])?.unwrap_or_default();
    let group = text(1, FILES[1])?.unwrap_or_default();
    let uid_map = text(
        FILES.len(),
        &format!("{}/{}", ledger::DIR, ledger::FILES[0]),
    )?;
    let gid_map = text(
        FILES.len() + 1,
        &format!("{}/{}", ledger::DIR, ledger::FILES[1]),
    )?;
    Ok(Some(Report {
        changes: Lines::default(),
        clashes: Vec::new(),
        current: true,
        basis: Basis::Sealed {
            passwd,
            group,
            uid_map,
            gid_map,
        },
    }))
}

/// What the users phase reads from the root, as it read it: the five files, the ledgers and
/// the declared password files. The plan is a function of these and the declaration (and of
/// the homes, which it looks at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inputs {
    texts: [String; 5],
    /// Where each text was read from.
    from: [place::ReadFrom; 5],
    /// What salts derive from, when they are not random.
    seed: Option<Seed>,
    ledgers: ledger::Texts,
    password_files: BTreeMap<String, Result<Option<Vec<u8>>, String>>,
}

/// Reads what the users phase needs from the root (its own files, never the host's NSS).
pub(crate) fn read_inputs(root: &mut Root, decl: &Users, seed: Option<Seed>) -> Result<Inputs> {
    let place = place::Place::of(decl);
    let mut from = [place::ReadFrom::Place; 5];
    let mut texts: [String; 5] = Default::default();
    for (i, (text, from)) in texts.iter_mut().zip(&mut from).enumerate() {
        *from = place.read_from(root, i)?;
        let rel = match from {
            place::ReadFrom::Place => place.file(i),
            place::ReadFrom::Etc => FILES[i].to_owned(),
        };
        *text = read(root, &rel)?;
    }
    Ok(Inputs {
        texts,
        from,
        seed,
        ledgers: ledger::read(root)?,
        password_files: password_files(root, decl),
    })
}

/// Reads what the users phase needs from the root and plans it.
pub(crate) fn plan(root: &mut Root, decl: &Users, seed: Option<Seed>) -> Result<Report> {
    let inputs = read_inputs(root, decl, seed)?;
    plan_from(root, decl, inputs)
}

/// Plans the users phase on what [`read_inputs`] read.
pub(crate) fn plan_from(root: &mut Root, decl: &Users, inputs: Inputs) -> Result<Report> {
    let Inputs {
        texts,
        from,
        seed,
        ledgers,
        password_files,
    } = inputs;
    let place = place::Place::of(decl);
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
        seed,
    };
    let mut p = plan::plan(decl, &found);
    p.clashes.extend(unwritable(root, &place)?);
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
    p.changes.extend(&homes);
    let shadow_open = shadow_open(root, &place)?;
    if shadow_open {
        p.changes
            .push(&format!("make /{} unreadable by others", place.file(2)));
    }
    let mut links = place.links_to_make(root)?;
    for (i, _) in &links {
        p.changes
            .push(&format!("link /{} to /{}", FILES[*i], place.file(*i)));
    }
    if !place.elsewhere() {
        for (i, file) in FILES.iter().enumerate() {
            if place::Place::ours_link(root, i)?.is_some() {
                p.changes
                    .push(&format!("replace the link /{file} with its file"));
                links.push((i, Node::Absent));
            }
        }
    }
    let current = rendered == texts
        && from.iter().all(|f| *f == place::ReadFrom::Place)
        && p.db.ledgers == found.db.ledgers
        && !homes.iter().any(homes::Action::acts)
        && !shadow_open
        && links.is_empty()
        && (!place.elsewhere() || place.marked(root)?);
    Ok(Report {
        changes: std::mem::take(&mut p.changes),
        clashes: std::mem::take(&mut p.clashes),
        current,
        basis: Basis::Planned(Box::new(Full {
            rendered,
            planned: p,
            homes,
            shadow_open,
            place,
            recorded: found.db.ledgers,
            inputs: Inputs {
                texts,
                from,
                seed,
                ledgers,
                password_files: found.password_files,
            },
        })),
    })
}

/// Whether `shadow` is readable by others or group-writable: fixed even when its lines are
/// right.
fn shadow_open(root: &mut Root, place: &place::Place) -> Result<bool> {
    Ok(matches!(root.node_with(&place.file(2), false)?,
        Node::File(f) if f.meta.mode & 0o027 != 0))
}

/// Whether what `before` looked at besides its [`Inputs`] (homes, linger files, whether
/// `shadow` is open) is still as it found it, so that its plan still stands.
pub(crate) fn looks_the_same(root: &mut Root, decl: &Users, before: &Full) -> Result<bool> {
    let found_passwd = files::Table::parse(&before.inputs.texts[0], 7);
    let homes = homes::look(root, decl, (&before.planned.db.passwd, &found_passwd))?;
    Ok(homes == before.homes && shadow_open(root, &before.place)? == before.shadow_open)
}

/// The files phase 3 would replace that it cannot: only a regular file (or nothing) is
/// replaced, and only in a real directory; anything else (a link into `/persist`, a bind
/// mount) is found here, before anything is written, not half-way through the phase.
fn unwritable(root: &mut Root, place: &place::Place) -> Result<Vec<String>> {
    let mut out = place.link_clashes(root)?;
    let ledgers = ledger::FILES.iter().map(|f| format!("{}/{f}", ledger::DIR));
    let files = (0..FILES.len()).map(|i| (Some(i), place.file(i)));
    for (i, rel) in files.chain(ledgers.map(|l| (None, l))) {
        let hint = match root.node_with(&rel, false)? {
            Node::Absent => continue,
            Node::File(f) if !f.meta.mount => continue,
            Node::Link(to) => {
                // Back in /etc, a link etcflip made to a place: replaced by its file.
                let back = i.filter(|_| !place.elsewhere());
                if let Some(i) = back {
                    if place::Place::ours_link(root, i)?.is_some() {
                        continue;
                    }
                }
                // A user database kept elsewhere on purpose (`/persist`): say how to keep it.
                format!(
                    " (it links to {to}: declare passwordFilesLocation to keep the files \
                     where the links point, or replace each link with its file)"
                )
            }
            _ => String::new(),
        };
        out.push(format!(
            "{} is not a regular file etcflip can replace (a link, a mount point, or below \
             one): nothing was written{hint}",
            root.show(&rel)
        ));
    }
    Ok(out)
}

/// A declared `hashedPasswordFile` (`path`), read under the root (never the host's).
pub(crate) fn read_password_file(root: &mut Root, path: &str) -> plan::FileRead {
    root.read_in_root(path.trim_start_matches('/'))
        .map_err(|e| format!("{e:#}"))
}

/// Every declared `hashedPasswordFile`, read under the root.
fn password_files(
    root: &mut Root,
    decl: &Users,
) -> BTreeMap<String, Result<Option<Vec<u8>>, String>> {
    let paths = decl
        .users
        .iter()
        .filter_map(|u| u.hashed_password_file.as_ref());
    paths
        .map(|p| (p.to_string(), read_password_file(root, p)))
        .collect()
}

/// A file of the user database as text; missing is empty.
fn read(root: &mut Root, rel: &str) -> Result<String> {
    let bytes = root.read_in_root(rel)?.unwrap_or_default();
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{} is not UTF-8", root.show(rel)))
}
