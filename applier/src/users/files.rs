//! The colon-separated user database files (`passwd`, `group`, `shadow`, `subuid`, `subgid`),
//! read so that nothing etcflip does not understand is lost: comments, blank or malformed
//! lines and NIS compat lines (`+…`, `-…`) are kept as they are, and NIS lines stay last.

use std::collections::HashMap;

/// One file, as lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Table {
    /// Well-formed entries, in file order: their fields. Changed only through
    /// [`Table::set_entries`], which keeps the index right.
    pub(crate) entries: Vec<Vec<String>>,
    /// Name → position of its first entry (a file of thousands of users is looked up by name
    /// once per user).
    index: HashMap<String, usize>,
    /// Lines that are not entries (comments, blank, malformed), in file order.
    pub(crate) other: Vec<String>,
    /// NIS compat lines, in file order; written last.
    pub(crate) nis: Vec<String>,
}

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
            let parts: Vec<&str> = line.split(':').collect();
            let is_entry = !line.starts_with('#')
                && parts.len() == fields
                && !parts[0].is_empty()
                && !parts[0].contains(char::is_whitespace);
            if is_entry {
                entries.push(parts.into_iter().map(str::to_owned).collect());
            } else {
                t.other.push(line.to_owned());
            }
        }
        t.set_entries(entries);
        t
    }

    /// Replaces the entries.
    pub(crate) fn set_entries(&mut self, entries: Vec<Vec<String>>) {
        self.index.clear();
        for (i, e) in entries.iter().enumerate() {
            self.index.entry(e[0].clone()).or_insert(i);
        }
        self.entries = entries;
    }

    /// The entry named `name`, if any (the first one: a later duplicate is kept, not used).
    pub(crate) fn get(&self, name: &str) -> Option<&[String]> {
        self.index.get(name).map(|&i| self.entries[i].as_slice())
    }

    /// The file's text: the lines etcflip does not understand first, as they were, then the
    /// entries, then NIS lines.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for line in self
            .other
            .iter()
            .chain(
                self.entries
                    .iter()
                    .map(|e| e.join(":"))
                    .collect::<Vec<_>>()
                    .iter(),
            )
            .chain(&self.nis)
        {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// The numeric id in field `i` of `entry`, if it is one.
pub(crate) fn id_of(entry: &[String], i: usize) -> Option<u32> {
    entry.get(i).and_then(|f| f.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_understood_is_kept() {
        let text = "# users\nroot:x:0:0:root:/root:/bin/sh\n+@nis::::::\nbroken line\n\
                    \nalice:x:1000:100::/home/alice:/bin/bash\r\n-bob\n";
        let t = Table::parse(text, 7);
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.other, ["# users", "broken line", ""]);
        assert_eq!(t.nis, ["+@nis::::::", "-bob"]);
        assert_eq!(t.get("alice").map(|e| e[2].as_str()), Some("1000"));
        assert_eq!(
            t.render(),
            "# users\nbroken line\n\nroot:x:0:0:root:/root:/bin/sh\n\
             alice:x:1000:100::/home/alice:/bin/bash\n+@nis::::::\n-bob\n"
        );
        assert_eq!(id_of(t.get("root").unwrap(), 2), Some(0));
    }
}
