//! [`Lines`]: the change lines of a users plan, in one buffer. A first switch of a thousand
//! users reports two thousand changes; a string each, in a vector grown to hold them, cost a
//! tenth of that switch (an allocation per line, and fresh heap pages for all of them).

use std::fmt::{self, Write as _};

use serde::{Serialize, Serializer};

/// Lines of text, in order; no line holds a newline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lines {
    /// Every line, each followed by `'\n'`.
    text: String,
    len: usize,
}

impl Lines {
    /// Room for `lines` lines of about `each` bytes.
    pub(crate) fn with_capacity(lines: usize, each: usize) -> Lines {
        Lines {
            text: String::with_capacity(lines.saturating_mul(each)),
            len: 0,
        }
    }

    /// Appends `args` as a line (a newline in it is written as a space: one line stays one).
    pub(crate) fn push_fmt(&mut self, args: fmt::Arguments) {
        let from = self.text.len();
        let _ = self.text.write_fmt(args);
        if self.text[from..].contains('\n') {
            let line = self.text.split_off(from).replace('\n', " ");
            self.text.push_str(&line);
        }
        self.text.push('\n');
        self.len += 1;
    }

    /// Appends `line`.
    pub(crate) fn push(&mut self, line: &str) {
        self.push_fmt(format_args!("{line}"));
    }

    /// The lines, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + Clone {
        self.text.split_terminator('\n')
    }

    /// Every line, each followed by a newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How many lines.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
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
    fn lines_come_back_as_pushed_and_one_stays_one() {
        let cases: [(&[&str], &[&str]); 4] = [
            (&[], &[]),
            (&["a"], &["a"]),
            (&["a", "", "b c"], &["a", "", "b c"]),
            (&["two\nlines", "x"], &["two lines", "x"]),
        ];
        for (pushed, want) in cases {
            let mut l = Lines::with_capacity(pushed.len(), 8);
            for p in pushed {
                l.push(p);
            }
            assert_eq!(l.iter().collect::<Vec<_>>(), want, "{pushed:?}");
            assert_eq!(l.len(), want.len(), "{pushed:?}");
            assert_eq!(l.is_empty(), want.is_empty(), "{pushed:?}");
            let json = serde_json::to_string(&l).unwrap();
            assert_eq!(json, serde_json::to_string(want).unwrap());
        }
        let mut l = Lines::default();
        l.push_fmt(format_args!("create user {} (uid {})", "alice", 1000));
        l.extend(["b"]);
        assert_eq!(l.text(), "create user alice (uid 1000)\nb\n");
    }
}
