//! The generation's `users` part: NixOS's `users-groups.json` as declared (field for field, in
//! its own camelCase names), and what the generator could settle at build time.
//!
//! The declaration is kept whole, because most of it is only decided at switch time, against
//! the root: ids without a static value, passwords (hashed there, never re-salted), password
//! files, and the merge with users added at run time (`mutableUsers`). When every uid and gid
//! is static, `passwd` and `group` are precomputed here, so that an image build needs no
//! allocation; `runTime` says what is left.

use serde::{Deserialize, Serialize};

use crate::borrowed::Str;

mod rules;

pub use rules::{check_account_name, date_days};

/// NixOS's shell for a user that declares none (and, on a root, has none yet).
pub const NOLOGIN: &str = "/run/current-system/sw/bin/nologin";

/// The files a `users` part manages: an `etc` entry may not name them as well.
pub const MANAGED_FILES: [&str; 5] = ["group", "passwd", "shadow", "subgid", "subuid"];

/// The `users` part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[serde(bound(deserialize = "'de: 'a"))]
pub struct Users<'a> {
    /// `true`: users and members added at run time are kept; `false`: the files are exactly
    /// the declaration.
    pub mutable_users: bool,
    /// Declared users, in NixOS's order (by attribute name).
    pub users: Vec<User<'a>>,
    /// Declared groups, in NixOS's order.
    pub groups: Vec<Group<'a>>,
    /// `passwd` and `group` as the declaration alone makes them, when every id is static.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precomputed: Option<Precomputed>,
    /// What only the switch can do, one line each, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_time: Vec<String>,
    /// Where the five files live when not in `/etc` (userborn's `passwordFilesLocation`, e.g.
    /// `/var/lib/nixos`): a writable directory that `/etc`'s files link to, so that the users
    /// stay mutable on a read-only `/etc`. `None`: in `/etc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_files_location: Option<Str<'a>>,
}

/// One declared user, with the fields `update-users-groups.pl` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[serde(bound(deserialize = "'de: 'a"))]
#[allow(clippy::struct_excessive_bools)] // NixOS's own fields
pub struct User<'a> {
    pub name: Str<'a>,
    /// `None`: allocated at switch time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<i64>,
    /// The primary group: a declared group's name, or a number.
    pub group: Str<'a>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub description: Str<'a>,
    pub home: Str<'a>,
    #[serde(
        default = "default_home_mode",
        skip_serializing_if = "is_default_home_mode"
    )]
    pub home_mode: Str<'a>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub create_home: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_system_user: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Str<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashed_password: Option<Str<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashed_password_file: Option<Str<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_password: Option<Str<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_hashed_password: Option<Str<'a>>,
    /// `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Str<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linger: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Str<'a>>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto_sub_uid_gid_range: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_uid_ranges: Vec<SubUidRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_gid_ranges: Vec<SubGidRange>,
}

fn default_home_mode() -> Str<'static> {
    Str::borrowed("700")
}

// The manifest leaves out what a field's absence means anyway (see `crate::lines`: the
// applier reads the manifest on every switch).
fn is_empty(s: &Str) -> bool {
    s.is_empty()
}

fn is_default_home_mode(mode: &Str) -> bool {
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
#[serde(bound(deserialize = "'de: 'a"))]
pub struct Group<'a> {
    pub name: Str<'a>,
    /// `None`: allocated at switch time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Str<'a>>,
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
pub const TOP_FIELDS: &[&str] = &["mutableUsers", "users", "groups", "passwordFilesLocation"];

impl Users<'_> {
    /// An owned copy, independent of the text it was parsed from.
    pub fn into_owned(self) -> Users<'static> {
        Users {
            mutable_users: self.mutable_users,
            users: self.users.into_iter().map(User::into_owned).collect(),
            groups: self.groups.into_iter().map(Group::into_owned).collect(),
            precomputed: self.precomputed,
            run_time: self.run_time,
            password_files_location: self.password_files_location.map(Str::into_owned),
        }
    }
}

impl User<'_> {
    /// An owned copy, independent of the text it was parsed from.
    pub fn into_owned(self) -> User<'static> {
        let own = |s: Option<Str>| s.map(Str::into_owned);
        User {
            name: self.name.into_owned(),
            uid: self.uid,
            group: self.group.into_owned(),
            description: self.description.into_owned(),
            home: self.home.into_owned(),
            home_mode: self.home_mode.into_owned(),
            create_home: self.create_home,
            is_system_user: self.is_system_user,
            password: own(self.password),
            hashed_password: own(self.hashed_password),
            hashed_password_file: own(self.hashed_password_file),
            initial_password: own(self.initial_password),
            initial_hashed_password: own(self.initial_hashed_password),
            expires: own(self.expires),
            linger: self.linger,
            shell: own(self.shell),
            auto_sub_uid_gid_range: self.auto_sub_uid_gid_range,
            sub_uid_ranges: self.sub_uid_ranges,
            sub_gid_ranges: self.sub_gid_ranges,
        }
    }
}

impl Group<'_> {
    /// An owned copy, independent of the text it was parsed from.
    pub fn into_owned(self) -> Group<'static> {
        Group {
            name: self.name.into_owned(),
            gid: self.gid,
            members: self.members.into_iter().map(Str::into_owned).collect(),
        }
    }
}

#[cfg(test)]
mod tests;
