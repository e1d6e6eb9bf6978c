//! The wrappers' plan (phase 1), pure: what the root's `/run/wrappers` holds ([`Live`]) against
//! what the generation wants ([`Want`]), giving the lines a dry run shows and the work the
//! switch does ([`Work`]).
//!
//! The directory `bin` points at is current when its name carries the digest of exactly the
//! wanted set ([`digest`]: every program's content, mode, owner and capabilities, owners as
//! numbers) and every file in it still has its mode, owner, size and capabilities. Then nothing
//! is rebuilt. Otherwise the whole directory is built again, aside, and flipped in.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use etcflip_format::caps::Sets;
use etcflip_format::hash::sha256_bytes;

use super::{BIN_SHOWN, DIR_PREFIX};

/// One wrapper as the switch makes it: owners resolved to numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Want {
    pub(crate) program: String,
    /// The wrapped program, for the report.
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
    /// The payload file's size.
    pub(crate) size: u64,
}

/// What is at `/run/wrappers/bin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bin {
    /// Nothing.
    Absent,
    /// A link to a directory of `/run/wrappers` (its name), as NixOS and etcflip make it.
    Dir(String),
    /// A link to anything else, or to nothing: replaced by the flip.
    Elsewhere(String),
    /// Not a link (what is there): etcflip does not replace it.
    Foreign(String),
}

/// A file of the directory `bin` points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// A regular file (anything else is never current).
    pub(crate) regular: bool,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: u64,
    /// Its `security.capability`, decoded (default: none); an error for one the kernel
    /// would refuse.
    pub(crate) caps: Result<Sets, String>,
}

/// `/run/wrappers` as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Live {
    pub(crate) bin: Bin,
    /// The files of the directory `bin` points at, by name.
    pub(crate) files: BTreeMap<String, Seen>,
    /// Every `wrappers.*` directory of `/run/wrappers` (NixOS's and etcflip's own).
    pub(crate) dirs: Vec<String>,
    /// The link a killed flip left beside `bin`.
    pub(crate) new_link: bool,
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
}

/// The plan: the report's lines, the work, and a conflict that refuses the switch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) changes: Vec<String>,
    pub(crate) work: Work,
    pub(crate) clash: Option<String>,
}

/// Plans `wants` (sorted by program) against `live`; `old` gives the applied generation's
/// content digests by program, to name programs whose content changed.
pub(crate) fn plan(wants: Vec<Want>, live: &Live, old: &BTreeMap<String, String>) -> Planned {
    if let Bin::Foreign(what) = &live.bin {
        return Planned {
            clash: Some(format!(
                "{BIN_SHOWN} is {what}, not the link etcflip flips: move it away (NixOS's and \
                 etcflip's wrappers are reached through a link there)"
            )),
            ..Planned::default()
        };
    }
    let prefix = format!("{DIR_PREFIX}{}.", digest(&wants));
    let current_dir = match &live.bin {
        Bin::Dir(name) => Some(name.as_str()),
        _ => None,
    };
    let current = current_dir.is_some_and(|d| d.starts_with(&prefix))
        && live.files.len() == wants.len()
        && wants.iter().all(|w| {
            (live.files.get(&w.program)).is_some_and(|seen| attribute_diffs(w, seen).is_empty())
        });
    let keep = if current { current_dir } else { None };
    let remove = (live.dirs.iter())
        .filter(|d| Some(d.as_str()) != keep)
        .cloned()
        .collect();
    if current {
        let work = Work {
            build: None,
            remove,
            new_link: live.new_link,
        };
        return Planned {
            changes: Vec::new(),
            work,
            clash: None,
        };
    }
    let mut changes = file_changes(&wants, live, old);
    if changes.is_empty() {
        changes.push(format!(
            "rebuild {BIN_SHOWN}: {}",
            if current_dir.is_some() {
                "its directory was not built for these wrappers"
            } else {
                "it does not point at a directory of /run/wrappers"
            }
        ));
    }
    let build = Some((prefix, wants));
    Planned {
        changes,
        work: Work {
            build,
            remove,
            new_link: live.new_link,
        },
        clash: None,
    }
}

/// One line for each wrapper added, changed or removed, against the live files.
fn file_changes(wants: &[Want], live: &Live, old: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for w in wants {
        let path = format!("{BIN_SHOWN}/{}", w.program);
        match live.files.get(&w.program) {
            None => out.push(format!("add {path} ({})", describe(w))),
            Some(seen) => {
                let mut diffs = attribute_diffs(w, seen);
                if old.get(&w.program).is_some_and(|s| *s != w.sha256) {
                    diffs.push(format!("new wrapper of {}", w.source));
                }
                if !diffs.is_empty() {
                    out.push(format!("change {path}: {}", diffs.join(", ")));
                }
            }
        }
    }
    let wanted: std::collections::BTreeSet<&str> =
        wants.iter().map(|w| w.program.as_str()).collect();
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
    if seen.size != w.size {
        diffs.push(format!("size {} → {}", seen.size, w.size));
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
