//! What early boot needs of a manifest, read without its entries or its users: the overlay
//! and the wrappers. A boot on an image that already holds the generation reads only these, so
//! that it costs the same whatever the number of entries.
//!
//! The canonical layout ([`crate::lines`]) puts each top-level key at the start of a line,
//! indented by two spaces, and `wrappers` last; a manifest in another layout is parsed whole.

use anyhow::Result;

use super::{check_overlay, Manifest, Str};
use crate::errors::Invalid;
use crate::wrappers::{self, Wrapper};

/// A manifest's overlay and wrappers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head<'a> {
    pub overlay: Str<'a>,
    pub wrappers: Option<Vec<Wrapper<'a>>>,
}

impl<'a> Head<'a> {
    /// Reads `text`'s overlay and wrappers, checked by the format's rules (`origin` names the
    /// manifest in errors).
    pub fn of(text: &'a str, origin: &str) -> Result<Head<'a>> {
        let head = if let Some(head) = Self::from_layout(text) {
            head
        } else {
            let (m, _) = Manifest::from_json_deferring_users(text, origin)?;
            Head {
                overlay: m.overlay,
                wrappers: m.wrappers,
            }
        };
        head.checked(origin)
    }

    /// An owned copy, independent of the text it was read from.
    pub fn into_owned(self) -> Head<'static> {
        Head {
            overlay: self.overlay.into_owned(),
            wrappers: (self.wrappers).map(|ws| ws.into_iter().map(Wrapper::into_owned).collect()),
        }
    }

    /// The head, when the format's rules hold for it (`origin` names the manifest).
    pub fn checked(self, origin: &str) -> Result<Head<'a>> {
        let mut problems: Vec<String> = check_overlay(&self.overlay).err().into_iter().collect();
        let wrappers = self.wrappers.as_deref().map(wrappers::problems);
        problems.extend(wrappers.unwrap_or_default());
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(Invalid::many(origin, problems).into())
        }
    }

    /// The head of a manifest in the canonical layout from its first and its last lines alone
    /// (`first` and `last`, each whole lines), without the entries between: `None` when they
    /// cannot tell (then read it whole). The wrappers are last; without them, the last value
    /// is the users (an object) or the entries (whose elements have a `target`).
    pub fn of_ends(first: &str, last: &str) -> Option<Head<'static>> {
        let overlay = overlay_of(first)?.into_owned();
        // The entries one per line, as the canonical layout writes them: a manifest only
        // indented the same way is read whole.
        let canonical = [
            "\n  \"entries\": [\n    {\"target\":",
            "\n  \"entries\": [],",
        ];
        if !canonical.iter().any(|c| first.contains(c)) {
            return None;
        }
        let end = last.trim_end();
        let wrappers = if let Some(parsed) = wrappers_in(end).ok()? {
            Some(parsed.into_iter().map(Wrapper::into_owned).collect())
        } else if end.ends_with("\n  }\n}") {
            None
        } else {
            let element = end.strip_suffix("\n  ]\n}")?.rsplit('\n').next()?;
            element
                .trim_start()
                .starts_with("{\"target\":")
                .then_some(None)?
        };
        Some(Head { overlay, wrappers })
    }

    /// The overlay and the trailing `wrappers` value, when the layout is canonical, without
    /// parsing the entries.
    fn from_layout(text: &'a str) -> Option<Head<'a>> {
        let overlay = overlay_of(text)?;
        let wrappers = wrappers_in(text).ok()?;
        Some(Head { overlay, wrappers })
    }
}

/// The `wrappers` key as the canonical layout writes it (last, at the start of a line).
const WRAPPERS_KEY: &[u8] = b"\n  \"wrappers\": ";

/// The `users` key as the canonical layout writes it (after the entries, before the
/// wrappers, at the start of a line).
const USERS_KEY: &[u8] = b"\n  \"users\": ";

/// The `users` part's JSON text, when `end` (the end of a canonical manifest, whole lines)
/// holds its key: what a boot that writes the users in their place (`passwordFilesLocation`)
/// reads of the manifest, whose entries it does not need. `None` when the key is not in `end`
/// (a part longer than `end`, another layout, or no users at all): then read more, or whole.
/// Only a top-level key is at the start of a line indented by two spaces (a string holds no
/// raw newline), so the part's own keys, indented further, are never taken for it.
pub fn users_in(end: &str) -> Option<&str> {
    let at = memchr::memmem::rfind(end.as_bytes(), USERS_KEY)? + USERS_KEY.len();
    let rest = &end[at..];
    let value = match memchr::memmem::find(rest.as_bytes(), WRAPPERS_KEY) {
        Some(w) => rest[..w].strip_suffix(',')?,
        None => rest.trim_end().strip_suffix('}')?.trim_end(),
    };
    Some(value)
}

/// The wrappers of `text`, a canonical manifest or its end: `Ok(None)` when it has no
/// `wrappers` key, an error when the value after it does not parse. A key at the start of a
/// line, indented by two spaces, is a top-level one (a string holds no raw newline); memmem
/// finds it at memory speed.
fn wrappers_in(text: &str) -> Result<Option<Vec<Wrapper<'_>>>, ()> {
    let Some(at) = memchr::memmem::find(text.as_bytes(), WRAPPERS_KEY) else {
        return Ok(None);
    };
    let value = text[at + WRAPPERS_KEY.len()..]
        .trim_end()
        .strip_suffix('}')
        .ok_or(())?;
    serde_json::from_str(value).map(Some).map_err(drop)
}

/// The overlay, from the canonical layout's start (as the generator writes it: `version`
/// and `overlay` first).
fn overlay_of(text: &str) -> Option<Str<'_>> {
    let rest = text.strip_prefix("{\n  \"version\": 1,\n  \"overlay\": ")?;
    let line = rest.split_once('\n')?.0;
    serde_json::from_str(line.strip_suffix(',')?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::ping;

    fn manifest(wrappers: Option<Vec<Wrapper<'static>>>) -> String {
        let mut m = Manifest::empty("/run/etcflip/static");
        m.wrappers = wrappers;
        m.to_json()
    }

    /// With a users part (an object whose lines are indented further) before the wrappers.
    fn with_users(wrappers: Option<Vec<Wrapper<'static>>>) -> String {
        let users = r#"{"mutableUsers": true, "users": [{"name": "a", "group": "users",
            "home": "/home/a"}], "groups": [{"name": "users", "gid": 100}]}"#;
        let mut m = Manifest::empty("/run/etcflip/static");
        m.users = Some(serde_json::from_str(users).unwrap());
        m.wrappers = wrappers;
        m.to_json()
    }

    #[test]
    fn the_head_is_read_from_the_layout_and_equals_a_full_parse() {
        let cases = [None, Some(vec![]), Some(vec![ping()])];
        for (wrappers, users) in cases.iter().flat_map(|w| [(w, false), (w, true)]) {
            let text = if users {
                with_users(wrappers.clone())
            } else {
                manifest(wrappers.clone())
            };
            let fast = Head::from_layout(&text).expect("canonical layout");
            assert_eq!(fast.overlay.as_str(), "/run/etcflip/static");
            assert_eq!(&fast.wrappers, wrappers);
            let full = Head::of(&text, "m").unwrap();
            assert_eq!(full, fast);
        }
        // Another layout (one line): parsed whole, with the same result.
        let text = serde_json::to_string(
            &serde_json::from_str::<serde_json::Value>(&manifest(Some(vec![ping()]))).unwrap(),
        )
        .unwrap();
        assert!(Head::from_layout(&text).is_none());
        assert_eq!(Head::of(&text, "m").unwrap().wrappers, Some(vec![ping()]));
    }

    #[test]
    fn the_ends_of_a_manifest_tell_its_head_or_say_they_cannot() {
        let cases = [None, Some(vec![]), Some(vec![ping()])];
        for (wrappers, users) in cases.iter().flat_map(|w| [(w, false), (w, true)]) {
            let mut m = Manifest::empty("/run/etcflip/static");
            for i in 0..50 {
                m.entries.push(crate::manifest::Entry {
                    target: format!("e{i:02}").into(),
                    kind: crate::manifest::Kind::Symlink,
                    source: Some("/nix/store/x".into()),
                    mode: None,
                    uid: None,
                    gid: None,
                    sha256: None,
                });
            }
            if users {
                let text = r#"{"mutableUsers": true, "users": [], "groups": []}"#;
                m.users = Some(serde_json::from_str(text).unwrap());
            }
            m.wrappers.clone_from(wrappers);
            let text = m.to_json();
            // The first and last 5 lines, as boot reads them.
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let first = lines[..5].concat();
            let last = lines[lines.len() - 5..].concat();
            let head = Head::of_ends(&first, &last).expect("told by its ends");
            assert_eq!(head, Head::of(&text, "m").unwrap(), "{wrappers:?} {users}");
        }
        // Indented as the layout is but not written by it: no answer.
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&with_users(Some(vec![ping()]))).unwrap(),
        )
        .unwrap();
        let lines: Vec<&str> = pretty.split_inclusive('\n').collect();
        let ends = (lines[..8].concat(), lines[lines.len() - 3..].concat());
        assert_eq!(Head::of_ends(&ends.0, &ends.1), None, "{pretty}");
        // Too few lines to see where the last value starts: no answer, never a wrong one.
        let mut m = Manifest::empty("/run/x");
        m.wrappers = Some(vec![ping()]);
        let text = m.to_json();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let last = lines[lines.len() - 2..].concat();
        assert_eq!(Head::of_ends(&lines[..5].concat(), &last), None);
    }

    #[test]
    fn the_users_part_is_found_at_the_end_or_not_at_all() {
        let cases = [None, Some(vec![]), Some(vec![ping()])];
        for wrappers in cases {
            let text = with_users(wrappers.clone());
            let full = Manifest::from_json(&text, "m").unwrap();
            let part = users_in(&text).expect("a users part");
            let mut m = Manifest::empty("/run/etcflip/static");
            m.parse_users(part, "m").unwrap();
            assert_eq!(m.users, full.users, "{wrappers:?}");
            // An end that starts inside the part does not hold its key: no answer.
            let inside = &text[text.find("\"groups\"").unwrap()..];
            assert_eq!(users_in(inside), None, "{wrappers:?}");
            // Without users: none found.
            assert_eq!(users_in(&manifest(wrappers.clone())), None);
        }
    }

    #[test]
    fn a_head_that_breaks_the_rules_is_refused() {
        let mut bad = ping();
        bad.mode = crate::manifest::Mode(0o4777);
        let text = manifest(Some(vec![bad]));
        let err = Head::of(&text, "m").unwrap_err().to_string();
        assert!(err.contains("m is invalid"), "{err}");
        let text = manifest(None).replace("/run/etcflip/static", "relative");
        assert!(Head::of(&text, "m").is_err());
    }
}
