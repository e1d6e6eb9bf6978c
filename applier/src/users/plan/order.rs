//! Rows sorted by id, in place: the plan makes a thousand passwd and shadow rows in the
//! declaration's order, and the files list them by id. Sorting small (id, position) pairs and
//! then permuting the rows where they are moves each row once and allocates no second table
//! (a thousand rows of entries are ~130 KB: fresh pages, and memory to move).

use crate::users::files::Entry;

/// The rows of `passwd` with those of `shadow` (or of `group`), with their ids, in the order
/// planned.
pub(super) struct Rows {
    ids: Vec<u32>,
    entries: Vec<Entry>,
    /// Each row's shadow entry; an empty entry where it has none.
    shadow: Vec<Entry>,
}

impl Rows {
    pub(super) fn with_capacity(rows: usize) -> Rows {
        Rows {
            ids: Vec::with_capacity(rows),
            entries: Vec::with_capacity(rows),
            shadow: Vec::with_capacity(rows),
        }
    }

    pub(super) fn push(&mut self, id: u32, entry: Entry, shadow: Option<Entry>) {
        self.ids.push(id);
        self.entries.push(entry);
        self.shadow.push(shadow.unwrap_or_default());
    }

    /// The entries by id (equal ids in the order pushed), and the shadow entries in the
    /// same order.
    pub(super) fn sorted(mut self) -> (Vec<Entry>, Vec<Entry>) {
        let order = by_id(&self.ids);
        permute(&mut self.entries, &order);
        permute(&mut self.shadow, &order);
        // An entry always has a field: an empty one stands for none.
        self.shadow.retain(|e| e.len() > 0);
        (self.entries, self.shadow)
    }
}

/// Where each row goes: `order[k]` is the position of the row that ends up at `k`, by id,
/// equal ids in the order given.
pub(super) fn by_id(ids: &[u32]) -> Vec<usize> {
    let mut pairs: Vec<(u32, usize)> = ids.iter().copied().zip(0..).collect();
    pairs.sort_unstable();
    pairs.into_iter().map(|(_, i)| i).collect()
}

/// Rearranges `rows` so that row `k` is the one that was at `order[k]` (`order` a
/// permutation of the positions, as [`by_id`] gives it).
pub(super) fn permute<T>(rows: &mut [T], order: &[usize]) {
    let mut placed = vec![false; rows.len()];
    for start in 0..rows.len() {
        // Each cycle of the permutation once: along it, every swap puts one row in its place.
        let mut k = start;
        while !placed[k] {
            placed[k] = true;
            let from = order[k];
            if from == start {
                break;
            }
            rows.swap(k, from);
            k = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_end_sorted_by_id_and_equal_ids_keep_their_order() {
        // (ids, the rows, sorted)
        let cases: [(&[u32], &[&str], &[&str]); 6] = [
            (&[], &[], &[]),
            (&[5], &["a"], &["a"]),
            (&[3, 1, 2], &["c", "a", "b"], &["a", "b", "c"]),
            (&[2, 1, 2, 1], &["c", "a", "d", "b"], &["a", "b", "c", "d"]),
            (
                &[9, 8, 7, 6, 5],
                &["e", "d", "c", "b", "a"],
                &["a", "b", "c", "d", "e"],
            ),
            (
                &[1, 3, 2, 5, 4, 0],
                &["b", "d", "c", "f", "e", "a"],
                &["a", "b", "c", "d", "e", "f"],
            ),
        ];
        for (ids, rows, sorted) in cases {
            let order = by_id(ids);
            let mut got = rows.to_vec();
            permute(&mut got, &order);
            assert_eq!(got, sorted, "{ids:?}");
        }
    }

    #[test]
    fn rows_and_their_shadow_entries_sort_together_and_none_stays_none() {
        // Enough rows, with ids repeating, that only a sort keeping equal ids in the order
        // pushed gives this; odd rows have no shadow entry.
        let mut rows = Rows::with_capacity(60);
        let mut want: Vec<(u32, usize)> = Vec::new();
        for i in 0..60 {
            let id = u32::try_from((i * 7) % 5).unwrap() + 1000;
            let name = format!("u{i}");
            let shadow = (i % 2 == 0).then(|| Entry::new([name.as_str(), "!"]));
            rows.push(id, Entry::new([name.as_str(), "x"]), shadow);
            want.push((id, i));
        }
        want.sort_by_key(|&(id, _)| id);
        let (entries, shadow) = rows.sorted();
        let names = |v: &[Entry]| v.iter().map(|e| e[0].to_owned()).collect::<Vec<_>>();
        let want_entries: Vec<String> = want.iter().map(|(_, i)| format!("u{i}")).collect();
        assert_eq!(names(&entries), want_entries);
        let want_shadow: Vec<String> = (want.iter().filter(|(_, i)| i % 2 == 0))
            .map(|(_, i)| format!("u{i}"))
            .collect();
        assert_eq!(names(&shadow), want_shadow);
        assert!(shadow.iter().all(|e| &e[1] == "!"));
    }
}
