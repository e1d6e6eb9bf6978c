//! Sources: lexical normalisation, owners, and reading copy sources.
//!
//! Sources are taken literally (they become link texts): we never resolve them through links,
//! because NixOS deliberately points at paths that do not exist at build time
//! (`/var/lib/nixos/etc/passwd`, `/etc/zoneinfo/Utc`). So the only normalisation is lexical, and
//! a `..` component is refused rather than guessed at.

use std::fs::File;

use std::path::Path;

use etcflip_format::hash::sha256_stream;
use etcflip_format::manifest::{check_id_name, check_link_text, Id};

/// Resolves a relative `source` against `base` (the spec's directory) and normalises it
/// lexically: no `.`, no empty components, no trailing `/`. `base` is `None` where relative
/// sources are not allowed (imported NixOS trees always have absolute link texts).
pub(crate) fn normalise(raw: &str, base: Option<&str>) -> Result<String, String> {
    if raw.is_empty() {
        return Err("empty path".into());
    }
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(format!("control character {c:?} in {raw:?}"));
    }
    let joined;
    let full = if raw.starts_with('/') {
        raw
    } else if let Some(base) = base {
        joined = format!("{base}/{raw}");
        &joined
    } else {
        return Err(format!(
            "relative path {raw:?} (NixOS always writes absolute ones)"
        ));
    };
    let mut out = String::with_capacity(full.len());
    for comp in full.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "{raw:?} has a \"..\" component (sources are taken literally, not resolved \
                     through links; write the path without it)"
                ))
            }
            _ => {
                out.push('/');
                out.push_str(comp);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    check_link_text(&out).map_err(|m| format!("{out:?}: {m}"))?;
    Ok(out)
}

/// Checks the spec's `store` key: an absolute, canonical path other than `/` (a copy whose
/// source lies outside it is a runtime copy, so `/` would mean "never").
pub(crate) fn check_store(store: &str) -> Result<(), String> {
    if !store.starts_with('/') {
        return Err(format!("store {store:?} is not an absolute path"));
    }
    match normalise(store, None) {
        Err(m) => Err(format!("store {store:?}: {m}")),
        Ok(n) if n == "/" => Err(format!(
            "store {store:?} cannot be / (name the store directory, e.g. /nix/store)"
        )),
        Ok(n) if n != store => Err(format!("store {store:?} is not canonical (write {n:?})")),
        Ok(_) => Ok(()),
    }
}

/// Parses NixOS's owner spelling: `+N` is numeric, anything else a user or group name.
pub(crate) fn parse_owner(s: &str) -> Result<Id, String> {
    if let Some(digits) = s.strip_prefix('+') {
        // `u32::from_str` would accept a second `+`; demand plain digits.
        let n = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse::<u32>().ok()
        } else {
            None
        };
        return match n {
            // All ones means "leave unchanged" to chown(2): never a real owner.
            Some(n) if n != u32::MAX => Ok(Id::Num(n)),
            _ => Err(format!(
                "{s:?} is not \"+\" followed by a number from 0 to 4294967294"
            )),
        };
    }
    check_id_name(s)?;
    Ok(Id::Name(s.to_owned()))
}

/// Opens a copy source, following links, and checks it is a regular file.
fn open_regular(path: &Path) -> Result<File, String> {
    let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file (copy modes copy one file; use mode \"symlink\" for \
             directories)",
            path.display()
        ));
    }
    Ok(file)
}

/// The sha256 of a copy source: a readable regular file after following links.
///
/// Streamed rather than kept in memory, so large copies cost no memory; [`copy_file`] hashes
/// again while copying and the writer compares the two.
pub(crate) fn hash_file(path: &Path) -> Result<String, String> {
    let file = open_regular(path)?;
    sha256_stream(file, None).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Copies the regular file `from` into `to` (a new file) and returns the sha256 of what it wrote.
pub(crate) fn copy_file(from: &Path, to: &mut File) -> anyhow::Result<String> {
    let file = open_regular(from).map_err(anyhow::Error::msg)?;
    Ok(sha256_stream(file, Some(to))?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use etcflip_format::hash::sha256_bytes;

    #[test]
    fn sources_are_normalised_lexically() {
        let base = Some("/spec/dir");
        assert_eq!(normalise("/nix/store/x", base).unwrap(), "/nix/store/x");
        assert_eq!(normalise("//a/./b//c/", base).unwrap(), "/a/b/c");
        assert_eq!(normalise("files/x", base).unwrap(), "/spec/dir/files/x");
        assert_eq!(normalise("./x", base).unwrap(), "/spec/dir/x");
        assert_eq!(normalise("/", base).unwrap(), "/");
        assert_eq!(normalise("/a b/%c", None).unwrap(), "/a b/%c");
    }

    #[test]
    fn bad_sources_are_refused() {
        for (raw, want) in [
            ("", "empty path"),
            ("/a/../b", "\"..\" component"),
            ("../x", "\"..\" component"),
            ("/a\nb", "control character"),
            ("/a\u{7f}", "control character"),
        ] {
            let err = normalise(raw, Some("/base")).unwrap_err();
            assert!(err.contains(want), "{raw:?}: {err}");
        }
        assert!(normalise("rel", None)
            .unwrap_err()
            .contains("relative path"));
    }

    #[test]
    fn stores() {
        assert_eq!(check_store("/nix/store"), Ok(()));
        assert_eq!(check_store("/gnu/store"), Ok(()));
        for (bad, want) in [
            ("nix/store", "not an absolute path"),
            ("", "not an absolute path"),
            ("/", "cannot be /"),
            ("//", "cannot be /"),
            ("/nix/store/", "not canonical (write \"/nix/store\")"),
            ("/nix//store", "not canonical"),
            ("/nix/./store", "not canonical"),
            ("/nix/../store", "\"..\" component"),
            ("/nix/st\nore", "control character"),
        ] {
            let err = check_store(bad).unwrap_err();
            assert!(err.contains(want), "{bad:?}: {err}");
        }
    }

    #[test]
    fn owners() {
        assert_eq!(parse_owner("+0"), Ok(Id::Num(0)));
        assert_eq!(parse_owner("+4294967294"), Ok(Id::Num(u32::MAX - 1)));
        assert_eq!(parse_owner("nginx"), Ok(Id::Name("nginx".into())));
        for bad in [
            "+",
            "++1",
            "+-1",
            "+1x",
            "+4294967295",
            "+99999999999",
            "",
            "a:b",
            "-x",
        ] {
            assert!(parse_owner(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hashes_are_lowercase_hex() {
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hash_file(Path::new("/"))
            .unwrap_err()
            .contains("not a regular file"));
        assert!(hash_file(Path::new("/nonexistent/x"))
            .unwrap_err()
            .contains("cannot read"));
    }
}
