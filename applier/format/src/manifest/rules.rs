//! The format's rules: what makes a manifest valid, checked field by field and between
//! entries; every violation is listed, not just the first.

use crate::users::MANAGED_FILES;

use super::{
    Entry, Id, Kind, Manifest, MANIFEST_VERSION, MAX_NAME, MAX_PATH, RESERVED_MARK, STATE_DIR_NAME,
};

impl Manifest<'_> {
    /// Every violation of the format's rules, empty when the manifest is valid.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.version != MANIFEST_VERSION {
            out.push(format!(
                "version {} is not supported (this etcflip reads version {MANIFEST_VERSION})",
                self.version
            ));
        }
        if let Err(e) = check_overlay(&self.overlay) {
            out.push(e);
        }
        self.entry_problems(&mut out);
        self.parent_problems(&mut out);
        out.extend(self.users_problems());
        if let Some(wrappers) = &self.wrappers {
            out.extend(crate::wrappers::problems(wrappers));
        }
        out
    }

    /// What is wrong with the `users` part: its own rules, and `etc` entries for the files it
    /// writes (the generator reports these as problems of its input).
    pub fn users_problems(&self) -> Vec<String> {
        let Some(users) = &self.users else {
            return Vec::new();
        };
        let mut out: Vec<String> = (users.problems().into_iter())
            .map(|m| format!("users: {m}"))
            .collect();
        out.extend(managed_twice(self));
        if let Some(place) = &users.password_files_location {
            out.extend(
                check_files_location(place)
                    .err()
                    .map(|m| format!("users: {m}")),
            );
        }
        out
    }

    /// Each entry on its own, its order, and its place against the overlay.
    fn entry_problems(&self, out: &mut Vec<String>) {
        let overlay_rel = self.overlay.strip_prefix("/etc/");
        let mut prev: Option<&str> = None;
        for e in &self.entries {
            let t = e.target.as_str();
            if let Err(msg) = check_target(t) {
                out.push(format!("entry {t:?}: {msg}"));
                continue;
            }
            if prev.is_some_and(|p| p >= t) {
                out.push(format!(
                    "entry {t:?}: entries are not sorted by target or repeat"
                ));
            }
            prev = Some(t);
            if overlay_rel.is_some_and(|o| is_same_or_below(t, o) || is_same_or_below(o, t)) {
                out.push(format!(
                    "entry {t:?}: collides with the overlay {}",
                    self.overlay
                ));
            }
            let mut own = kind_problems(e);
            field_problems(e, &mut own);
            out.extend(own.into_iter().map(|m| format!("entry {t:?}: {m}")));
        }
    }

    /// Every entry's parent must be a `dir` entry.
    fn parent_problems(&self, out: &mut Vec<String>) {
        // Entries are sorted, so neighbours usually share their parent: remember the last one
        // and binary-search only when it changes.
        let mut last: Option<(&str, Option<Kind>)> = None;
        for e in &self.entries {
            if let Some((parent, _)) = e.target.rsplit_once('/') {
                let kind = match last {
                    Some((p, k)) if p == parent => k,
                    _ => {
                        let k = self
                            .entries
                            .binary_search_by(|x| x.target.as_str().cmp(parent))
                            .ok()
                            .map(|i| self.entries[i].kind);
                        last = Some((parent, k));
                        k
                    }
                };
                match kind.as_ref() {
                    Some(Kind::Dir) => {}
                    Some(k) => out.push(format!(
                        "entry {:?}: its parent {parent:?} is a {k} entry, not a dir",
                        e.target
                    )),
                    None => out.push(format!(
                        "entry {:?}: its parent {parent:?} has no dir entry",
                        e.target
                    )),
                }
            }
        }
    }
}

/// `etc` entries for the files a `users` part writes.
pub(super) fn managed_twice(m: &Manifest) -> Vec<String> {
    (m.entries.iter())
        .filter(|e| MANAGED_FILES.contains(&e.target.as_str()))
        .map(|e| {
            format!(
                "entry {:?}: /etc/{} is written by the users part, so no etc entry may name \
                 it; declare accounts in `users`, or leave `users` out",
                e.target.as_str(),
                e.target.as_str()
            )
        })
        .collect()
}

/// What an entry's kind requires of its fields.
fn kind_problems(e: &Entry) -> Vec<String> {
    let mut out = Vec::new();
    let has_owner = e.mode.is_some() && e.uid.is_some() && e.gid.is_some();
    match e.kind {
        Kind::Symlink => {
            if e.source.is_none() && e.sha256.is_none() {
                out.push("a symlink entry needs a source or a sha256 (text payload)".into());
            }
            if e.mode.is_some() || e.uid.is_some() || e.gid.is_some() {
                out.push("a symlink entry has no mode or owner".into());
            }
        }
        Kind::DirectSymlink => {
            if e.source.is_none() {
                out.push("a direct-symlink entry needs a source".into());
            }
            if e.sha256.is_some() || e.mode.is_some() {
                out.push("a direct-symlink entry has no sha256 or mode".into());
            }
        }
        Kind::Copy => {
            if !has_owner {
                out.push("a copy entry needs mode, uid and gid".into());
            }
            // The source of a runtime copy is checked with every other source below.
            if e.sha256.is_none() && e.source.is_none() {
                out.push(
                    "a copy entry needs a sha256 (a payload copy) or a source (a runtime copy, \
                     read at switch time)"
                        .into(),
                );
            }
        }
        Kind::Dir => {
            if !has_owner || e.sha256.is_some() || e.source.is_some() {
                out.push("a dir entry has mode, uid and gid, and no source or sha256".into());
            }
        }
    }
    out
}

/// Each field on its own: source, hash, mode, owner names.
fn field_problems(e: &Entry, out: &mut Vec<String>) {
    if let Some(src) = &e.source {
        if let Err(m) = check_link_text(src) {
            out.push(format!("source {src:?}: {m}"));
        }
    }
    if let Some(h) = &e.sha256 {
        if h.len() != 64
            || !h
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            out.push(format!("sha256 {h:?} is not 64 lowercase hex digits"));
        }
    }
    if let Some(m) = e.mode {
        if m.0 > 0o7777 {
            out.push(format!("mode {m} has bits beyond 07777"));
        }
    }
    for id in [&e.uid, &e.gid].into_iter().flatten() {
        if let Id::Name(n) = id {
            if let Err(m) = check_id_name(n) {
                out.push(m);
            }
        }
    }
}

/// True when `path` is `base` or lies below it (component-wise).
pub fn is_same_or_below(path: &str, base: &str) -> bool {
    path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Checks a target: relative to `/etc`, canonical, printable, not reserved.
pub fn check_target(t: &str) -> Result<(), String> {
    if t.is_empty() {
        return Err("empty path".into());
    }
    if t.starts_with('/') {
        return Err("absolute path (targets are relative to /etc)".into());
    }
    if t.len() > MAX_PATH {
        return Err(format!("path longer than {MAX_PATH} bytes"));
    }
    if let Some(c) = control_char(t) {
        return Err(format!("control character {c:?} in path"));
    }
    // Split on bytes: '/' never occurs inside a multi-byte UTF-8 sequence.
    for comp in t.as_bytes().split(|b| *b == b'/') {
        let comp = std::str::from_utf8(comp).unwrap_or_default();
        match comp {
            "" => return Err("empty path component (\"//\" or a trailing \"/\")".into()),
            "." | ".." => return Err(format!("{comp:?} component")),
            _ if comp.len() > MAX_NAME => {
                return Err(format!("component longer than {MAX_NAME} bytes"))
            }
            _ if comp.contains(RESERVED_MARK) => {
                return Err(format!(
                    "{comp:?} contains {RESERVED_MARK:?}, reserved for etcflip"
                ))
            }
            _ => {}
        }
    }
    if is_same_or_below(t, STATE_DIR_NAME) {
        return Err(format!("{STATE_DIR_NAME:?} is etcflip's state directory"));
    }
    Ok(())
}

/// Checks the overlay: absolute, canonical, printable, not `/` or `/etc` itself.
pub fn check_overlay(o: &str) -> Result<(), String> {
    let rel = o
        .strip_prefix('/')
        .ok_or_else(|| format!("overlay {o:?} is not an absolute path"))?;
    check_target(rel).map_err(|m| format!("overlay {o:?}: {m}"))?;
    if rel == "etc" {
        return Err(format!("overlay {o:?} cannot be /etc itself"));
    }
    if is_same_or_below(rel, &format!("etc/{STATE_DIR_NAME}")) {
        return Err(format!(
            "overlay {o:?} is inside /etc/{STATE_DIR_NAME}, etcflip's state directory"
        ));
    }
    Ok(())
}

/// Checks a `passwordFilesLocation`: an absolute, clean directory outside `/etc` (whose files
/// link to it; `/etc` itself is the default, which a generation leaves out).
pub(super) fn check_files_location(place: &str) -> Result<(), String> {
    let shown = format!("passwordFilesLocation {place:?}");
    let rel = place
        .strip_prefix('/')
        .ok_or_else(|| format!("{shown} is not an absolute path"))?;
    check_target(rel).map_err(|m| format!("{shown}: {m}"))?;
    if is_same_or_below(rel, "etc") {
        return Err(format!(
            "{shown} is in /etc, which links to it (for the files in /etc, leave it out)"
        ));
    }
    Ok(())
}

/// Checks a link text (source): absolute, no control characters, not `-`.
pub fn check_link_text(s: &str) -> Result<(), String> {
    if !s.starts_with('/') {
        return Err("not an absolute path".into());
    }
    if s.len() > MAX_PATH {
        return Err(format!("longer than {MAX_PATH} bytes"));
    }
    if let Some(c) = control_char(s) {
        return Err(format!("control character {c:?}"));
    }
    Ok(())
}

/// The first control character (C0, DEL or C1) in `s`. Printable ASCII, by far the common
/// case, is settled by a byte scan.
fn control_char(s: &str) -> Option<char> {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    s.chars().find(|c| c.is_control())
}

/// Checks an owner name of an `etc` entry: the rule accounts have (see `users/rules.rs`).
pub fn check_id_name(n: &str) -> Result<(), String> {
    // The rule the user database itself uses: an owner names one of its accounts.
    crate::users::check_account_name(n)
        .map_err(|why| format!("owner name {n:?} is not a valid user or group name ({why})"))
}
