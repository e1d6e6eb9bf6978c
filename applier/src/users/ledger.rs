//! NixOS's ledgers in `/var/lib/nixos`, in `update-users-groups.pl`'s own formats, so that a
//! rollback to a system without etcflip keeps working: `uid-map` and `gid-map` (JSON,
//! name → id: every id ever handed out, never pruned), `declarative-users` and
//! `declarative-groups` (the names the previous activation declared, space-separated) and
//! `auto-subuid-map` (JSON, name → start of its automatic subordinate range).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};

use crate::fs::Root;

/// Where the ledgers live, relative to the root.
pub(crate) const DIR: &str = "var/lib/nixos";

/// The ledger files, in `DIR`.
pub(crate) const FILES: [&str; 5] = [
    "uid-map",
    "gid-map",
    "declarative-users",
    "declarative-groups",
    "auto-subuid-map",
];

/// The ledgers, as read (missing files are empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ledgers {
    pub(crate) uids: BTreeMap<String, u32>,
    pub(crate) gids: BTreeMap<String, u32>,
    pub(crate) declarative_users: BTreeSet<String>,
    pub(crate) declarative_groups: BTreeSet<String>,
    pub(crate) auto_subuids: BTreeMap<String, u32>,
}

/// The ledger files' texts, in [`FILES`]' order (`None`: missing).
pub(crate) type Texts = [Option<String>; 5];

/// Reads the ledger files under `root`, as they are.
pub(crate) fn read(root: &mut Root) -> Result<Texts> {
    Ok([
        text(root, FILES[0])?,
        text(root, FILES[1])?,
        text(root, FILES[2])?,
        text(root, FILES[3])?,
        text(root, FILES[4])?,
    ])
}

impl Ledgers {
    /// The ledgers in `texts` (read from `root`, which errors name).
    pub(crate) fn parse(root: &Root, texts: &Texts) -> Result<Ledgers> {
        Ok(Ledgers {
            uids: map(root, FILES[0], texts[0].as_deref())?,
            gids: map(root, FILES[1], texts[1].as_deref())?,
            declarative_users: names(texts[2].as_deref()),
            declarative_groups: names(texts[3].as_deref()),
            auto_subuids: map(root, FILES[4], texts[4].as_deref())?,
        })
    }

    /// Whether every name and id recorded here is also recorded, the same, in `other` (then
    /// the union of the two is `other`).
    pub(crate) fn within(&self, other: &Ledgers) -> bool {
        let maps = |a: &BTreeMap<String, u32>, b: &BTreeMap<String, u32>| {
            a.iter().all(|(k, v)| b.get(k) == Some(v))
        };
        maps(&self.uids, &other.uids)
            && maps(&self.gids, &other.gids)
            && maps(&self.auto_subuids, &other.auto_subuids)
            && self.declarative_users.is_subset(&other.declarative_users)
            && self.declarative_groups.is_subset(&other.declarative_groups)
    }

    /// Everything recorded here or in `other` (`other`'s id where both name one).
    pub(crate) fn union(&self, other: &Ledgers) -> Ledgers {
        let mut out = self.clone();
        out.uids
            .extend(other.uids.iter().map(|(k, v)| (k.clone(), *v)));
        out.gids
            .extend(other.gids.iter().map(|(k, v)| (k.clone(), *v)));
        out.auto_subuids
            .extend(other.auto_subuids.iter().map(|(k, v)| (k.clone(), *v)));
        out.declarative_users
            .extend(other.declarative_users.iter().cloned());
        out.declarative_groups
            .extend(other.declarative_groups.iter().cloned());
        out
    }
}

fn text(root: &mut Root, name: &str) -> Result<Option<String>> {
    let rel = format!("{DIR}/{name}");
    match root.read_in_root(&rel)? {
        None => Ok(None),
        Some(bytes) => match String::from_utf8(bytes) {
            Ok(s) => Ok(Some(s)),
            Err(_) => bail!("{} is not UTF-8", root.show(&rel)),
        },
    }
}

fn map(root: &Root, name: &str, text: Option<&str>) -> Result<BTreeMap<String, u32>> {
    ids(text).map_err(|why| {
        anyhow::anyhow!(
            "{}: not the JSON object of names and ids NixOS writes ({why}); fix or move it aside",
            root.show(&format!("{DIR}/{name}"))
        )
    })
}

/// The names and ids of `uid-map`, `gid-map` or `auto-subuid-map` (missing: none); why not,
/// if the text is not such a map.
pub(crate) fn ids(text: Option<&str>) -> Result<BTreeMap<String, u32>, String> {
    let Some(text) = text else {
        return Ok(BTreeMap::new());
    };
    // Older Perl JSON modules wrote some ids as strings ("1000"): both are ids.
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| e.to_string())?;
    raw.into_iter()
        .map(|(k, v)| {
            let id = match &v {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            };
            match id.and_then(|id| u32::try_from(id).ok()) {
                Some(id) => Ok((k, id)),
                None => Err(format!("{k:?} has {v}, not an id")),
            }
        })
        .collect()
}

fn names(text: Option<&str>) -> BTreeSet<String> {
    text.map(|t| t.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledgers(uids: &[(&str, u32)], declared: &[&str]) -> Ledgers {
        Ledgers {
            uids: uids.iter().map(|(n, id)| ((*n).to_owned(), *id)).collect(),
            declarative_users: declared.iter().map(|n| (*n).to_owned()).collect(),
            ..Ledgers::default()
        }
    }

    #[test]
    fn within_and_union() {
        let none = ledgers(&[], &[]);
        let a = ledgers(&[("a", 1000)], &["a"]);
        let ab = ledgers(&[("a", 1000), ("b", 1001)], &["a", "b"]);
        let moved = ledgers(&[("a", 1005)], &["a"]);
        let dropped = ledgers(&[("a", 1000)], &[]);
        // (x, y, x within y)
        let cases = [
            (&none, &none, true),
            (&none, &a, true),
            (&a, &ab, true),
            (&ab, &a, false),
            (&a, &moved, false),
            (&a, &dropped, false),
            (&dropped, &a, true),
        ];
        for (x, y, within) in cases {
            assert_eq!(x.within(y), within, "{x:?} within {y:?}");
            let u = x.union(y);
            assert!(y.within(&u), "{y:?} is within its union with {x:?}");
            if within {
                assert_eq!(u, *y, "{x:?} is within {y:?}: their union is {y:?}");
            }
        }
    }
}
