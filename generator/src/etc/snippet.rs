//! The generation's tmpfiles snippet (`GEN/tmpfiles.d/etcflip.conf`): creates the `/etc` link
//! farm at boot and in image builds, using the applier's encoding ([`etcflip_format::tmpfiles`]).
//!
//! Copies get no line: the applier installs them (tmpfiles cannot set a content hash). Runtime
//! copies (sources outside the store, such as `/run/secrets/x`) get none either: a `C` line
//! leaves an existing file as it is (a stale secret would survive), skips a missing source
//! without an error, and re-chowns the existing file on every run; only the applier copies
//! them when their content differs and reports a missing source. There are never `r` lines:
//! an installed removal line would run at every boot.

use etcflip_format::manifest::{Kind, Manifest};
use etcflip_format::tmpfiles::{dir_line, link_line};

/// First line of every snippet.
const HEADER: &str =
    "# etcflip generation snippet: create the /etc link farm (generated, do not edit)\n";

/// Renders the snippet; entries are sorted by target, so parents come before children.
pub(crate) fn render(manifest: &Manifest) -> String {
    let mut out = String::from(HEADER);
    for e in &manifest.entries {
        let path = format!("/etc/{}", e.target);
        if e.kind == Kind::Dir {
            out.push_str(&dir_line(&path, e.mode.map_or(0o755, |m| m.0)));
        } else if let Some(text) = e.expected_link(&manifest.overlay) {
            // The same link text the applier creates and counts as its own. Copies get no
            // line (the applier's job).
            out.push_str(&link_line(&path, &text));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcflip_format::manifest::{Entry, Id, Mode};

    fn entry<'a>(target: &'a str, kind: Kind, source: Option<&'a str>) -> Entry<'a> {
        Entry {
            target: target.into(),
            kind,
            source: source.map(Into::into),
            mode: matches!(kind, Kind::Dir | Kind::Copy).then_some(Mode(0o755)),
            uid: None::<Id>,
            gid: None,
            sha256: None,
        }
    }

    #[test]
    fn one_line_per_link_and_dir() {
        let mut m = Manifest {
            version: 1,
            overlay: "/etc/static".into(),
            users: None,
            wrappers: None,
            entries: vec![
                entry("a b", Kind::Symlink, Some("/nix/store/x")),
                entry("d", Kind::Dir, None),
                entry("d/%c", Kind::Copy, Some("/s")),
                entry("d/secret", Kind::Copy, Some("/run/secrets/x")),
                entry("localtime", Kind::DirectSymlink, Some("/etc/zoneinfo/UTC")),
            ],
        };
        // "d/%c" is a payload copy, "d/secret" a runtime copy: neither gets a line.
        m.entries[2].sha256 = Some("a".repeat(64).into());
        assert_eq!(
            render(&m),
            format!(
                "{HEADER}L \"/etc/a b\" - - - - /etc/static/a b\nd \"/etc/d\" :0755 - - -\n\
                 L \"/etc/localtime\" - - - - /etc/zoneinfo/UTC\n"
            )
        );
    }
}
