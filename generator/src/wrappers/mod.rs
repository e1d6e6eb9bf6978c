//! The `wrappers` part of a generation: the spec's `wrappers` key, exactly NixOS's
//! `security.wrappers` (an object keyed by attribute name), checked and settled into one
//! manifest record per program, and one patched `etcflip-wrapper` copy per program in the
//! payload (`payload.rs`).
//!
//! Every problem is listed at once (`problems`), as for the other parts. The fields are NixOS's:
//! `source` (required), `program` (default: the attribute name), `owner` and `group`
//! (required), `setuid`, `setgid`, `permissions` (chmod's form, default `u+rx,g+x,o+x`),
//! `capabilities` (`cap_from_text`'s form, default none) and `enable`.

use std::path::PathBuf;

use serde_json::{Map, Value};

use etcflip_format::manifest::{Id, Mode};
use etcflip_format::wrappers::Wrapper;

pub(crate) mod payload;

/// The fields of one `security.wrappers` entry.
const FIELDS: &[&str] = &[
    "enable",
    "source",
    "program",
    "owner",
    "group",
    "setuid",
    "setgid",
    "permissions",
    "capabilities",
];

/// NixOS's default `permissions`.
const DEFAULT_PERMISSIONS: &str = "u+rx,g+x,o+x";

/// The records of the spec's `wrappers` value, sorted by program, without their sha256 (the
/// payload gives it); every problem goes to `problems`, each naming its attribute and field.
pub(crate) fn parse(value: &Value, problems: &mut Vec<String>) -> Vec<Wrapper<'static>> {
    let Value::Object(top) = value else {
        problems.push("wrappers: expected an object keyed by attribute name".into());
        return Vec::new();
    };
    let mut out = Vec::with_capacity(top.len());
    // Every entry's program, valid or not, so that a duplicate is named with the rest.
    let mut programs: Vec<(&str, String)> = Vec::with_capacity(top.len());
    for (attr, item) in top {
        let at = format!("wrappers.{attr:?}");
        let Value::Object(fields) = item else {
            problems.push(format!("{at}: expected an object"));
            continue;
        };
        if fields.get("enable") == Some(&Value::Bool(false)) {
            continue;
        }
        let program = fields
            .get("program")
            .and_then(Value::as_str)
            .unwrap_or(attr);
        programs.push((program, at.clone()));
        out.extend(one(attr, fields, &at, problems));
    }
    programs.sort_unstable();
    for pair in programs.windows(2).filter(|p| p[0].0 == p[1].0) {
        problems.push(format!(
            "{} and {}: both name the program {:?} (each program is one file in \
             /run/wrappers/bin)",
            pair[0].1, pair[1].1, pair[0].0
        ));
    }
    out.sort_by(|a, b| a.program.cmp(&b.program));
    out
}

/// One entry; `None` when it is disabled or has a problem (listed).
fn one(
    attr: &str,
    f: &Map<String, Value>,
    at: &str,
    problems: &mut Vec<String>,
) -> Option<Wrapper<'static>> {
    let before = problems.len();
    for key in f.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        problems.push(format!(
            "{at}.{key}: unknown field (expected one of: {})",
            FIELDS.join(", ")
        ));
    }
    let mut field = Fields { f, at, problems };
    let enable = field.bool("enable");
    let source = field.string("source", None);
    let program = field.string("program", Some(attr));
    let owner = field.string("owner", None);
    let group = field.string("group", None);
    let setuid = field.bool("setuid").unwrap_or(false);
    let setgid = field.bool("setgid").unwrap_or(false);
    let permissions = field.string("permissions", Some(DEFAULT_PERMISSIONS));
    let capabilities = field.string("capabilities", Some(""));
    if enable == Some(false) {
        return None;
    }
    // As NixOS's `chmod u±s,g±s,<permissions>` on a wrapper at 0000: symbolic clauses apply
    // after the set-id bits (so `u-s` clears one). An octal mode, which NixOS's chmod refuses
    // in that list, is the mode, with the set-id bits added.
    let set_ids = u32::from(setuid) * 0o4000 + u32::from(setgid) * 0o2000;
    let permissions = permissions?;
    let mode = match etcflip_format::mode::apply_to(&permissions, set_ids) {
        Ok(m) if etcflip_format::mode::is_octal(&permissions) => {
            if m & 0o6000 & !set_ids != 0 {
                problems.push(format!(
                    "{at}.permissions: {permissions:?} sets a set-id bit that setuid/setgid do \
                     not: say it with setuid or setgid"
                ));
            }
            m | set_ids
        }
        Ok(m) => m,
        Err(why) => {
            problems.push(format!("{at}.permissions: {why}"));
            0o511
        }
    };
    let capabilities = capabilities?.trim().to_owned();
    let w = Wrapper {
        program: program?.into(),
        source: source?.into(),
        owner: id(&owner?, &format!("{at}.owner"), problems),
        group: id(&group?, &format!("{at}.group"), problems),
        mode: Mode(mode),
        capabilities: (!capabilities.is_empty()).then(|| capabilities.into()),
        sha256: "0".repeat(64).into(),
    };
    // The format's own rules, as the applier checks them; each message names its field.
    problems.extend(w.problems().into_iter().map(|p| format!("{at}: {p}")));
    (problems.len() == before).then_some(w)
}

/// An owner or group: digits are a number (names are never all digits), else a name.
fn id(text: &str, at: &str, problems: &mut Vec<String>) -> Id {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        match text.parse::<u32>() {
            Ok(n) if n < u32::MAX => return Id::Num(n),
            _ => problems.push(format!("{at}: {text:?} is not an id (0 to 4294967294)")),
        }
        return Id::Num(0);
    }
    Id::Name(text.to_owned())
}

/// Typed access to one entry's fields, naming the field in each problem.
struct Fields<'f, 'p> {
    f: &'f Map<String, Value>,
    at: &'f str,
    problems: &'p mut Vec<String>,
}

impl Fields<'_, '_> {
    fn bool(&mut self, name: &str) -> Option<bool> {
        match self.f.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.problems.push(format!(
                    "{}.{name}: expected true or false, not {other}",
                    self.at
                ));
                None
            }
        }
    }

    /// A string field; `default` when absent (or null), a problem when required and absent.
    fn string(&mut self, name: &str, default: Option<&str>) -> Option<String> {
        match (self.f.get(name), default) {
            (Some(Value::String(s)), _) => Some(s.clone()),
            (None | Some(Value::Null), Some(d)) => Some(d.to_owned()),
            (None | Some(Value::Null), None) => {
                self.problems.push(format!(
                    "{}.{name}: required (NixOS has no default for it)",
                    self.at
                ));
                None
            }
            (Some(other), _) => {
                self.problems.push(format!(
                    "{}.{name}: expected a string, not {other}",
                    self.at
                ));
                None
            }
        }
    }
}

/// Where the unpatched `etcflip-wrapper` is: `--wrapper`, else beside this executable (one
/// package ships both in `bin/`).
pub(crate) fn binary_path(given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find etcflip-gen's own executable to look for etcflip-wrapper beside it ({e}); give --wrapper"))?;
    Ok(exe.with_file_name("etcflip-wrapper"))
}

#[cfg(test)]
mod tests;

/// A wrapper's source in the store must exist (NixOS's build check, nixpkgs PR #117188): a
/// wrapper of nothing would fail only when run. Sources elsewhere are read at run time.
pub(crate) fn missing_sources<'w>(
    wrappers: impl Iterator<Item = &'w Wrapper<'w>>,
    store: Option<&str>,
) -> Vec<String> {
    let store = store.unwrap_or("/nix/store");
    wrappers
        .filter(|w| {
            etcflip_format::manifest::is_same_or_below(
                w.source.trim_start_matches('/'),
                store.trim_start_matches('/'),
            )
        })
        .filter(|w| std::fs::symlink_metadata(w.source.as_str()).is_err())
        .map(|w| {
            format!(
                "wrapper {:?}: source {} does not exist in the store",
                w.program.as_str(),
                w.source.as_str()
            )
        })
        .collect()
}

/// The unpatched wrapper binary, read when there are wrappers, and each wrapper's payload hash
/// settled from it (`payload.rs`).
pub(crate) fn settle(
    wrappers: Option<&mut Vec<Wrapper<'static>>>,
    given: Option<&PathBuf>,
) -> anyhow::Result<Option<payload::Binary>> {
    let Some(ws) = wrappers.filter(|ws| !ws.is_empty()) else {
        return Ok(None);
    };
    let binary = payload::Binary::read(&binary_path(given)?)?;
    binary
        .settle(ws)
        .map_err(|why| etcflip_format::errors::Invalid::one(format!("wrappers: {why}")))?;
    Ok(Some(binary))
}
