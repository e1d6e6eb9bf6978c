//! The wrappers' plan (phase 1), pure: what the root's `/run/wrappers` holds ([`Live`]) against
//! what the generation wants ([`Want`]), giving the lines a dry run shows and the work the
//! switch does ([`Work`]).
//!
//! The directory `bin` points at is current when its name carries the digest of exactly the
//! wanted set ([`digest`]: every program's content, mode, owner and capabilities, owners as
//! numbers), it and `/run/wrappers` are root's and writable by no one else, and every file in
//! it still has its mode, owner and capabilities and the modification time the build gave it
//! ([`BUILT_MTIME`]: any write since would have changed it). Then nothing is rebuilt.
//! Otherwise the whole directory is built again, aside, and flipped in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use etcflip_format::caps::Sets;
use etcflip_format::hash::sha256_bytes;

use super::{BIN_SHOWN, DIR_PREFIX};
use crate::conflict::OnConflict;

/// The modification time (seconds since the epoch) a build gives every wrapper, as the Nix
/// store gives its files: a write to a wrapper since then changes it.
pub(crate) const BUILT_MTIME: i64 = 1;

/// One wrapper as the switch makes it: owners resolved to numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Want {
    pub(crate) program: String,
    /// The wrapped program (its placeholder's target).
    pub(crate) source: String,
    /// Final mode, set-id bits included.
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Owner and group as declared, for the report.
    pub(crate) owners: String,
    pub(crate) caps: Sets,
    /// The capabilities as declared, for the report.
    pub(crate) caps_text: Option<String>,
    pub(crate) sha256: String,
}

/// What is at `/run/wrappers/bin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bin {
    /// Nothing.
    Absent,
    /// A link to a directory of `/run/wrappers` (its name), as NixOS and etcflip make them.
    Dir(String),
    /// A link to anything else, or to nothing: replaced by the flip.
    Elsewhere(String),
    /// Not a link (what is there): replaced only when `--on-conflict` says so.
    Foreign(String),
    /// A mount point, or below something that is not a directory (its path): never replaced.
    Blocked(String),
}

/// A file of the directory `bin` points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// A regular file (anything else is never current).
    pub(crate) regular: bool,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Its modification time is [`BUILT_MTIME`].
    pub(crate) as_built: bool,
    /// Its `security.capability`, decoded (default: none); an error for one the kernel
    /// would refuse.
    pub(crate) caps: Result<Sets, String>,
}

impl Seen {
    /// A name that was listed and is gone (or unreadable): never a wrapper.
    pub(crate) fn gone() -> Seen {
        Seen {
            regular: false,
            mode: 0,
            uid: 0,
            gid: 0,
            as_built: false,
            caps: Ok(Sets::default()),
        }
    }
}

/// Mode and owner of a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirMeta {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl DirMeta {
    /// What `/run/wrappers` and a wrappers directory must be.
    pub(crate) const WANTED: DirMeta = DirMeta {
        mode: 0o755,
        uid: 0,
        gid: 0,
    };
}

/// `/run/wrappers` as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Live {
    pub(crate) bin: Bin,
    /// `/run/wrappers` itself, when it is a directory.
    pub(crate) parent: Option<DirMeta>,
    /// The directory `bin` points at.
    pub(crate) dir: Option<DirMeta>,
    /// The files of the directory `bin` points at, by name.
    pub(crate) files: BTreeMap<String, Seen>,
    /// The targets those files run, where known (read only when the directory is rebuilt).
    pub(crate) targets: BTreeMap<String, String>,
    /// Every `wrappers.*` directory of `/run/wrappers` (NixOS's and etcflip's own).
    pub(crate) dirs: Vec<String>,
    /// Those that are mount points: never removed.
    pub(crate) mounted: Vec<String>,
    /// What a killed flip left beside `bin`: `Some(true)` a link, `Some(false)` anything else.
    pub(crate) new_link: Option<bool>,
}

/// What the switch does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Work {
    /// Build a directory with these wrappers (name prefix carrying their digest) and flip
    /// `bin` to it; `None`: the current one stays.
    pub(crate) build: Option<(String, Vec<Want>)>,
    /// `wrappers.*` directories that `bin` will not point at, removed (after the flip).
    pub(crate) remove: Vec<String>,
    /// Remove the link a killed flip left beside `bin`.
    pub(crate) new_link: bool,
    /// What to do with a `bin` that is not a link, before the flip.
    pub(crate) foreign: Option<OnConflict>,
}

/// The plan: the report's lines, notes on what is left alone, the work, and a conflict that
/// refuses the switch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) changes: Vec<String>,
    pub(crate) notes: Vec<String>,
    pub(crate) work: Work,
    pub(crate) clash: Option<String>,
}

/// Plans `wants` (sorted by program) against `live`; `foreign` says what to do with a `bin`
/// that is not a link.
pub(crate) fn plan(wants: Vec<Want>, live: &Live, foreign: OnConflict) -> Planned {
    let mut p = Planned::default();
    if let Some(clash) = clash(live, foreign) {
        p.clash = Some(clash);
        return p;
    }
    let prefix = format!("{DIR_PREFIX}{}.", digest(&wants));
    let current_dir = match &live.bin {
        Bin::Dir(name) => Some(name.as_str()),
        _ => None,
    };
    let current = current_dir.is_some_and(|d| d.starts_with(&prefix))
        && live.dir == Some(DirMeta::WANTED)
        && live.parent == Some(DirMeta::WANTED)
        && live.files.len() == wants.len()
        && wants.iter().all(|w| {
            (live.files.get(&w.program)).is_some_and(|seen| attribute_diffs(w, seen).is_empty())
        });
    let keep = if current { current_dir } else { None };
    for d in live.dirs.iter().filter(|d| Some(d.as_str()) != keep) {
        p.work.remove.push(d.clone());
        if Some(d.as_str()) != current_dir {
            p.changes
                .push(format!("remove the leftover directory /run/wrappers/{d}"));
        }
    }
    for d in &live.mounted {
        p.notes
            .push(format!("/run/wrappers/{d} is a mount point: left as it is"));
    }
    if live.new_link == Some(true) {
        p.work.new_link = true;
        p.changes
            .push(format!("remove the leftover link {BIN_SHOWN}.etcflip-new"));
    }
    if !current {
        rebuild(&mut p, wants, live, (prefix, foreign));
    }
    p
}

/// Only etcflip's own leftovers, when neither generation declares wrappers and `bin` is not
/// etcflip's: its directories a stopped switch left are removed, and nothing else is touched
/// (`bin` may be NixOS's own).
pub(crate) fn leftovers_only(live: &Live) -> Planned {
    let mut p = Planned::default();
    let current = match &live.bin {
        Bin::Dir(name) => Some(name.as_str()),
        _ => None,
    };
    let ours = |d: &&String| d.starts_with(DIR_PREFIX) && Some(d.as_str()) != current;
    for d in live.dirs.iter().filter(ours) {
        p.work.remove.push(d.clone());
        p.changes
            .push(format!("remove the leftover directory /run/wrappers/{d}"));
    }
    p
}

/// Why the switch is refused, if it is: something in the way that is not ours.
fn clash(live: &Live, foreign: OnConflict) -> Option<String> {
    if live.new_link == Some(false) {
        return Some(format!(
            "{BIN_SHOWN}.etcflip-new is not the link etcflip makes there: move it away"
        ));
    }
    match (&live.bin, foreign) {
        (Bin::Foreign(what), OnConflict::Abort) => Some(format!(
            "{BIN_SHOWN} is {what}, not the link etcflip flips (NixOS's and etcflip's wrappers \
             are reached through a link there; --on-conflict backup or overwrite replaces it)"
        )),
        (Bin::Blocked(at), _) => Some(format!(
            "{BIN_SHOWN} cannot be flipped: {at} is a mount point or not a directory"
        )),
        _ => None,
    }
}

/// The lines and the work of a rebuild.
fn rebuild(
    p: &mut Planned,
    wants: Vec<Want>,
    live: &Live,
    (prefix, foreign): (String, OnConflict),
) {
    let before = p.changes.len();
    if let Bin::Foreign(what) = &live.bin {
        p.work.foreign = Some(foreign);
        let verb = if foreign == OnConflict::Backup {
            "back up"
        } else {
            "overwrite"
        };
        p.changes.push(format!("{verb} {BIN_SHOWN} ({what})"));
    }
    for (what, meta) in [("/run/wrappers", live.parent), ("its directory", live.dir)] {
        if let Some(m) = meta.filter(|m| *m != DirMeta::WANTED) {
            p.changes.push(format!(
                "rebuild {BIN_SHOWN}: {what} is mode {:04o}, owner {}:{} (wanted: 0755 root:root)",
                m.mode, m.uid, m.gid
            ));
        }
    }
    p.changes.extend(file_changes(&wants, live));
    if p.changes.len() == before {
        p.changes.push(format!(
            "rebuild {BIN_SHOWN}: {}",
            if matches!(live.bin, Bin::Dir(_)) {
                "its directory was not built for these wrappers"
            } else {
                "it does not point at a directory of /run/wrappers"
            }
        ));
    }
    p.work.build = Some((prefix, wants));
}

/// One line for each wrapper added, changed or removed, against the live files.
fn file_changes(wants: &[Want], live: &Live) -> Vec<String> {
    let mut out = Vec::new();
    for w in wants {
        let path = format!("{BIN_SHOWN}/{}", w.program);
        match live.files.get(&w.program) {
            None => out.push(format!("add {path} ({})", describe(w))),
            Some(seen) => {
                let mut diffs = attribute_diffs(w, seen);
                match live.targets.get(&w.program) {
                    Some(t) if *t != w.source => diffs.push(format!("runs {} (was {t})", w.source)),
                    _ => {}
                }
                if !diffs.is_empty() {
                    out.push(format!("change {path}: {}", diffs.join(", ")));
                }
            }
        }
    }
    let wanted: BTreeSet<&str> = wants.iter().map(|w| w.program.as_str()).collect();
    for name in live.files.keys().filter(|n| !wanted.contains(n.as_str())) {
        out.push(format!("remove {BIN_SHOWN}/{name}"));
    }
    out
}

/// How a live file differs from what is wanted, attribute by attribute.
fn attribute_diffs(w: &Want, seen: &Seen) -> Vec<String> {
    if !seen.regular {
        return vec!["not a regular file".into()];
    }
    let mut diffs = Vec::new();
    if seen.mode != w.mode {
        diffs.push(format!("mode {:04o} → {:04o}", seen.mode, w.mode));
    }
    if (seen.uid, seen.gid) != (w.uid, w.gid) {
        diffs.push(format!(
            "owner {}:{} → {}:{}",
            seen.uid, seen.gid, w.uid, w.gid
        ));
    }
    match &seen.caps {
        Ok(c) if *c == w.caps => {}
        Ok(c) => diffs.push(format!(
            "capabilities {} → {}",
            show_sets(*c),
            show_sets(w.caps)
        )),
        Err(why) => diffs.push(format!("capabilities unreadable ({why})")),
    }
    if !seen.as_built {
        diffs.push("written since it was built (its modification time changed)".into());
    }
    diffs
}

/// A wanted wrapper in a report line.
fn describe(w: &Want) -> String {
    let caps = w
        .caps_text
        .as_deref()
        .map(|c| format!(", {c}"))
        .unwrap_or_default();
    format!("{:04o} {}{caps}, runs {}", w.mode, w.owners, w.source)
}

fn show_sets(s: Sets) -> String {
    if s == Sets::default() {
        return "none".into();
    }
    format!(
        "permitted {:#x} inheritable {:#x}{}",
        s.permitted,
        s.inheritable,
        if s.effective == 0 { "" } else { " effective" }
    )
}

/// The digest a wrappers directory's name carries: of everything a wrapper is made from,
/// owners as numbers, so that an owner whose id changed gives another directory.
pub(crate) fn digest(wants: &[Want]) -> String {
    let mut text = String::new();
    for w in wants {
        let c = w.caps;
        let _ = writeln!(
            text,
            "{}\0{}\0{:o}\0{}\0{}\0{:x}\0{:x}\0{:x}",
            w.program, w.sha256, w.mode, w.uid, w.gid, c.effective, c.permitted, c.inheritable
        );
    }
    sha256_bytes(text.as_bytes())[..16].to_owned()
}

#[cfg(test)]
mod tests;
