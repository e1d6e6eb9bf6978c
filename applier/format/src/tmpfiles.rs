//! The tmpfiles.d encoding etcflip emits, and its inverse (for tests and read-back).
//!
//! The encoding is the subset that systemd-tmpfiles 252, 254 and 257 were all observed to read
//! identically (`tests/tmpfiles_versions.rs` checks each against all three):
//! - the path is always double-quoted, with `\` → `\\`, `"` → `\"`, `%` → `%%`; no `\xNN`
//!   (252 reads it literally), so control characters are refused before we get here;
//! - the argument (link target) is unquoted (quotes would be kept literally), with `\` → `\\`,
//!   `%` → `%%`, and a leading or trailing space, any control character and a lone `-` written
//!   as `\xNN` (tmpfiles strips outer whitespace, and `-` means "no argument").
//!
//! No specifiers are ever emitted: every `%` is doubled.

use std::fmt::Write as _;

/// The quoted Path field for `path` (absolute, within the root).
pub fn quote_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 2);
    out.push('"');
    for c in path.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The Argument field for a link target.
pub fn escape_arg(arg: &str) -> String {
    if arg == "-" {
        return "\\x2d".into();
    }
    let chars: Vec<char> = arg.chars().collect();
    let lead = chars.iter().take_while(|c| **c == ' ').count();
    let trail = chars.iter().rev().take_while(|c| **c == ' ').count();
    let mut out = String::with_capacity(arg.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let outer_space = c == ' ' && (i < lead || i >= chars.len() - trail);
        match c {
            '\\' => out.push_str("\\\\"),
            '%' => out.push_str("%%"),
            _ if outer_space || c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// `L` line: create a link at `path` with text `target` if nothing is there.
pub fn link_line(path: &str, target: &str) -> String {
    format!("L {} - - - - {}\n", quote_path(path), escape_arg(target))
}

/// `d` line: create a directory with `mode` if missing; the `:` prefix leaves an existing
/// directory's mode alone, and `-` owners mean the invoking user (root at activation), so a
/// directory that already exists is never changed.
pub fn dir_line(path: &str, mode: u32) -> String {
    format!("d {} :{mode:04o} - - -\n", quote_path(path))
}

/// Names that each broke some tmpfiles encoding somewhere (quoting, specifiers, comments,
/// escapes, outer spaces, a lone `-`, control characters, UTF-8): the table every encoding
/// test runs, here and in the end-to-end tests.
pub const TRICKY_NAMES: &[&str] = &[
    "plain",
    "with space",
    " leading",
    "trailing ",
    "  both  ",
    "quote\"d",
    "single'q",
    "back\\slash",
    "per%cent",
    "%m",
    "hash#tag",
    "#start",
    "ünïcödé ☃",
    "dev-disk-by\\x2duuid",
    "-",
    "a\tb",
];

/// One parsed line, for tests and for reading a snippet back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// `L` or `d`.
    pub kind: String,
    /// Decoded path.
    pub path: String,
    /// Decoded argument, if any.
    pub arg: Option<String>,
}

/// Parses one line in the encoding above (not general tmpfiles syntax).
pub fn parse_line(line: &str) -> Result<Line, String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let (kind, rest) = line
        .split_once(' ')
        .ok_or_else(|| format!("no fields in {line:?}"))?;
    let rest = rest
        .strip_prefix('"')
        .ok_or_else(|| format!("path not quoted in {line:?}"))?;
    let mut path = String::new();
    let mut chars = rest.char_indices();
    let mut end = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('\\' | '"'))) => path.push(e),
                other => return Err(format!("bad escape {other:?} in path of {line:?}")),
            },
            '%' => match chars.next() {
                Some((_, '%')) => path.push('%'),
                _ => return Err(format!("specifier in path of {line:?}")),
            },
            '"' => {
                end = Some(i + 1);
                break;
            }
            _ => path.push(c),
        }
    }
    let end = end.ok_or_else(|| format!("unterminated path in {line:?}"))?;
    let fields: Vec<&str> = rest[end..].splitn(6, ' ').collect();
    let arg = match fields.as_slice() {
        ["", _, _, _, _, arg] => Some(unescape_arg(arg)?),
        _ => None,
    };
    Ok(Line {
        kind: kind.to_owned(),
        path,
        arg,
    })
}

fn unescape_arg(arg: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(arg.len());
    let mut it = arg.bytes();
    while let Some(b) = it.next() {
        match b {
            b'\\' => match it.next() {
                Some(b'\\') => bytes.push(b'\\'),
                Some(b'x') => {
                    let hex: Vec<u8> = it.by_ref().take(2).collect();
                    let s = std::str::from_utf8(&hex).map_err(|e| e.to_string())?;
                    bytes.push(u8::from_str_radix(s, 16).map_err(|e| format!("\\x{s}: {e}"))?);
                }
                other => return Err(format!("bad escape {other:?} in argument {arg:?}")),
            },
            b'%' => match it.next() {
                Some(b'%') => bytes.push(b'%'),
                _ => return Err(format!("specifier in argument {arg:?}")),
            },
            _ => bytes.push(b),
        }
    }
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_lines_round_trip() {
        for name in TRICKY_NAMES {
            let path = format!("/etc/{name}");
            let target = format!("/etc/static/{name}");
            let line = link_line(&path, &target);
            let parsed = parse_line(&line).unwrap();
            assert_eq!(parsed.kind, "L");
            assert_eq!(parsed.path, path, "{line}");
            assert_eq!(parsed.arg.as_deref(), Some(target.as_str()), "{line}");
            assert!(!line.trim_end_matches('\n').ends_with(' '), "{line:?}");
        }
    }

    #[test]
    fn argument_edges() {
        assert_eq!(escape_arg("-"), "\\x2d");
        assert_eq!(escape_arg(" a "), "\\x20a\\x20");
        assert_eq!(escape_arg("a b"), "a b");
        assert_eq!(escape_arg("a\\b%"), "a\\\\b%%");
        assert_eq!(unescape_arg("\\x2d").unwrap(), "-");
    }

    #[test]
    fn snapshot_of_encoded_lines() {
        let mut out = String::new();
        for name in TRICKY_NAMES {
            out.push_str(&link_line(
                &format!("/etc/{name}"),
                &format!("/etc/static/{name}"),
            ));
        }
        out.push_str(&dir_line("/etc/pam.d", 0o755));
        insta::assert_snapshot!(out);
    }
}
