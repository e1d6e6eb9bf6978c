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
use crate::users::Users;
use crate::wrappers::Wrapper;

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
    /// The user database, when the generation declares it (see [`crate::users`]).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub users: Option<Users<'a>>,
    /// The setuid and capability wrappers, when the generation declares them (see
    /// [`crate::wrappers`]); sorted by program.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub wrappers: Option<Vec<Wrapper<'a>>>,
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
            users: None,
            wrappers: None,
        }
    }

    /// An owned copy, independent of the text it was parsed from.
    pub fn into_owned(self) -> Manifest<'static> {
        Manifest {
            version: self.version,
            overlay: self.overlay.into_owned(),
            entries: self.entries.into_iter().map(Entry::into_owned).collect(),
            users: self.users.map(Users::into_owned),
            wrappers: (self.wrappers).map(|ws| ws.into_iter().map(Wrapper::into_owned).collect()),
        }
    }

    /// The canonical serialisation: JSON in [`crate::lines`]' layout (one line per entry,
    /// user and group), fields in declaration order, trailing newline.
    pub fn to_json(&self) -> String {
        crate::lines::to_lines(self).unwrap_or_default()
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
}

mod deferred;
mod head;
mod rules;

pub use head::{users_in, Head};

pub use rules::{check_id_name, check_link_text, check_overlay, check_target, is_same_or_below};

#[cfg(test)]
mod tests;
