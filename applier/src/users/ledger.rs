//! NixOS's ledgers in `/var/lib/nixos`, in `update-users-groups.pl`'s own formats, so that a
//! rollback to a system without etcflip keeps working: `uid-map` and `gid-map` (JSON,
//! name → id: every id ever handed out, never pruned), `declarative-users` and
//! `declarative-groups` (the names the previous activation declared, space-separated) and
//! `auto-subuid-map` (JSON, name → start of its automatic subordinate range).

use std::collections::BTreeMap;

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
    pub(crate) declarative_users: Names,
    pub(crate) declarative_groups: Names,
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
        let ids = |a: &BTreeMap<String, u32>, b: &BTreeMap<String, u32>| {
            let mut out = a.clone();
            out.extend(b.iter().map(|(k, v)| (k.clone(), *v)));
            out
        };
        Ledgers {
            uids: ids(&self.uids, &other.uids),
            gids: ids(&self.gids, &other.gids),
            auto_subuids: ids(&self.auto_subuids, &other.auto_subuids),
            declarative_users: self.declarative_users.union(&other.declarative_users),
            declarative_groups: self.declarative_groups.union(&other.declarative_groups),
        }
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

fn names(text: Option<&str>) -> Names {
    Names::new(text.unwrap_or_default().split_whitespace())
}

/// The names of a `declarative-*` ledger: sorted, each once, in one buffer, as the file
/// holds them (a first switch of a thousand users writes a thousand names: one allocation,
/// not one per name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Names {
    /// The names, separated by single spaces.
    text: String,
    /// Where each name starts in `text`.
    starts: Vec<usize>,
}

impl Names {
    /// The set of `names`.
    pub(crate) fn new<'n>(names: impl Iterator<Item = &'n str>) -> Names {
        let mut names: Vec<&str> = names.collect();
        names.sort_unstable();
        names.dedup();
        let mut out = Names {
            text: String::with_capacity(names.iter().map(|n| n.len() + 1).sum()),
            starts: Vec::with_capacity(names.len()),
        };
        for n in names {
            if !out.starts.is_empty() {
                out.text.push(' ');
            }
            out.starts.push(out.text.len());
            out.text.push_str(n);
        }
        out
    }

    /// Name `i`.
    fn get(&self, i: usize) -> &str {
        let end = self.starts.get(i + 1).map_or(self.text.len(), |s| s - 1);
        self.starts
            .get(i)
            .and_then(|&start| self.text.get(start..end))
            .unwrap_or("")
    }

    /// The names, sorted.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.starts.len()).map(|i| self.get(i))
    }

    /// Whether `name` is one of them.
    pub(crate) fn contains(&self, name: &str) -> bool {
        let (mut low, mut high) = (0, self.starts.len());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.get(mid).cmp(name) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    /// Whether every name here is in `other`.
    pub(crate) fn is_subset(&self, other: &Names) -> bool {
        self.iter().all(|n| other.contains(n))
    }

    /// The names of both.
    pub(crate) fn union(&self, other: &Names) -> Names {
        Names::new(self.iter().chain(other.iter()))
    }

    /// The names as the ledger file holds them: separated by spaces.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_a_sorted_set_written_as_the_ledger_holds_them() {
        // (names given, the set, the ledger's text)
        let cases: [(&[&str], &[&str], &str); 4] = [
            (&[], &[], ""),
            (&["b"], &["b"], "b"),
            (&["c", "a", "b", "a"], &["a", "b", "c"], "a b c"),
            (&["u10", "u2", "u1"], &["u1", "u10", "u2"], "u1 u10 u2"),
        ];
        for (given, set, text) in cases {
            let n = Names::new(given.iter().copied());
            assert_eq!(n.iter().collect::<Vec<_>>(), set, "{given:?}");
            assert_eq!(n.text(), text, "{given:?}");
            assert_eq!(names(Some(&format!(" {text}\n"))), n, "read back: {text:?}");
            for probe in ["a", "b", "c", "u1", "u10", "u2", "", "d", "u"] {
                assert_eq!(
                    n.contains(probe),
                    set.contains(&probe),
                    "{probe} in {given:?}"
                );
            }
        }
    }

    fn ledgers(uids: &[(&str, u32)], declared: &[&str]) -> Ledgers {
        Ledgers {
            uids: uids.iter().map(|(n, id)| ((*n).to_owned(), *id)).collect(),
            declarative_users: Names::new(declared.iter().copied()),
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
