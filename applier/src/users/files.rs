//! The colon-separated user database files (`passwd`, `group`, `shadow`, `subuid`, `subgid`),
//! read so that nothing etcflip does not understand is lost: comments, blank or malformed
//! lines and NIS compat lines (`+…`, `-…`) are kept as they are, and NIS lines stay last.
//!
//! An entry is its line and where its fields end, one allocation per line: the files of a
//! system with thousands of users are read, planned and compared on every switch, and a
//! string per field (and per index key) made that most of a no-op switch's time.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::ops::Index;

/// The most fields an entry has (`shadow`).
const MAX_FIELDS: usize = 9;

/// One entry: a line of colon-separated fields (the default: none, not even an empty one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    line: String,
    /// Byte offset in `line` where each field ends (the first `n`).
    ends: [u32; MAX_FIELDS],
    n: u8,
}

impl Entry {
    /// The entry with these fields (none may hold `:`; the rules and the plan make sure).
    pub(crate) fn new<'s>(fields: impl IntoIterator<Item = &'s str>) -> Entry {
        let mut all: [&str; MAX_FIELDS] = [""; MAX_FIELDS];
        let mut n = 0;
        for f in fields.into_iter().take(MAX_FIELDS) {
            all[n] = f;
            n += 1;
        }
        let all = &all[..n];
        // Sized at once: grown push by push, a shadow line cost five reallocations.
        let len = all.iter().map(|f| f.len() + 1).sum::<usize>();
        let mut e = Entry {
            line: String::with_capacity(len),
            ends: [0; MAX_FIELDS],
            n: 0,
        };
        for (i, f) in all.iter().enumerate() {
            if i > 0 {
                e.line.push(':');
            }
            e.line.push_str(f);
            e.ends[i] = u32::try_from(e.line.len()).unwrap_or(u32::MAX);
            e.n += 1;
        }
        e
    }

    /// `line` as an entry of exactly `fields` fields, if it is one.
    fn parse(line: &str, fields: usize) -> Option<Entry> {
        let (ends, n) = field_ends(line, fields)?;
        Some(Entry {
            line: line.to_owned(),
            ends,
            n,
        })
    }

    /// Field `i` (empty past the last one).
    pub(crate) fn field(&self, i: usize) -> &str {
        if i >= self.len() {
            return "";
        }
        let start = if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize + 1
        };
        self.line.get(start..self.ends[i] as usize).unwrap_or("")
    }

    /// How many fields it has.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.n)
    }

    /// The fields, in order.
    pub(crate) fn fields(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.field(i))
    }

    /// The line, as the file holds it.
    pub(crate) fn line(&self) -> &str {
        &self.line
    }

    /// This entry with field `i` set to `value`.
    pub(crate) fn with(&self, i: usize, value: &str) -> Entry {
        Entry::new(
            self.fields()
                .enumerate()
                .map(|(j, f)| if j == i { value } else { f }),
        )
    }
}

/// Where each of the `fields` colon-separated fields of `line` ends, if it has exactly that
/// many.
fn field_ends(line: &str, fields: usize) -> Option<([u32; MAX_FIELDS], u8)> {
    if fields > MAX_FIELDS || u32::try_from(line.len()).is_err() {
        return None;
    }
    let mut ends = [0; MAX_FIELDS];
    let mut n = 0;
    for (at, _) in line.match_indices(':') {
        *ends.get_mut(n)? = u32::try_from(at).ok()?;
        n += 1;
    }
    *ends.get_mut(n)? = u32::try_from(line.len()).ok()?;
    n += 1;
    (n == fields).then(|| (ends, u8::try_from(n).unwrap_or(0)))
}

impl Index<usize> for Entry {
    type Output = str;
    fn index(&self, i: usize) -> &str {
        self.field(i)
    }
}

/// One file, as lines.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    /// Well-formed entries, in file order. Changed only through [`Table::set_entries`], which
    /// drops the index.
    pub(crate) entries: Vec<Entry>,
    /// A hash of the name → position of its first entry (a file of thousands of users is
    /// looked up by name once per user). A hash, not the name, so that the index costs no
    /// allocation per entry; a lookup checks the name it finds. Made by the first lookup: the
    /// tables a plan makes are mostly rendered, not looked up.
    index: OnceCell<HashMap<u64, usize>>,
    /// Lines that are not entries (comments, blank, malformed), in file order.
    pub(crate) other: Vec<String>,
    /// NIS compat lines, in file order; written last.
    pub(crate) nis: Vec<String>,
}

/// The hash the index keys names by (fixed keys: the same on every run).
fn name_hash(name: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(name)
}

impl PartialEq for Table {
    /// The same lines (the index follows from them).
    fn eq(&self, other: &Table) -> bool {
        (&self.entries, &self.other, &self.nis) == (&other.entries, &other.other, &other.nis)
    }
}

impl Eq for Table {}

impl Table {
    /// Parses `text`; an entry is a line of exactly `fields` colon-separated fields whose first
    /// field is a name.
    pub(crate) fn parse(text: &str, fields: usize) -> Table {
        let mut t = Table::default();
        let mut entries = Vec::new();
        for line in text.lines() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.starts_with('+') || line.starts_with('-') {
                t.nis.push(line.to_owned());
                continue;
            }
            let entry = Some(line)
                .filter(|l| !l.starts_with('#'))
                .and_then(|l| Entry::parse(l, fields))
                .filter(|e| !e[0].is_empty() && !e[0].contains(char::is_whitespace));
            match entry {
                Some(e) => entries.push(e),
                None => t.other.push(line.to_owned()),
            }
        }
        t.set_entries(entries);
        t
    }

    /// Replaces the entries.
    pub(crate) fn set_entries(&mut self, entries: Vec<Entry>) {
        self.index = OnceCell::new();
        self.entries = entries;
    }

    /// The entry named `name`, if any (the first one: a later duplicate is kept, not used).
    pub(crate) fn get(&self, name: &str) -> Option<&Entry> {
        // A few entries (a fresh root's root) are looked through: hashing costs more.
        if self.entries.len() <= 8 {
            return self.entries.iter().find(|e| &e[0] == name);
        }
        let index = self.index.get_or_init(|| {
            let mut index = HashMap::with_capacity(self.entries.len());
            for (i, e) in self.entries.iter().enumerate() {
                index.entry(name_hash(&e[0])).or_insert(i);
            }
            index
        });
        let at = *index.get(&name_hash(name))?;
        match self.entries.get(at) {
            Some(e) if &e[0] == name => Some(e),
            // Two names with one hash: the index holds the other one; look it up in order.
            _ => self.entries.iter().find(|e| &e[0] == name),
        }
    }

    /// The file's text: the lines etcflip does not understand first, as they were, then the
    /// entries, then NIS lines.
    pub(crate) fn render(&self) -> String {
        let lines = (self.other.iter().map(String::as_str))
            .chain(self.entries.iter().map(Entry::line))
            .chain(self.nis.iter().map(String::as_str));
        let mut out = String::with_capacity(lines.clone().map(|l| l.len() + 1).sum());
        for line in lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// The numeric id in field `i` of `entry`, if it is one.
pub(crate) fn id_of(entry: &Entry, i: usize) -> Option<u32> {
    (i < entry.len()).then(|| entry[i].parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_understood_is_kept() {
        let text = "# users\nroot:x:0:0:root:/root:/bin/sh\n+@nis::::::\nbroken line\n\
                    \nalice:x:1000:100::/home/alice:/bin/bash\r\n-bob\n\
                    too:many:fields:1:2:3:4:5\n";
        let t = Table::parse(text, 7);
        assert_eq!(t.entries.len(), 2);
        assert_eq!(
            t.other,
            ["# users", "broken line", "", "too:many:fields:1:2:3:4:5"]
        );
        assert_eq!(t.nis, ["+@nis::::::", "-bob"]);
        assert_eq!(t.get("alice").map(|e| &e[2]), Some("1000"));
        assert_eq!(
            t.render(),
            "# users\nbroken line\n\ntoo:many:fields:1:2:3:4:5\nroot:x:0:0:root:/root:/bin/sh\n\
             alice:x:1000:100::/home/alice:/bin/bash\n+@nis::::::\n-bob\n"
        );
        assert_eq!(id_of(t.get("root").unwrap(), 2), Some(0));
    }

    #[test]
    fn an_entry_is_its_fields() {
        // (line, fields wanted, the fields if it is an entry)
        let cases: [(&str, usize, Option<&[&str]>); 6] = [
            ("a:b:c", 3, Some(&["a", "b", "c"])),
            ("a::", 3, Some(&["a", "", ""])),
            ("::", 3, Some(&["", "", ""])),
            ("a:b", 3, None),
            ("a:b:c:d", 3, None),
            ("a:b:c:d:e:f:g:h:i:j", 9, None),
        ];
        for (line, n, want) in cases {
            let got = Entry::parse(line, n);
            assert_eq!(
                got.as_ref().map(|e| e.fields().collect::<Vec<_>>()),
                want.map(<[&str]>::to_vec),
                "{line:?}"
            );
            if let Some(e) = got {
                assert_eq!(e.line(), line);
                assert_eq!(e, Entry::new(e.fields()));
                assert_eq!(&e[n], "", "past the last field");
            }
        }
        let e = Entry::new(["root", "x", "0"]).with(1, "!");
        assert_eq!(e.line(), "root:!:0");
    }

    #[test]
    fn a_lookup_finds_the_first_entry_of_a_name() {
        let t = Table::parse("a:1\nb:2\na:3\n", 2);
        assert_eq!(t.get("a").map(Entry::line), Some("a:1"));
        assert_eq!(t.get("b").map(Entry::line), Some("b:2"));
        assert!(t.get("c").is_none());
    }
}
