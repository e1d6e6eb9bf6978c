//! The manifest's JSON layout: pretty at the top, one line for each object inside an array (an
//! `etc` entry, a user, a group). A manifest with thousands of entries or users is then a
//! third of the pretty size, which the applier reads (and a no-op switch compares) on every
//! switch, and a diff of two manifests still shows one line per changed entry.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};

/// A [`PrettyFormatter`] that writes every object inside an array, and all it holds, compactly.
#[derive(Default)]
struct Lines<'i> {
    pretty: PrettyFormatter<'i>,
    /// For each open container: whether it is an array.
    open: Vec<bool>,
    /// How many of the open containers are compact (0: pretty).
    compact: usize,
}

impl Lines<'_> {
    fn enter(&mut self, array: bool) -> bool {
        let compact = self.compact > 0 || (!array && self.open.last() == Some(&true));
        self.open.push(array);
        if compact {
            self.compact += 1;
        }
        compact
    }

    fn leave(&mut self) -> bool {
        self.open.pop();
        let compact = self.compact > 0;
        self.compact = self.compact.saturating_sub(1);
        compact
    }
}

impl Formatter for Lines<'_> {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        if self.enter(true) {
            w.write_all(b"[")
        } else {
            self.pretty.begin_array(w)
        }
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        if self.leave() {
            w.write_all(b"]")
        } else {
            self.pretty.end_array(w)
        }
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        match (self.compact > 0, first) {
            (true, true) => Ok(()),
            (true, false) => w.write_all(b","),
            (false, _) => self.pretty.begin_array_value(w, first),
        }
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        if self.compact > 0 {
            Ok(())
        } else {
            self.pretty.end_array_value(w)
        }
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        if self.enter(false) {
            w.write_all(b"{")
        } else {
            self.pretty.begin_object(w)
        }
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        if self.leave() {
            w.write_all(b"}")
        } else {
            self.pretty.end_object(w)
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        match (self.compact > 0, first) {
            (true, true) => Ok(()),
            (true, false) => w.write_all(b","),
            (false, _) => self.pretty.begin_object_key(w, first),
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        if self.compact > 0 {
            w.write_all(b":")
        } else {
            self.pretty.begin_object_value(w)
        }
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        if self.compact > 0 {
            Ok(())
        } else {
            self.pretty.end_object_value(w)
        }
    }
}

/// `value` as JSON in the manifest's layout (see the module comment), with a trailing newline.
pub fn to_lines<T: Serialize>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Lines::default());
    value.serialize(&mut ser)?;
    out.push(b'\n');
    // serde_json writes only UTF-8.
    String::from_utf8(out).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::to_lines;
    use serde_json::json;

    #[test]
    fn objects_in_arrays_are_one_line_and_the_rest_is_pretty() {
        let cases = [
            (json!({}), "{}\n"),
            (json!({"a": []}), "{\n  \"a\": []\n}\n"),
            (
                json!({"a": [1, 2]}),
                "{\n  \"a\": [\n    1,\n    2\n  ]\n}\n",
            ),
            (
                json!({"v": 1, "e": [{"t": "x", "m": [1, {"k": "a b"}]}, {}], "u": {"n": null}}),
                "{\n  \"e\": [\n    {\"m\":[1,{\"k\":\"a b\"}],\"t\":\"x\"},\n    {}\n  ],\n  \
                 \"u\": {\n    \"n\": null\n  },\n  \"v\": 1\n}\n",
            ),
            (json!([[{"a": 1}]]), "[\n  [\n    {\"a\":1}\n  ]\n]\n"),
        ];
        for (value, want) in cases {
            let got = to_lines(&value).unwrap();
            assert_eq!(got, want, "{value}");
            let back: serde_json::Value = serde_json::from_str(&got).unwrap();
            assert_eq!(back, value);
        }
    }
}
