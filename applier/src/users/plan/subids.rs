//! `subuid` and `subgid`: each declared user's explicit ranges and, with
//! `autoSubUidGidRange`, one automatic range of 65,536 ids, the same in both files. An
//! automatic range never moves: the ledger `auto-subuid-map` keeps its start; a new one takes
//! the first free slot from 100,000 up. Lines of accounts the plan keeps but did not declare
//! (added at run time) stay; lines of removed accounts go. A range that overlaps another
//! owner's is a clash.

use std::collections::BTreeSet;

use etcflip_format::users::Users;

use super::{Found, Planned};
use crate::users::files::{Entry, Table};

/// The first automatic range, and the size of each.
const AUTO_BASE: u64 = 100_000;
const AUTO_COUNT: u64 = 65_536;
/// Automatic ranges stay below 2^31 (some tools read ids as signed).
const AUTO_END: u64 = 1 << 31;

/// Plans both files; `kept`: the undeclared accounts the plan keeps.
#[allow(clippy::similar_names)] // uid and gid, side by side
pub(super) fn plan(decl: &Users, found: &Found, kept: &BTreeSet<String>, p: &mut Planned) {
    let mut auto = Vec::new();
    for u in decl.users.iter().filter(|u| u.auto_sub_uid_gid_range) {
        let start = found.db.ledgers.auto_subuids.get(u.name.as_str()).copied();
        auto.push((u.name.as_str(), start));
    }
    let explicit_uid = decl.users.iter().flat_map(|u| {
        u.sub_uid_ranges
            .iter()
            .map(move |r| (u.name.as_str(), r.start_uid, r.count))
    });
    let explicit_gid = decl.users.iter().flat_map(|u| {
        u.sub_gid_ranges
            .iter()
            .map(move |r| (u.name.as_str(), r.start_gid, r.count))
    });
    let explicit_uid: Vec<(&str, i64, i64)> = explicit_uid.collect();
    let explicit_gid: Vec<(&str, i64, i64)> = explicit_gid.collect();
    let taken: Vec<(u64, u64)> = (explicit_uid.iter().chain(&explicit_gid))
        .map(|(_, s, c)| (as_u64(*s), as_u64(*c)))
        .chain(kept_ranges(&found.db.subuid, kept))
        .chain(kept_ranges(&found.db.subgid, kept))
        .chain(
            found
                .db
                .ledgers
                .auto_subuids
                .values()
                .map(|s| (u64::from(*s), AUTO_COUNT)),
        )
        .collect();
    let mut autos = Vec::new();
    for (name, start) in auto {
        let start = start.map(u64::from).or_else(|| free_slot(&taken, &autos));
        match start.and_then(|s| u32::try_from(s).ok()) {
            Some(s) => {
                p.db.ledgers.auto_subuids.insert(name.to_owned(), s);
                autos.push((name, u64::from(s)));
            }
            None => p
                .clashes
                .push(format!("user {name}: no free automatic subordinate range")),
        }
    }
    p.db.subuid = table(("subuid", &found.db.subuid), kept, &explicit_uid, &autos, p);
    p.db.subgid = table(("subgid", &found.db.subgid), kept, &explicit_gid, &autos, p);
}

fn as_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The ranges of `t`'s lines for kept accounts.
fn kept_ranges<'a>(
    t: &'a Table,
    kept: &'a BTreeSet<String>,
) -> impl Iterator<Item = (u64, u64)> + 'a {
    (t.entries.iter())
        .filter(|e| kept.contains(&e[0]))
        .filter_map(|e| Some((e[1].parse().ok()?, e[2].parse().ok()?)))
}

/// The first automatic slot that overlaps nothing taken and no automatic range given already.
fn free_slot(taken: &[(u64, u64)], given: &[(&str, u64)]) -> Option<u64> {
    let overlaps = |s: u64| {
        let busy = taken
            .iter()
            .copied()
            .chain(given.iter().map(|(_, g)| (*g, AUTO_COUNT)));
        busy.into_iter()
            .any(|(b, c)| s < b + c && b < s + AUTO_COUNT)
    };
    (0..(AUTO_END - AUTO_BASE) / AUTO_COUNT)
        .map(|k| AUTO_BASE + k * AUTO_COUNT)
        .find(|s| !overlaps(*s))
}

/// One file: kept lines, then the declared ranges (explicit, then automatic); overlaps
/// between different owners are clashes.
fn table(
    (file, found): (&str, &Table),
    kept: &BTreeSet<String>,
    explicit: &[(&str, i64, i64)],
    autos: &[(&str, u64)],
    p: &mut Planned,
) -> Table {
    let mut t = Table::default();
    t.other.clone_from(&found.other);
    t.nis.clone_from(&found.nis);
    let mut entries: Vec<Entry> = (found.entries.iter())
        .filter(|e| kept.contains(&e[0]))
        .cloned()
        .collect();
    let declared = (explicit
        .iter()
        .map(|(n, s, c)| (*n, as_u64(*s), as_u64(*c))))
    .chain(autos.iter().map(|(n, s)| (*n, *s, AUTO_COUNT)));
    for (name, start, count) in declared {
        entries.push(Entry::new([name, &start.to_string(), &count.to_string()]));
    }
    t.set_entries(entries);
    let ranges: Vec<(String, u64, u64)> = (t.entries.iter())
        .filter_map(|e| Some((e[0].to_owned(), e[1].parse().ok()?, e[2].parse().ok()?)))
        .collect();
    for (i, (a, sa, ca)) in ranges.iter().enumerate() {
        for (b, sb, cb) in &ranges[i + 1..] {
            if a != b && sa < &(sb + cb) && sb < &(sa + ca) {
                p.clashes
                    .push(format!("{file}: {a} {sa}+{ca} overlaps {b} {sb}+{cb}"));
            }
        }
    }
    if found.entries != t.entries {
        p.changes
            .push_fmt(format_args!("rewrite the ranges of /etc/{file}"));
    }
    t
}

#[cfg(test)]
mod tests {
    use etcflip_format::users::{SubUidRange, User};

    use super::super::plan;
    use super::*;

    fn user(name: &str, auto: bool) -> User<'static> {
        <User as serde::Deserialize>::deserialize(serde_json::json!({
            "name": name, "uid": null, "group": "100", "home": "/", "autoSubUidGidRange": auto
        }))
        .unwrap()
    }

    fn users(list: Vec<User<'static>>) -> Users<'static> {
        Users {
            mutable_users: true,
            users: list,
            groups: Vec::new(),
            precomputed: None,
            run_time: Vec::new(),
            password_files_location: None,
        }
    }

    #[test]
    fn automatic_ranges_never_move_and_runtime_lines_stay() {
        let mut found = Found::default();
        found.db.passwd = Table::parse("made:x:2000:100::/:/bin/sh\n", 7);
        found.db.subuid = Table::parse("made:100000:65536\n", 3);
        found.db.ledgers.auto_subuids.insert("old".into(), 231_072);
        let p = plan(&users(vec![user("a", true), user("old", true)]), &found);
        assert!(p.clashes.is_empty(), "{:?}", p.clashes);
        assert_eq!(
            p.db.subuid.render(),
            "made:100000:65536\na:165536:65536\nold:231072:65536\n",
            "the runtime line stays, a takes the first free slot, old keeps its range"
        );
        assert_eq!(p.db.subgid.render(), "a:165536:65536\nold:231072:65536\n");
        assert_eq!(p.db.ledgers.auto_subuids.get("a"), Some(&165_536));
    }

    #[test]
    fn a_declared_range_that_overlaps_another_owner_is_a_clash() {
        let mut found = Found::default();
        found.db.passwd = Table::parse("made:x:2000:100::/:/bin/sh\n", 7);
        found.db.subuid = Table::parse("made:100000:65536\n", 3);
        let mut u = user("a", false);
        u.sub_uid_ranges = vec![SubUidRange {
            start_uid: 150_000,
            count: 10,
        }];
        let p = plan(&users(vec![u]), &found);
        assert_eq!(
            p.clashes,
            ["subuid: made 100000+65536 overlaps a 150000+10"],
            "{:?}",
            p.clashes
        );
    }
}
