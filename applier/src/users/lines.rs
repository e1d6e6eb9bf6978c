//! [`Lines`]: the change lines of a users plan, in one buffer. A first switch of a thousand
//! users reports two thousand changes; a string each, in a vector grown to hold them, cost a
//! tenth of that switch (an allocation per line, and fresh heap pages for all of them).

use std::fmt::{self, Write as _};

use serde::{Serialize, Serializer};

/// Lines of text, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lines {
    /// Every line, one after the other.
    text: String,
    /// Where each line ends in `text`.
    ends: Vec<usize>,
}

impl Lines {
    /// Room for `lines` lines of about `each` bytes.
    pub(crate) fn with_capacity(lines: usize, each: usize) -> Lines {
        Lines {
            text: String::with_capacity(lines.saturating_mul(each)),
            ends: Vec::with_capacity(lines),
        }
    }

    /// Appends `args` as a line.
    pub(crate) fn push_fmt(&mut self, args: fmt::Arguments) {
        let _ = self.text.write_fmt(args);
        self.ends.push(self.text.len());
    }

    /// Appends the line made of `parts` (the lines of a first switch are thousands: pieces
    /// pushed cost a fraction of `core::fmt`).
    pub(crate) fn push_parts(&mut self, parts: &[&str]) {
        for p in parts {
            self.text.push_str(p);
        }
        self.ends.push(self.text.len());
    }

    /// Appends `line`.
    pub(crate) fn push(&mut self, line: &str) {
        self.push_parts(&[line]);
    }

    /// The lines, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + Clone {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        (starts.zip(self.ends.iter().copied()))
            .map(|(from, to)| self.text.get(from..to).unwrap_or(""))
    }
}

impl<D: fmt::Display> Extend<D> for Lines {
    fn extend<I: IntoIterator<Item = D>>(&mut self, lines: I) {
        for line in lines {
            self.push_fmt(format_args!("{line}"));
        }
    }
}

impl Serialize for Lines {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::Lines;

    #[test]
    fn lines_come_back_as_pushed() {
        let cases: [&[&str]; 4] = [&[], &["a"], &["a", "", "b c"], &["", ""]];
        for pushed in cases {
            let mut l = Lines::with_capacity(pushed.len(), 8);
            for p in pushed {
                l.push(p);
            }
            assert_eq!(l.iter().collect::<Vec<_>>(), pushed);
            let json = serde_json::to_string(&l).unwrap();
            assert_eq!(json, serde_json::to_string(pushed).unwrap());
        }
        let mut l = Lines::default();
        l.push_fmt(format_args!("create user {} (uid {})", "alice", 1000));
        l.push_parts(&["set the password of user ", "alice", ": ", "kept"]);
        l.extend(["b"]);
        let want = [
            "create user alice (uid 1000)",
            "set the password of user alice: kept",
            "b",
        ];
        assert_eq!(l.iter().collect::<Vec<_>>(), want);
    }
}
