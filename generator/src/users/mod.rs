//! The `users` part of a generation: the spec's `users` key (exactly NixOS's
//! `users-groups.json`), checked, and what can be settled at build time.
//!
//! - [`parse`] reads it, naming every unknown field and every field of the wrong type;
//! - the format's rules (`applier/format/src/users/`), and the `etc` entries that would write
//!   the same files, are the manifest's own (`Manifest::users_problems`), reported by
//!   `lib.rs` as problems of the input;
//! - `precompute.rs` writes `passwd` and `group` when every id is static, and lists what is left
//!   for the switch.

use serde_json::{Map, Value};

use etcflip_format::manifest::Str;
use etcflip_format::users::{Users, GROUP_FIELDS, TOP_FIELDS, USER_FIELDS};

mod precompute;

pub(crate) use precompute::settle;

/// Parses the spec's `users` value; structural problems (unknown fields, missing fields,
/// wrong types) go to `problems`, every one of them, each naming its user or group.
pub(crate) fn parse(value: Value, problems: &mut Vec<String>) -> Option<Users<'static>> {
    let Value::Object(mut top) = value else {
        problems.push("users: expected an object (NixOS's users-groups.json)".into());
        return None;
    };
    let before = problems.len();
    unknown(&top, TOP_FIELDS, "users", problems);
    let mutable_users = match top.remove("mutableUsers") {
        None => true, // NixOS's default
        Some(Value::Bool(b)) => b,
        Some(other) => {
            problems.push(format!(
                "users: mutableUsers: expected true or false, not {other}"
            ));
            true
        }
    };
    let password_files_location = location(top.remove("passwordFilesLocation"), problems);
    let users = items(top.remove("users"), ("user", USER_FIELDS), problems);
    let groups = items(top.remove("groups"), ("group", GROUP_FIELDS), problems);
    (problems.len() == before).then_some(Users {
        mutable_users,
        users,
        groups,
        precomputed: None,
        run_time: Vec::new(),
        password_files_location,
    })
}

/// `passwordFilesLocation`: a string; `/etc` (userborn's default) is where the files are
/// anyway, so it is left out of the generation. Its rules are the format's.
fn location(value: Option<Value>, problems: &mut Vec<String>) -> Option<Str<'static>> {
    match value? {
        Value::Null => None,
        Value::String(s) if s == "/etc" => None,
        Value::String(s) => Some(Str::from(s)),
        other => {
            problems.push(format!(
                "users: passwordFilesLocation: expected a directory's path, not {other}"
            ));
            None
        }
    }
}

/// The users or the groups: a list of objects, each read on its own.
// `Deserialize<'static>`: the declaration's strings are owned (a `Value` holds them), so
// they borrow from nothing and live as long as the spec.
fn items<T: serde::Deserialize<'static>>(
    list: Option<Value>,
    (what, fields): (&str, &[&str]),
    problems: &mut Vec<String>,
) -> Vec<T> {
    let list = match list {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(list)) => list,
        Some(other) => {
            problems.push(format!("users: {what}s: expected a list, not {other}"));
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.into_iter().enumerate() {
        let Value::Object(obj) = item else {
            problems.push(format!("users: {what} #{}: expected an object", i + 1));
            continue;
        };
        let at = label(what, i, &obj);
        let before = problems.len();
        unknown(&obj, fields, &at, problems);
        match T::deserialize(Value::Object(obj)) {
            Ok(item) if problems.len() == before => out.push(item),
            Ok(_) => {}
            Err(e) => problems.push(format!("{at}: {e}")),
        }
    }
    out
}

/// How a problem names the `i`th user or group: by name when it has one.
fn label(what: &str, i: usize, obj: &Map<String, Value>) -> String {
    match obj.get("name").and_then(Value::as_str) {
        Some(name) => format!("users: {what} {name:?}"),
        None => format!("users: {what} #{}", i + 1),
    }
}

/// Names every key of `obj` not in `known`.
fn unknown(obj: &Map<String, Value>, known: &[&str], at: &str, problems: &mut Vec<String>) {
    for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
        problems.push(format!(
            "{at}: unknown field {key:?} (expected one of: {})",
            known.join(", ")
        ));
    }
}
