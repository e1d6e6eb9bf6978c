//! The generation manifest (`GEN/manifest.json`, version 1): the contract between the generator,
//! which writes it, and the applier, which owns its format and refuses anything it does not
//! fully understand.
//!
//! A generation directory holds:
//! - `manifest.json`: this file;
//! - `etc/`: the payload, what `<overlay>/<target>` resolves to once the generation is live;
//! - `tmpfiles.d/etcflip.conf`: the create snippet for boot and image builds.
//!
//! Entry semantics, by kind (`target` is relative to `/etc`):
//! - `symlink`: `/etc/<target>` is a link whose text is exactly `<overlay>/<target>`. The payload
//!   holds a link to `source`, or a regular file (text entries: no `source`, with `sha256`).
//! - `direct-symlink`: `/etc/<target>` links straight to `source` (no indirection); the payload
//!   holds the same link.
//! - `copy`: `/etc/<target>` is a regular file with `mode`, `uid`, `gid`. With a `sha256`, its
//!   content is the payload file's (`source` is informational). Without one it is a *runtime
//!   copy*: `source` (absolute, required) is a file outside the store, such as
//!   `/run/secrets/x`, read under the root at switch time; the payload holds nothing for it,
//!   and its content is known only then.
//! - `dir`: `/etc/<target>` is a real directory (`mode`, `uid`, `gid` used when we create it).

use std::fmt;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::borrowed::Str;
use crate::errors::Invalid;

/// The only manifest version this applier understands.
pub const MANIFEST_VERSION: u32 = 1;
/// The flip point NixOS uses, and our default.
pub const DEFAULT_OVERLAY: &str = "/etc/static";
/// Name of the state directory inside `/etc`, reserved.
pub const STATE_DIR_NAME: &str = ".etcflip";
/// Marker inside every name etcflip creates for staging, swaps and backups; reserved in targets.
pub const RESERVED_MARK: &str = ".etcflip-";
/// Longest path tmpfiles and the kernel accept comfortably.
const MAX_PATH: usize = 4000;
/// `NAME_MAX` on Linux file systems.
pub const MAX_NAME: usize = 255;

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest<'a> {
    /// Always [`MANIFEST_VERSION`].
    pub version: u32,
    /// Absolute path of the flip point inside the root, e.g. `/etc/static`.
    #[serde(borrow)]
    pub overlay: Str<'a>,
    /// Sorted by `target`, unique.
    #[serde(borrow)]
    pub entries: Vec<Entry<'a>>,
}

/// What an entry makes at `/etc/<target>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A link to `<overlay>/<target>`.
    Symlink,
    /// A link straight to `source`.
    DirectSymlink,
    /// A regular file copied from the payload.
    Copy,
    /// A managed directory.
    Dir,
}

impl Kind {
    /// The spelling used in the manifest and in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Symlink => "symlink",
            Kind::DirectSymlink => "direct-symlink",
            Kind::Copy => "copy",
            Kind::Dir => "dir",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A numeric id, or a name resolved at apply time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum Id {
    /// Known at build time.
    Num(u32),
    /// Resolved against the root's passwd/group when applied.
    Name(String),
}

// By hand rather than `#[serde(untagged)]`, which buffers every value to try each variant:
// manifests are parsed on every switch.
impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a numeric id or a user/group name")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Id, E> {
                u32::try_from(v)
                    .map(Id::Num)
                    .map_err(|_| E::custom(format!("id {v} is out of range")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id::Name(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Name(s) => f.write_str(s),
        }
    }
}

/// Permission bits (at most `0o7777`), written as four octal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mode(pub u32);

impl Mode {
    /// Parses NixOS's spelling: three or four octal digits (`"644"` ≡ `"0644"`).
    pub fn parse(s: &str) -> Result<Mode, String> {
        let ok_len = s.len() == 3 || s.len() == 4;
        if !ok_len || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(format!(
                "mode {s:?} is not 3 or 4 octal digits (or \"symlink\"/\"direct-symlink\")"
            ));
        }
        u32::from_str_radix(s, 8)
            .map(Mode)
            .map_err(|e| format!("mode {s:?}: {e}"))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mode of 3 or 4 octal digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Mode, E> {
                Mode::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// One managed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry<'a> {
    /// Path relative to `/etc`, canonical (see [`check_target`]).
    #[serde(borrow)]
    pub target: Str<'a>,
    /// What is made there.
    pub kind: Kind,
    /// Link target for `symlink`/`direct-symlink`; the original file for `copy`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub source: Option<Str<'a>>,
    /// Permission bits for `copy` and `dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Owner for `copy` and `dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<Id>,
    /// Group for `copy` and `dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<Id>,
    /// Hex sha256 of the payload file, for `copy` and text `symlink` entries.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Str<'a>>,
}

impl Entry<'_> {
    /// The link text a `symlink` entry must have to be ours.
    pub fn overlay_link(&self, overlay: &str) -> String {
        overlay_link(overlay, &self.target)
    }

    /// The link text this entry's `/etc` path must have, for link kinds.
    pub fn expected_link(&self, overlay: &str) -> Option<String> {
        match self.kind {
            Kind::Symlink => Some(self.overlay_link(overlay)),
            Kind::DirectSymlink => self.source.as_deref().map(str::to_owned),
            Kind::Copy | Kind::Dir => None,
        }
    }

    /// Whether `text` is the link text this entry wants, for link kinds (without building it).
    pub fn is_link_text(&self, overlay: &str, text: &str) -> bool {
        match self.kind {
            Kind::Symlink => is_overlay_link(text, overlay, &self.target),
            Kind::DirectSymlink => self.source.as_deref() == Some(text),
            Kind::Copy | Kind::Dir => false,
        }
    }

    /// Whether this is a runtime copy: a `copy` with no recorded hash, whose `source` is read
    /// at switch time (see the module documentation).
    pub fn is_runtime_copy(&self) -> bool {
        self.kind == Kind::Copy && self.sha256.is_none()
    }

    /// Whether `new`, for the same target under the same overlay, wants the same thing at the
    /// path as this entry: a symlink's text is `<overlay>/<target>` whatever the source behind
    /// it. Never for a runtime copy: what it wants is only known once its source is read.
    pub fn same_at_path(&self, new: &Entry) -> bool {
        self.kind == new.kind
            && match new.kind {
                Kind::Symlink | Kind::Dir => true,
                Kind::DirectSymlink => self.source == new.source,
                // A named owner may map to another id in the new user database: look.
                Kind::Copy => {
                    !new.is_runtime_copy()
                        && self.sha256 == new.sha256
                        && (self.mode, &self.uid, &self.gid) == (new.mode, &new.uid, &new.gid)
                        && !matches!(new.uid, Some(Id::Name(_)))
                        && !matches!(new.gid, Some(Id::Name(_)))
                }
            }
    }

    /// An owned copy, independent of the text it was parsed from.
    pub fn into_owned(self) -> Entry<'static> {
        Entry {
            target: self.target.into_owned(),
            kind: self.kind,
            source: self.source.map(Str::into_owned),
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            sha256: self.sha256.map(Str::into_owned),
        }
    }
}

/// Whether `text` is exactly `<overlay>/<target>` (see [`overlay_link`]), without building it.
pub fn is_overlay_link(text: &str, overlay: &str, target: &str) -> bool {
    text.strip_prefix(overlay)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|rest| rest == target)
}

/// `<overlay>/<target>`: the one canonical link text for a `symlink` entry.
pub fn overlay_link(overlay: &str, target: &str) -> String {
    format!("{overlay}/{target}")
}

impl<'a> Manifest<'a> {
    /// An empty manifest for `overlay` (the "nothing applied yet" side of a plan).
    pub fn empty(overlay: &'a str) -> Manifest<'a> {
        Manifest {
            version: MANIFEST_VERSION,
            overlay: Str::borrowed(overlay),
            entries: Vec::new(),
        }
    }

    /// An owned copy, independent of the text it was parsed from.
    pub fn into_owned(self) -> Manifest<'static> {
        Manifest {
            version: self.version,
            overlay: self.overlay.into_owned(),
            entries: self.entries.into_iter().map(Entry::into_owned).collect(),
        }
    }

    /// The canonical serialisation: pretty JSON, fields in declaration order, trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Parses and validates; every problem is reported at once as [`Invalid`].
    pub fn from_json(text: &'a str, origin: &str) -> anyhow::Result<Manifest<'a>> {
        let manifest: Manifest = serde_json::from_str(text)
            .map_err(|e| Invalid::one(format!("{origin}: not a valid version-1 manifest: {e}")))?;
        let problems = manifest.problems();
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(Invalid::many(origin, problems).into())
        }
    }

    /// Parses a manifest etcflip recorded itself after validating it (the applied state):
    /// the structure is still checked by the parser, the rules are not checked again.
    pub fn from_trusted_json(text: &'a str, origin: &str) -> anyhow::Result<Manifest<'a>> {
        serde_json::from_str(text).map_err(|e| {
            Invalid::one(format!("{origin}: not a valid version-1 manifest: {e}")).into()
        })
    }

    /// Reads `GEN/manifest.json`.
    pub fn load(gen: &Path) -> anyhow::Result<Manifest<'static>> {
        let path = gen.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the manifest {}", path.display()))?;
        Ok(Manifest::from_json(&text, &path.display().to_string())?.into_owned())
    }

    /// Looks an entry up by target (entries are sorted).
    pub fn get(&self, target: &str) -> Option<&Entry<'a>> {
        self.entries
            .binary_search_by(|e| e.target.as_str().cmp(target))
            .ok()
            .map(|i| &self.entries[i])
    }

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
            out.extend(
                entry_problems(e)
                    .into_iter()
                    .map(|m| format!("entry {t:?}: {m}")),
            );
        }
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
        out
    }
}

fn entry_problems(e: &Entry) -> Vec<String> {
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
    out
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

/// Checks a user or group name the way shadow-utils and NixOS accept them.
pub fn check_id_name(n: &str) -> Result<(), String> {
    let first_ok = n
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    let rest_ok = n
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    let numeric = n.bytes().all(|b| b.is_ascii_digit());
    if n.is_empty() || n.len() > 31 || !first_ok || !rest_ok || numeric {
        return Err(format!(
            "owner name {n:?} is not a valid user or group name ([A-Za-z0-9_.][A-Za-z0-9_.-]*, \
             at most 31 characters, not all digits)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(target: &str, kind: Kind) -> Entry<'_> {
        let owned = matches!(kind, Kind::Copy | Kind::Dir);
        Entry {
            target: target.into(),
            kind,
            source: (kind != Kind::Dir).then(|| "/nix/store/x".into()),
            mode: owned.then_some(Mode(0o644)),
            uid: owned.then_some(Id::Num(0)),
            gid: owned.then_some(Id::Num(0)),
            sha256: (kind == Kind::Copy).then(|| "a".repeat(64).into()),
        }
    }

    #[test]
    fn modes_parse_three_or_four_digits() {
        assert_eq!(Mode::parse("644"), Ok(Mode(0o644)));
        assert_eq!(Mode::parse("0644"), Ok(Mode(0o644)));
        assert_eq!(Mode::parse("4755"), Ok(Mode(0o4755)));
        for bad in ["", "64", "06440", "0648", "rw-", "+644", " 644"] {
            assert!(Mode::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Mode(0o440).to_string(), "0440");
    }

    #[test]
    fn targets_are_checked() {
        for good in ["a", "ssh/sshd_config", "a b/c%d", "ünï/☃", ".clean"] {
            assert_eq!(check_target(good), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/",
            "./a",
            "a/../b",
            "..",
            "a\nb",
            "a\tb",
            ".etcflip",
            ".etcflip/x",
            "x.etcflip-backup",
        ] {
            assert!(check_target(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn valid_manifest_round_trips() {
        let m = Manifest {
            version: 1,
            overlay: DEFAULT_OVERLAY.into(),
            entries: vec![
                entry("pam.d", Kind::Dir),
                entry("pam.d/login", Kind::Symlink),
                entry("sudoers", Kind::Copy),
            ],
        };
        let text = m.to_json();
        assert_eq!(Manifest::from_json(&text, "t").unwrap(), m);
    }

    #[test]
    fn every_problem_is_listed() {
        let mut m = Manifest::empty("etc/static");
        m.version = 2;
        m.entries = vec![
            entry("b/x", Kind::Symlink),
            entry("a", Kind::Symlink),
            entry("c", Kind::Copy),
            entry("static/foo", Kind::Symlink),
        ];
        m.entries[2].uid = None;
        let p = m.problems();
        assert!(p.iter().any(|s| s.contains("version 2")), "{p:?}");
        assert!(
            p.iter().any(|s| s.contains("not an absolute path")),
            "{p:?}"
        );
        assert!(p.iter().any(|s| s.contains("not sorted")), "{p:?}");
        assert!(
            p.iter().any(|s| s.contains("needs mode, uid and gid")),
            "{p:?}"
        );
        assert!(p.iter().any(|s| s.contains("has no dir entry")), "{p:?}");
    }

    /// A copy is a payload copy (sha256) or a runtime copy (an absolute source, no sha256).
    #[test]
    fn copies_need_a_hash_or_an_absolute_source() {
        type Edit = fn(&mut Entry<'static>);
        let rows: &[(&str, Edit, Option<&str>)] = &[
            ("payload copy", |_| {}, None),
            ("payload copy, no source", |e| e.source = None, None),
            ("runtime copy", |e| e.sha256 = None, None),
            (
                "runtime copy, relative source",
                |e| (e.sha256, e.source) = (None, Some("run/secrets/x".into())),
                Some(r#"source "run/secrets/x": not an absolute path"#),
            ),
            (
                "runtime copy, empty source",
                |e| (e.sha256, e.source) = (None, Some("".into())),
                Some(r#"source "": not an absolute path"#),
            ),
            (
                "runtime copy, control character",
                |e| (e.sha256, e.source) = (None, Some("/run/a\nb".into())),
                Some("control character '\\n'"),
            ),
            (
                "runtime copy, no owner",
                |e| (e.sha256, e.gid) = (None, None),
                Some("a copy entry needs mode, uid and gid"),
            ),
            (
                "neither hash nor source",
                |e| (e.sha256, e.source) = (None, None),
                Some("a copy entry needs a sha256 (a payload copy) or a source (a runtime copy"),
            ),
        ];
        for (what, edit, want) in rows {
            let mut m = Manifest::empty(DEFAULT_OVERLAY);
            m.entries = vec![entry("secret", Kind::Copy).into_owned()];
            edit(&mut m.entries[0]);
            let p = m.problems();
            match want {
                None => assert_eq!(p, Vec::<String>::new(), "{what}"),
                Some(want) => {
                    assert_eq!(p.len(), 1, "{what}: {p:?}");
                    assert!(p[0].contains(want), "{what}: {want:?} not in {p:?}");
                }
            }
        }
    }

    #[test]
    fn runtime_copies_are_never_the_same_at_the_path() {
        let hashed = entry("secret", Kind::Copy);
        let mut runtime = hashed.clone();
        runtime.sha256 = None;
        assert!(runtime.is_runtime_copy() && !hashed.is_runtime_copy());
        assert!(!entry("a", Kind::Symlink).is_runtime_copy());
        assert!(!entry("a", Kind::Dir).is_runtime_copy());
        assert!(hashed.same_at_path(&hashed.clone()));
        assert!(!runtime.same_at_path(&runtime.clone()));
        assert!(!hashed.same_at_path(&runtime) && !runtime.same_at_path(&hashed));
    }

    #[test]
    fn overlay_collisions_are_refused() {
        let mut m = Manifest::empty(DEFAULT_OVERLAY);
        m.entries = vec![entry("static", Kind::Symlink)];
        assert!(m.problems().iter().any(|s| s.contains("collides")));
    }

    #[test]
    fn owner_names() {
        assert!(check_id_name("nginx").is_ok());
        assert!(check_id_name("systemd-network").is_ok());
        for bad in ["", "-x", "a:b", "123", "a b", &"x".repeat(32)] {
            assert!(check_id_name(bad).is_err(), "{bad:?}");
        }
    }
}
