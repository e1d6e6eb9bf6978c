//! Reading the spec: the JSON object the NixOS module writes with `builtins.toJSON`.
//!
//! Parsing is structural only (types, known keys); every problem is collected instead of stopping
//! at the first, so one run reports everything wrong with a spec. The semantic rules (targets,
//! sources, modes, owners) live in `etc/resolve.rs` and apply to imported trees too.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use etcflip_format::users::Users;
use etcflip_format::wrappers::Wrapper;

use crate::decl::{Decl, Origin};

/// The top-level keys a spec may have.
const TOP_KEYS: &[&str] = &["etc", "users", "wrappers", "overlay", "store"];
/// The fields of one `environment.etc` entry.
const ETC_FIELDS: &[&str] = &[
    "enable", "target", "source", "text", "mode", "uid", "gid", "user", "group",
];

/// What a spec contributes, before validation.
#[derive(Debug, Default)]
pub(crate) struct Spec {
    /// The `overlay` key, if given.
    pub(crate) overlay: Option<String>,
    /// The `store` key, if given: copy sources outside it are runtime copies.
    pub(crate) store: Option<String>,
    /// The enabled `etc` entries, sorted by attribute name (NixOS's attrset order).
    pub(crate) decls: Vec<Decl>,
    /// The `users` part, structurally valid (its rules are checked later).
    pub(crate) users: Option<Users<'static>>,
    /// The `wrappers` part, checked, without the payload's hashes yet.
    pub(crate) wrappers: Option<Vec<Wrapper<'static>>>,
}

/// Parses the spec text; structural problems are appended to `problems`.
///
/// Objects are first split into raw, borrowed slices of `text` and each `etc` entry is parsed
/// on its own, so memory stays near the size of the text even for 100,000 entries (a full
/// `Value` tree costs about a kilobyte per entry).
pub(crate) fn parse(text: &str, problems: &mut Vec<String>) -> Spec {
    let Some(top) = object(text, problems, "the spec", "must be a JSON object") else {
        return Spec::default();
    };
    let mut spec = Spec::default();
    for (key, raw) in top {
        match key.as_str() {
            "etc" => spec.decls = parse_etc(raw, problems),
            "users" if !is_empty(raw) => match serde_json::from_str(raw.get()) {
                Ok(value) => spec.users = crate::users::parse(value, problems),
                Err(e) => problems.push(format!("users: {e}")),
            },
            "users" => {}
            // `{}` declares no wrappers (the applier then empties /run/wrappers/bin); null
            // leaves wrappers to something else.
            "wrappers" if raw.get() == "null" => {}
            "wrappers" => match serde_json::from_str(raw.get()) {
                Ok(value) => spec.wrappers = Some(crate::wrappers::parse(&value, problems)),
                Err(e) => problems.push(format!("wrappers: {e}")),
            },
            "overlay" => spec.overlay = top_string(&key, raw, problems),
            "store" => spec.store = top_string(&key, raw, problems),
            _ => problems.push(format!(
                "unknown top-level key {key:?} (expected one of: {})",
                TOP_KEYS.join(", ")
            )),
        }
    }
    spec
}

/// A top-level key whose value must be a string (checked further by the caller).
fn top_string(key: &str, raw: &RawValue, problems: &mut Vec<String>) -> Option<String> {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::String(s)) => Some(s),
        Ok(other) => {
            problems.push(format!(
                "{key}: expected a string, not {}",
                type_name(&other)
            ));
            None
        }
        Err(e) => {
            problems.push(format!("{key}: {e}"));
            None
        }
    }
}

/// Splits a JSON object into its members, unparsed; `None` (with a problem) for anything else.
fn object<'a>(
    text: &'a str,
    problems: &mut Vec<String>,
    what: &str,
    expected: &str,
) -> Option<BTreeMap<String, &'a RawValue>> {
    match serde_json::from_str(text) {
        Ok(map) => Some(map),
        // Not an object, or not JSON at all: parse again only to say which.
        Err(e) => {
            problems.push(match serde_json::from_str::<Value>(text) {
                Ok(v) => format!("{what} {expected}, not {}", type_name(&v)),
                Err(_) => format!("{what} is not valid JSON: {e}"),
            });
            None
        }
    }
}

/// Null, `{}` and `[]` count as "not given".
fn is_empty(raw: &RawValue) -> bool {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::Null) => true,
        Ok(Value::Object(m)) => m.is_empty(),
        Ok(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn parse_etc(raw: &RawValue, problems: &mut Vec<String>) -> Vec<Decl> {
    if raw.get() == "null" {
        return Vec::new();
    }
    let expected = "expected an object keyed by attribute name";
    let Some(map) = object(raw.get(), problems, "etc:", expected) else {
        return Vec::new();
    };
    let mut decls = Vec::with_capacity(map.len());
    for (attr, raw) in map {
        let label = format!("etc.{attr:?}");
        match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::Object(fields)) => {
                if let Some(d) = parse_entry(&attr, fields, &label, problems) {
                    decls.push(d);
                }
            }
            Ok(other) => problems.push(format!(
                "{label}: expected an object, not {}",
                type_name(&other)
            )),
            Err(e) => problems.push(format!("{label}: {e}")),
        }
    }
    // Keys come sorted from the BTreeMap: NixOS's attrset order, which decides which of two
    // duplicates is named first.
    decls
}

/// One entry; `None` when it is disabled or too broken to go on with.
fn parse_entry(
    attr: &str,
    mut fields: Map<String, Value>,
    label: &str,
    problems: &mut Vec<String>,
) -> Option<Decl> {
    let before = problems.len();
    let mut take = |name: &str| fields.remove(name);
    let mut field = |name: &str, v: Option<Value>, want: Want| -> Option<Value> {
        let v = v?;
        if want.accepts(&v) {
            Some(v)
        } else {
            problems.push(format!(
                "{label}.{name}: expected {}, not {}",
                want.describe(),
                type_name(&v)
            ));
            None
        }
    };
    let enable = field("enable", take("enable"), Want::Bool);
    let target = field("target", take("target"), Want::String);
    let source = field("source", take("source"), Want::NullableString);
    let text = field("text", take("text"), Want::NullableString);
    let mode = field("mode", take("mode"), Want::String);
    let uid = field("uid", take("uid"), Want::Id);
    let gid = field("gid", take("gid"), Want::Id);
    let user = field("user", take("user"), Want::String);
    let group = field("group", take("group"), Want::String);
    for unknown in fields.keys() {
        problems.push(format!(
            "{label}.{unknown}: unknown field (expected one of: {})",
            ETC_FIELDS.join(", ")
        ));
    }
    // `enable = false` drops the entry before any semantic rule, as NixOS does; its structural
    // problems above are still reported, as the NixOS module system would type-check it too.
    if enable.as_ref().and_then(Value::as_bool) == Some(false) || problems.len() > before {
        return None;
    }
    // `user`/`group` win over `uid`/`gid`; their defaults are the numeric `+<id>` spelling.
    let owner = |name: Option<Value>, id: Option<Value>| match name {
        Some(Value::String(s)) => s,
        _ => format!("+{}", id.as_ref().and_then(Value::as_u64).unwrap_or(0)),
    };
    let mut d = Decl::new(attr, Origin::Spec);
    d.target = string(target).unwrap_or(d.target);
    d.source = string(source);
    d.text = string(text);
    d.mode = string(mode).unwrap_or(d.mode);
    d.user = owner(user, uid);
    d.group = owner(group, gid);
    Some(d)
}

fn string(v: Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// The JSON type a field must have.
#[derive(Clone, Copy)]
enum Want {
    Bool,
    String,
    NullableString,
    /// A numeric uid/gid: 0 ≤ n < 2³²−1 (the all-ones value means "unchanged" to chown).
    Id,
}

impl Want {
    fn accepts(self, v: &Value) -> bool {
        match self {
            Want::Bool => v.is_boolean(),
            Want::String => v.is_string(),
            Want::NullableString => v.is_string() || v.is_null(),
            Want::Id => v.as_u64().is_some_and(|n| n < u64::from(u32::MAX)),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Want::Bool => "a boolean",
            Want::String => "a string",
            Want::NullableString => "a string or null",
            Want::Id => "an integer from 0 to 4294967294",
        }
    }
}

fn type_name(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Spec {
        let mut problems = Vec::new();
        let spec = parse(text, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        spec
    }

    fn problems_of(text: &str) -> Vec<String> {
        let mut problems = Vec::new();
        parse(text, &mut problems);
        problems
    }

    #[test]
    fn defaults_follow_nixos() {
        let spec = parse_ok(r#"{"etc": {"b": {"source": "/s"}, "a": {"text": "x"}}}"#);
        assert_eq!(spec.overlay, None);
        let a = &spec.decls[0];
        assert_eq!((a.attr.as_str(), a.target.as_str()), ("a", "a"));
        assert_eq!(a.text.as_deref(), Some("x"));
        assert_eq!(a.mode, "symlink");
        assert_eq!((a.user.as_str(), a.group.as_str()), ("+0", "+0"));
        assert_eq!(spec.decls[1].source.as_deref(), Some("/s"));
    }

    #[test]
    fn user_and_group_win_over_ids() {
        let spec = parse_ok(
            r#"{"etc": {
                "a": {"text": "x", "uid": 5, "gid": 6},
                "b": {"text": "x", "uid": 5, "user": "nginx", "gid": 6, "group": "+7"}
            }}"#,
        );
        assert_eq!(
            (spec.decls[0].user.as_str(), spec.decls[0].group.as_str()),
            ("+5", "+6")
        );
        assert_eq!(
            (spec.decls[1].user.as_str(), spec.decls[1].group.as_str()),
            ("nginx", "+7")
        );
    }

    #[test]
    fn disabled_entries_are_dropped_and_nulls_are_absent() {
        let spec = parse_ok(
            r#"{"etc": {"off": {"enable": false, "source": "/x"},
                        "on": {"enable": true, "source": null, "text": "t"}},
                "users": {}, "wrappers": null, "overlay": "/run/x", "store": "/nix/store"}"#,
        );
        assert_eq!(spec.decls.len(), 1);
        assert_eq!(spec.decls[0].source, None);
        assert_eq!(spec.overlay.as_deref(), Some("/run/x"));
        assert_eq!(spec.store.as_deref(), Some("/nix/store"));
    }

    #[test]
    fn structural_problems_are_all_listed() {
        let p = problems_of(
            r#"{"etc": {"a": {"mode": 644, "bogus": 1, "uid": -1},
                        "b": "nope", "c": {"enable": "yes"}},
                "users": {"users": [], "extra": 1}, "wrappers": {"x": {"owner": "root"}}, "other": 1, "overlay": 3,
                "store": null}"#,
        );
        for want in [
            "etc.\"a\".mode: expected a string, not 644",
            "etc.\"a\".bogus: unknown field",
            "etc.\"a\".uid: expected an integer",
            "etc.\"b\": expected an object, not a string",
            "etc.\"c\".enable: expected a boolean",
            "users: unknown field \"extra\"",
            "wrappers.\"x\".source: required",
            "wrappers.\"x\".group: required",
            "unknown top-level key \"other\"",
            "overlay: expected a string, not 3",
            "store: expected a string, not null",
        ] {
            assert!(
                p.iter().any(|s| s.contains(want)),
                "{want:?} missing in {p:#?}"
            );
        }
        assert_eq!(p.len(), 11, "{p:#?}");
    }

    #[test]
    fn non_objects_are_refused() {
        assert!(problems_of("[]")[0].contains("must be a JSON object, not an array"));
        assert!(problems_of("{").first().unwrap().contains("not valid JSON"));
        assert!(problems_of(r#"{"etc": []}"#)[0].contains("etc: expected an object"));
    }
}
