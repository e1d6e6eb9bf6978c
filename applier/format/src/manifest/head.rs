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
        let mut problems: Vec<String> = check_overlay(&head.overlay).err().into_iter().collect();
        problems.extend(
            head.wrappers
                .as_deref()
                .map(wrappers::problems)
                .unwrap_or_default(),
        );
        if problems.is_empty() {
            Ok(head)
        } else {
            Err(Invalid::many(origin, problems).into())
        }
    }

    /// The overlay's line and the trailing `wrappers` value, when the layout is canonical.
    fn from_layout(text: &'a str) -> Option<Head<'a>> {
        let line = text
            .split('\n')
            .find_map(|l| l.strip_prefix("  \"overlay\": "))?;
        let overlay: Str = serde_json::from_str(line.trim_end_matches(',')).ok()?;
        let wrappers = match text.find("\n  \"wrappers\": ") {
            None if text.contains("\"wrappers\"") => return None,
            None => None,
            Some(at) => {
                let value = text[at..]
                    .split_once(": ")?
                    .1
                    .trim_end()
                    .strip_suffix('}')?;
                Some(serde_json::from_str(value).ok()?)
            }
        };
        Some(Head { overlay, wrappers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Id, Mode};

    fn manifest(wrappers: Option<Vec<Wrapper<'static>>>) -> String {
        let mut m = Manifest::empty("/run/etcflip/static");
        m.wrappers = wrappers;
        m.to_json()
    }

    fn ping() -> Wrapper<'static> {
        Wrapper {
            program: "ping".into(),
            source: "/nix/store/x-iputils/bin/ping".into(),
            owner: Id::Name("root".into()),
            group: Id::Num(0),
            mode: Mode(0o511),
            capabilities: Some("cap_net_raw+p".into()),
            sha256: "b".repeat(64).into(),
        }
    }

    #[test]
    fn the_head_is_read_from_the_layout_and_equals_a_full_parse() {
        for wrappers in [None, Some(vec![]), Some(vec![ping()])] {
            let text = manifest(wrappers.clone());
            let fast = Head::from_layout(&text).expect("canonical layout");
            assert_eq!(fast.overlay.as_str(), "/run/etcflip/static");
            assert_eq!(fast.wrappers, wrappers);
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
    fn a_head_that_breaks_the_rules_is_refused() {
        let mut bad = ping();
        bad.mode = Mode(0o4777);
        let text = manifest(Some(vec![bad]));
        let err = Head::of(&text, "m").unwrap_err().to_string();
        assert!(err.contains("m is invalid"), "{err}");
        let text = manifest(None).replace("/run/etcflip/static", "relative");
        assert!(Head::of(&text, "m").is_err());
    }
}
