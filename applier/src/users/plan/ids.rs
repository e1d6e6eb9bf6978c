//! Ids: the ranges NixOS allocates in, what is taken or reserved, and settling the id of one
//! declared account (kept, static, revived or allocated; a clash otherwise).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::Planned;
use crate::users::files::{id_of, Table};

/// An id range to allocate in, and its direction.
#[derive(Clone, Copy)]
pub(super) struct Range {
    low: u32,
    high: u32,
    down: bool,
}

pub(super) const SYSTEM: Range = Range {
    low: 400,
    high: 999,
    down: true,
};
pub(super) const NORMAL: Range = Range {
    low: 1000,
    high: 29_999,
    down: false,
};

/// Ids taken, and the ledger that reserves more and may give one back.
pub(super) struct Ids<'a> {
    /// On the root, or declared static.
    taken: BTreeSet<u32>,
    /// Handed out by this plan.
    allocated: BTreeSet<u32>,
    ledger: &'a BTreeMap<String, u32>,
    /// How many names the ledger gives each id.
    recorded: BTreeMap<u32, usize>,
    /// Where the last scan of each range (low end, direction) stopped.
    resume: BTreeMap<(u32, bool), u32>,
}

impl<'a> Ids<'a> {
    pub(super) fn new(
        on_root: impl Iterator<Item = u32>,
        declared: impl Iterator<Item = u32>,
        ledger: &'a BTreeMap<String, u32>,
    ) -> Ids<'a> {
        let mut recorded = BTreeMap::new();
        for id in ledger.values() {
            *recorded.entry(*id).or_insert(0) += 1;
        }
        Ids {
            taken: on_root.chain(declared).collect(),
            allocated: BTreeSet::new(),
            ledger,
            recorded,
            resume: BTreeMap::new(),
        }
    }

    /// `name`'s id from the ledger when it is free, else the first id of `range` that is
    /// neither taken nor in the ledger; `None` when the range is exhausted. The `bool`:
    /// revived from the ledger.
    fn allocate(&mut self, name: &str, range: Range) -> Option<(u32, bool)> {
        if let Some(&old) = self.ledger.get(name) {
            let others = self.recorded.get(&old).is_some_and(|n| *n > 1);
            if !self.taken.contains(&old) && !self.allocated.contains(&old) && !others {
                self.allocated.insert(old);
                return Some((old, true));
            }
        }
        let free = |id: &u32| {
            !self.taken.contains(id)
                && !self.allocated.contains(id)
                && !self.recorded.contains_key(id)
        };
        // Ids are handed out in order, so a scan resumes where the last one of this range
        // stopped: a thousand new users cost one pass, not a thousand.
        let resume = self.resume.get(&(range.low, range.down)).copied();
        let id = if range.down {
            let from = resume.map_or(range.high, |r| r.min(range.high));
            (range.low..=from).rev().find(free)
        } else {
            let from = resume.map_or(range.low, |r| r.max(range.low));
            (from..=range.high).find(free)
        }?;
        self.allocated.insert(id);
        self.resume.insert((range.low, range.down), id);
        Some((id, false))
    }
}

/// The accounts of a file on the root, by name and by id.
pub(super) struct Holders<'a> {
    pub(super) by_name: HashMap<&'a str, u32>,
    /// (id, name), sorted: one allocation for a file of thousands of accounts.
    by_id: Vec<(u32, &'a str)>,
}

impl<'a> Holders<'a> {
    /// The entries of `t` whose id is field `i`.
    pub(super) fn of(t: &Table, i: usize) -> Holders<'_> {
        let mut h = Holders {
            by_name: HashMap::with_capacity(t.entries.len()),
            by_id: Vec::with_capacity(t.entries.len()),
        };
        for e in &t.entries {
            if let Some(id) = id_of(e, i) {
                h.by_name.entry(&e[0]).or_insert(id);
                h.by_id.push((id, &e[0]));
            }
        }
        // A line etcflip does not understand (a stray trailing ':') may still be one libc
        // reads: its id is held all the same.
        for line in &t.other {
            let name = line.split(':').next().unwrap_or_default();
            if let Some(id) = line.split(':').nth(i).and_then(|f| f.parse().ok()) {
                h.by_id.push((id, name));
            }
        }
        h.by_id.sort_unstable();
        h
    }

    /// Every id held, in order (once each).
    pub(super) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        let all = self.by_id.iter().map(|&(id, _)| id);
        all.clone()
            .zip(std::iter::once(None).chain(all.map(Some)))
            .filter(|&(id, before)| before != Some(id))
            .map(|(id, _)| id)
    }

    /// Who holds `id`.
    fn of_id(&self, id: u32) -> impl Iterator<Item = &'a str> + '_ {
        let from = self.by_id.partition_point(|&(i, _)| i < id);
        self.by_id[from..]
            .iter()
            .take_while(move |&&(i, _)| i == id)
            .map(|&(_, name)| name)
    }
}

/// A declared id, as the rules let it be (checked at build time: 0..2^32-2).
pub(super) fn declared(id: Option<i64>) -> Option<u32> {
    id.and_then(|id| u32::try_from(id).ok())
}

/// The id of a declared account: its id on the root, its static id, or a new one.
pub(super) fn settle_id(
    (kind, name): (&str, &str),
    (on_root, static_id): (Option<u32>, Option<u32>),
    holders: &Holders,
    (ids, range): (&mut Ids, Range),
    p: &mut Planned,
) -> Option<u32> {
    let what = if kind == "user" { "uid" } else { "gid" };
    match (on_root, static_id) {
        (Some(have), Some(want)) if have != want => {
            p.clashes.push(format!(
                "{kind} {name} has {what} {have} on the root, the declaration says {want}: \
                 etcflip never changes an id"
            ));
            None
        }
        (Some(have), _) => Some(have),
        (None, Some(want)) => {
            let other = holders.of_id(want).find(|n| *n != name);
            if let Some(other) = other {
                p.clashes.push(format!(
                    "{kind} {name}: {what} {want} belongs to {kind} {other} on the root"
                ));
                return None;
            }
            let mut id = itoa::Buffer::new();
            let id = id.format(want);
            p.changes
                .push_parts(&["create ", kind, " ", name, " (", what, " ", id, ")"]);
            Some(want)
        }
        (None, None) => {
            let Some((id, revived)) = ids.allocate(name, range) else {
                p.clashes.push(format!(
                    "{kind} {name}: no free {what} left in {}..{}",
                    range.low, range.high
                ));
                return None;
            };
            let verb = if revived { "revive" } else { "allocate" };
            let mut text = itoa::Buffer::new();
            let text = text.format(id);
            let line = [
                "create ", kind, " ", name, " (", verb, " ", what, " ", text, ")",
            ];
            p.changes.push_parts(&line);
            Some(id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_list_each_id_once_and_every_holder_of_an_id() {
        let t = Table::parse(
            "a:x:5:1\nb:x:3:1\nc:x:5:1\nd:x:none:1\ne:x:9:1\n# x\nstray:x:7:1:\n",
            4,
        );
        let h = Holders::of(&t, 2);
        assert_eq!(h.ids().collect::<Vec<_>>(), [3, 5, 7, 9]);
        let cases: [(u32, &[&str]); 5] = [
            (3, &["b"]),
            (5, &["a", "c"]),
            (7, &["stray"]),
            (9, &["e"]),
            (4, &[]),
        ];
        for (id, want) in cases {
            assert_eq!(h.of_id(id).collect::<Vec<_>>(), want, "id {id}");
        }
        assert_eq!(h.by_name.get("a"), Some(&5));
        assert_eq!(h.by_name.get("d"), None);
    }
}
