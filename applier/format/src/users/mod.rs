//! The generation's `users` part: NixOS's `users-groups.json` as declared (field for field, in
//! its own camelCase names), and what the generator could settle at build time.
//!
//! The declaration is kept whole, because most of it is only decided at switch time, against
//! the root: ids without a static value, passwords (hashed there, never re-salted), password
//! files, and the merge with users added at run time (`mutableUsers`). When every uid and gid
//! is static, `passwd` and `group` are precomputed here, so that an image build needs no
//! allocation; `runTime` says what is left.

use serde::{Deserialize, Serialize};

mod rules;

pub use rules::{check_account_name, date_days};

/// NixOS's shell for a user that declares none (and, on a root, has none yet).
pub const NOLOGIN: &str = "/run/current-system/sw/bin/nologin";

/// The files a `users` part manages: an `etc` entry may not name them as well.
pub const MANAGED_FILES: [&str; 5] = ["group", "passwd", "shadow", "subgid", "subuid"];

/// The `users` part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Users {
    /// `true`: users and members added at run time are kept; `false`: the files are exactly
    /// the declaration.
    pub mutable_users: bool,
    /// Declared users, in NixOS's order (by attribute name).
    pub users: Vec<User>,
    /// Declared groups, in NixOS's order.
    pub groups: Vec<Group>,
    /// `passwd` and `group` as the declaration alone makes them, when every id is static.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precomputed: Option<Precomputed>,
    /// What only the switch can do, one line each, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_time: Vec<String>,
}

/// One declared user, with the fields `update-users-groups.pl` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(clippy::struct_excessive_bools)] // NixOS's own fields
pub struct User {
    pub name: String,
    /// `None`: allocated at switch time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<i64>,
    /// The primary group: a declared group's name, or a number.
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub home: String,
    #[serde(
        default = "default_home_mode",
        skip_serializing_if = "is_default_home_mode"
    )]
    pub home_mode: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub create_home: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_system_user: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashed_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashed_password_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_hashed_password: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linger: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto_sub_uid_gid_range: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_uid_ranges: Vec<SubUidRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_gid_ranges: Vec<SubGidRange>,
}

fn default_home_mode() -> String {
    "700".to_owned()
}

// The manifest leaves out what a field's absence means anyway (see `crate::lines`: the
// applier reads the manifest on every switch).
fn is_default_home_mode(mode: &str) -> bool {
    mode == "700"
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_false(b: &bool) -> bool {
    !*b
}

/// A subordinate uid range (`subUidRanges`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubUidRange {
    pub start_uid: i64,
    #[serde(default = "one")]
    pub count: i64,
}

/// A subordinate gid range (`subGidRanges`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubGidRange {
    pub start_gid: i64,
    #[serde(default = "one")]
    pub count: i64,
}

fn one() -> i64 {
    1
}

/// One declared group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Group {
    pub name: String,
    /// `None`: allocated at switch time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

/// Files the generator settled (see the module comment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Precomputed {
    /// `/etc/passwd`, sorted by uid.
    pub passwd: String,
    /// `/etc/group`, sorted by gid.
    pub group: String,
}

/// The user fields a spec may give (every other field is an error that names it).
pub const USER_FIELDS: &[&str] = &[
    "name",
    "uid",
    "group",
    "description",
    "home",
    "homeMode",
    "createHome",
    "isSystemUser",
    "password",
    "hashedPassword",
    "hashedPasswordFile",
    "initialPassword",
    "initialHashedPassword",
    "expires",
    "linger",
    "shell",
    "autoSubUidGidRange",
    "subUidRanges",
    "subGidRanges",
];

/// The group fields a spec may give.
pub const GROUP_FIELDS: &[&str] = &["name", "gid", "members"];

/// The top-level fields of a `users` part in a spec.
pub const TOP_FIELDS: &[&str] = &["mutableUsers", "users", "groups"];

#[cfg(test)]
mod tests;
