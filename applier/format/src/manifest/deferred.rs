//! A manifest read with its `users` part left as text until it is wanted.
//!
//! A re-switch of the generation the root already holds (every boot, every deploy that does
//! not change it) often needs nothing from a large `users` part: when the user database is
//! still as that generation's last switch left it (see the applier's `users/seal.rs`), it is
//! never planned, so it need not be parsed either. Parsing thousands of users was the largest
//! cost of such a switch.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Entry, Manifest, Str};
use crate::errors::Invalid;
use crate::users::Users;
use crate::wrappers::Wrapper;

/// The manifest's fields, `users` as its JSON text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw<'a> {
    version: u32,
    #[serde(borrow)]
    overlay: Str<'a>,
    #[serde(borrow)]
    entries: Vec<Entry<'a>>,
    #[serde(default, borrow)]
    users: Option<&'a RawValue>,
    #[serde(default, borrow)]
    wrappers: Option<Vec<Wrapper<'a>>>,
}

impl<'a> Manifest<'a> {
    /// Parses and validates `text` like [`Manifest::from_json`], except the `users` part: it
    /// is returned as its JSON text, parsed and checked by [`Manifest::parse_users`] only if
    /// it is wanted. The rule that no `etc` entry names a file the `users` part writes is
    /// checked here, since it only needs to know that there is one.
    pub fn from_json_deferring_users(
        text: &'a str,
        origin: &str,
    ) -> anyhow::Result<(Manifest<'a>, Option<&'a str>)> {
        let raw: Raw = serde_json::from_str(text)
            .map_err(|e| Invalid::one(format!("{origin}: not a valid version-1 manifest: {e}")))?;
        let manifest = Manifest {
            version: raw.version,
            overlay: raw.overlay,
            entries: raw.entries,
            users: None,
            wrappers: raw.wrappers,
        };
        let users = raw.users.map(RawValue::get);
        let mut problems = manifest.problems();
        if users.is_some() {
            problems.extend(super::rules::managed_twice(&manifest));
        }
        if problems.is_empty() {
            Ok((manifest, users))
        } else {
            Err(Invalid::many(origin, problems).into())
        }
    }

    /// Parses and checks a `users` part [`Manifest::from_json_deferring_users`] left as
    /// `text`, and makes it this manifest's: every problem is reported at once, as
    /// [`Manifest::from_json`] reports them.
    pub fn parse_users(&mut self, text: &'a str, origin: &str) -> anyhow::Result<()> {
        let users: Users = serde_json::from_str(text).map_err(|e| {
            Invalid::one(format!(
                "{origin}: not a valid version-1 manifest: in its users part: {e}"
            ))
        })?;
        self.users = Some(users);
        let problems = self.users_problems();
        if problems.is_empty() {
            Ok(())
        } else {
            self.users = None;
            Err(Invalid::many(origin, problems).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: &str = r#"{"mutableUsers": true, "users": [{"name": "alice", "uid": 1000,
        "group": "users", "home": "/home/alice"}], "groups": [{"name": "users", "gid": 100}]}"#;

    fn manifest(entries: &str, users: Option<&str>) -> String {
        let users = users
            .map(|u| format!(r#", "users": {u}"#))
            .unwrap_or_default();
        format!(r#"{{"version": 1, "overlay": "/etc/static", "entries": [{entries}]{users}}}"#)
    }

    #[test]
    fn deferred_then_parsed_is_what_a_full_parse_gives() {
        let text = manifest("", Some(USERS));
        let (mut m, users) = Manifest::from_json_deferring_users(&text, "m").unwrap();
        assert!(m.users.is_none());
        m.parse_users(users.unwrap(), "m").unwrap();
        assert_eq!(m, Manifest::from_json(&text, "m").unwrap());
        let text = manifest("", None);
        let (m, users) = Manifest::from_json_deferring_users(&text, "m").unwrap();
        assert_eq!((m, users), (Manifest::from_json(&text, "m").unwrap(), None));
    }

    #[test]
    fn each_check_happens_once_the_part_is_there() {
        // (manifest, what deferring reports, what parsing the users part reports)
        let bad_user = USERS.replace(r#""name": "alice""#, r#""name": "a:b""#);
        let passwd = r#"{"target": "passwd", "kind": "symlink"}"#;
        let cases = [
            (
                manifest(passwd, Some(USERS)),
                Some("/etc/passwd is written by the users part"),
                None,
            ),
            (
                manifest("", Some(&bad_user)),
                None,
                Some("users: user \"a:b\": name \"a:b\" contains ':'"),
            ),
            (
                manifest(
                    "",
                    Some(r#"{"mutableUsers": true, "users": [], "groups": [], "x": 1}"#),
                ),
                None,
                Some("unknown field `x`"),
            ),
            (
                manifest("", Some("[]")),
                None,
                Some("expected struct Users"),
            ),
            (
                r#"{"version": 1, "overlay": "/etc/static", "entries": [], "userz": {}}"#
                    .to_owned(),
                Some("unknown field `userz`"),
                None,
            ),
        ];
        for (text, deferring, parsing) in cases {
            let got = Manifest::from_json_deferring_users(&text, "m");
            match (deferring, got) {
                (Some(want), Err(e)) => assert!(format!("{e:#}").contains(want), "{e:#}"),
                (None, Ok((mut m, Some(users)))) => {
                    let e = m.parse_users(users, "m").unwrap_err();
                    let want = parsing.unwrap();
                    assert!(format!("{e:#}").contains(want), "{want}: {e:#}");
                    assert!(m.users.is_none(), "an invalid part is not kept");
                    let full = Manifest::from_json(&text, "m").unwrap_err();
                    assert!(format!("{full:#}").contains(want), "{full:#}");
                }
                (want, got) => panic!("{text}: wanted {want:?}, got {got:?}"),
            }
        }
    }
}
