//! From one declaration to manifest entries: the per-entry rules.
//!
//! Each [`Decl`] is checked field by field (target, mode, owners, source), every problem is
//! recorded (naming the attribute and the field), and only a declaration with no problem yields
//! [`Leaf`]s. Rules that involve several entries (duplicates, file-vs-directory) are in
//! `assemble.rs`.

use etcflip_format::manifest::{check_target, is_same_or_below, Entry, Id, Kind, Mode};

use crate::decl::{Decl, Origin};
use crate::etc::glob;
use crate::etc::source::{hash_file, normalise, parse_owner};
use etcflip_format::hash::sha256_bytes;

/// A non-directory manifest entry, with what the payload needs beyond the entry itself.
#[derive(Debug)]
pub(crate) struct Leaf {
    /// Index of the declaration it came from (for problem messages).
    pub(crate) decl: usize,
    /// The manifest entry.
    pub(crate) entry: Entry<'static>,
    /// Payload file content for text entries (symlink without source, or copy of text).
    pub(crate) text: Option<String>,
}

/// What does not change from one declaration to the next.
pub(crate) struct Context<'a> {
    /// The overlay relative to `/etc` when it lies inside `/etc` (no target may touch it).
    pub(crate) overlay_rel: Option<&'a str>,
    /// The overlay as given, for messages.
    pub(crate) overlay: &'a str,
    /// The spec's directory, absolute, for relative sources.
    pub(crate) spec_dir: Option<&'a str>,
    /// The store for spec entries (the spec's `store` key): a copy whose absolute source lies
    /// outside it is a runtime copy.
    pub(crate) spec_store: Option<&'a str>,
    /// The store for entries of an imported NixOS etc tree.
    pub(crate) tree_store: Option<&'a str>,
}

impl Context<'_> {
    /// The store that applies to `d`, if any.
    fn store_for(&self, d: &Decl) -> Option<&str> {
        match d.origin {
            Origin::Spec => self.spec_store,
            Origin::NixosEtc => self.tree_store,
        }
    }

    /// Whether a copy of `src` (normalised from `d.source`) is a runtime copy: read at switch
    /// time, because its source, written as an absolute path, lies outside the store. A
    /// relative source names a file beside the spec, so it is always read at build time.
    fn is_runtime(&self, d: &Decl, src: &str) -> bool {
        d.source.as_deref().is_some_and(|raw| raw.starts_with('/'))
            && self
                .store_for(d)
                .is_some_and(|store| !is_same_or_below(src, store))
    }
}

/// The three things `mode` can say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkMode {
    Symlink,
    Direct,
    Copy(Mode),
}

fn parse_mode(s: &str) -> Result<LinkMode, String> {
    match s {
        "symlink" => Ok(LinkMode::Symlink),
        "direct-symlink" => Ok(LinkMode::Direct),
        _ => Mode::parse(s).map(LinkMode::Copy),
    }
}

/// Checks one declaration; appends its leaves to `leaves` or its problems to `problems`.
pub(crate) fn resolve(
    d: &Decl,
    idx: usize,
    ctx: &Context<'_>,
    leaves: &mut Vec<Leaf>,
    problems: &mut Vec<String>,
) {
    let before = problems.len();
    if let Err(m) = check_placed(&d.target, ctx) {
        problems.push(d.problem("target", &m));
    }
    let mode = parse_mode(&d.mode).map_err(|m| problems.push(d.problem("mode", &m)));
    let uid = parse_owner(&d.user).map_err(|m| problems.push(d.problem("user", &m)));
    let gid = parse_owner(&d.group).map_err(|m| problems.push(d.problem("group", &m)));
    let base = match d.origin {
        Origin::Spec => ctx.spec_dir,
        Origin::NixosEtc => None,
    };
    // `text` beside a `source` is NixOS's own rendering of the text into that source: use it.
    let content = match (d.source.as_deref().map(|s| normalise(s, base)), &d.text) {
        (Some(Ok(src)), _) => Some(Content::Source(src)),
        (Some(Err(m)), _) => {
            problems.push(d.problem("source", &m));
            None
        }
        (None, Some(text)) => Some(Content::Text(text)),
        (None, None) => {
            problems.push(d.problem("source", "neither source nor text is set"));
            None
        }
    };
    // Owners only matter for copies; a bad one is already recorded, and the leaves of a
    // declaration with any problem are dropped below, so a placeholder keeps checking going.
    let uid = uid.unwrap_or(Id::Num(0));
    let gid = gid.unwrap_or(Id::Num(0));
    let (Ok(mode), Some(content)) = (mode, content) else {
        return;
    };
    let mut out = Vec::new();
    problems.extend(make_leaves(
        d,
        idx,
        ctx,
        mode,
        content,
        (uid, gid),
        &mut out,
    ));
    if problems.len() == before {
        leaves.append(&mut out);
    }
}

/// The leaves of a declaration whose fields parsed; `Some(problem)` when mode and content do
/// not fit together.
fn make_leaves(
    d: &Decl,
    idx: usize,
    ctx: &Context<'_>,
    mode: LinkMode,
    content: Content<'_>,
    (uid, gid): (Id, Id),
    out: &mut Vec<Leaf>,
) -> Option<String> {
    match (mode, content) {
        (LinkMode::Symlink, Content::Source(src)) if glob::is_glob(&src) => {
            expand_glob(d, idx, &src, ctx, out).err()
        }
        (_, Content::Source(src)) if glob::is_glob(&src) => Some(glob_problem(
            d,
            &src,
            matches!(mode, LinkMode::Copy(_)),
            ctx,
        )),
        (LinkMode::Symlink, Content::Source(src)) => {
            out.push(leaf(idx, entry(&d.target, Kind::Symlink, Some(src)), None));
            None
        }
        (LinkMode::Symlink, Content::Text(text)) => {
            let mut e = entry(&d.target, Kind::Symlink, None);
            e.sha256 = Some(sha256_bytes(text.as_bytes()).into());
            out.push(leaf(idx, e, Some(text.to_owned())));
            None
        }
        (LinkMode::Direct, Content::Source(src)) => {
            let e = entry(&d.target, Kind::DirectSymlink, Some(src));
            out.push(leaf(idx, e, None));
            None
        }
        (LinkMode::Direct, Content::Text(_)) => Some(d.problem(
            "source",
            "mode \"direct-symlink\" needs a source (text alone cannot be linked to directly)",
        )),
        (LinkMode::Copy(m), content) => copy(d, m, (uid, gid), content, ctx)
            .map(|(e, text)| out.push(leaf(idx, e, text)))
            .err(),
    }
}

/// Where an entry's content comes from.
enum Content<'a> {
    /// The normalised source path.
    Source(String),
    /// The text, written into the payload by us.
    Text(&'a str),
}

/// A target must be canonical and stay clear of the overlay (the overlay link lives in `/etc`
/// when it is under it, so no entry may be it, contain it, or lie below it).
fn check_placed(target: &str, ctx: &Context<'_>) -> Result<(), String> {
    check_target(target).map_err(|m| format!("{target:?}: {m}"))?;
    if let Some(o) = ctx.overlay_rel {
        let collides = is_same_or_below(target, o)
            || is_same_or_below(o, target)
            || ancestors(target).any(|dir| is_same_or_below(o, dir));
        if collides {
            return Err(format!(
                "{target:?} collides with the overlay {} (the flip point cannot be, contain or \
                 lie inside a managed path)",
                ctx.overlay
            ));
        }
    }
    Ok(())
}

/// `a/b/c` → `a`, `a/b` (not the path itself, not `/etc`).
pub(crate) fn ancestors(target: &str) -> impl Iterator<Item = &str> {
    target.match_indices('/').map(move |(i, _)| &target[..i])
}

fn entry(target: &str, kind: Kind, source: Option<String>) -> Entry<'static> {
    Entry {
        target: target.to_owned().into(),
        kind,
        source: source.map(Into::into),
        mode: None,
        uid: None,
        gid: None,
        sha256: None,
    }
}

fn leaf(decl: usize, entry: Entry<'static>, text: Option<String>) -> Leaf {
    Leaf { decl, entry, text }
}

/// Copy modes: a source in the store (or any source when there is no store) is read now (it
/// must be a readable regular file after following links), so the manifest can record its
/// hash. A runtime copy is not read at all: its file may not exist yet, and reading a
/// build-host file outside the store would make the generation depend on that host.
fn copy(
    d: &Decl,
    mode: Mode,
    (uid, gid): (Id, Id),
    content: Content<'_>,
    ctx: &Context<'_>,
) -> Result<(Entry<'static>, Option<String>), String> {
    let (source, sha, text) = match content {
        Content::Source(src) if ctx.is_runtime(d, &src) => (Some(src), None, None),
        Content::Source(src) => {
            let sha = hash_file(std::path::Path::new(&src))
                .map_err(|m| unreadable(d, &m, ctx.store_for(d)))?;
            (Some(src), Some(sha), None)
        }
        Content::Text(text) => {
            let sha = sha256_bytes(text.as_bytes());
            (None, Some(sha), Some(text.to_owned()))
        }
    };
    let mut e = entry(&d.target, Kind::Copy, source);
    e.mode = Some(mode);
    e.uid = Some(uid);
    e.gid = Some(gid);
    e.sha256 = sha.map(Into::into);
    Ok((e, text))
}

/// Globs are expanded at build time into links: refused with a copy mode, and said so more
/// precisely when the copy would be a runtime copy.
fn glob_problem(d: &Decl, src: &str, copy: bool, ctx: &Context<'_>) -> String {
    if copy && ctx.is_runtime(d, src) {
        return d.problem(
            "source",
            &format!(
                "{src:?} is a glob outside the store, so mode {:?} would copy it at switch \
                 time, but a glob can only be expanded when the generation is built",
                d.mode
            ),
        );
    }
    d.problem(
        "mode",
        &format!(
            "a glob source ({src:?}) is only allowed with mode \"symlink\", not {:?}",
            d.mode
        ),
    )
}

/// The problem of a copy source that cannot be read at build time, saying why it was read.
fn unreadable(d: &Decl, m: &str, store: Option<&str>) -> String {
    let absolute = d.source.as_deref().is_some_and(|s| s.starts_with('/'));
    let why = match store {
        Some(store) if absolute => {
            format!(" (it lies in the store {store}, so it is copied when the generation is built)")
        }
        None if absolute => "; to copy a file that exists only where the generation is applied \
                             (such as /run/secrets/x), set the spec's `store` key: a copy whose \
                             source lies outside the store is read at switch time"
            .to_owned(),
        _ => String::new(),
    };
    d.problem(
        "source",
        &format!("mode {:?} copies the source, but {m}{why}", d.mode),
    )
}

/// One `symlink` leaf per match, at `<target>/<basename>`.
fn expand_glob(
    d: &Decl,
    idx: usize,
    pattern: &str,
    ctx: &Context<'_>,
    out: &mut Vec<Leaf>,
) -> Result<(), String> {
    let matches = glob::expand(pattern).map_err(|m| d.problem("source", &m))?;
    if matches.is_empty() {
        return Err(d.problem("source", &format!("glob {pattern:?} matched nothing")));
    }
    let mut seen = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    for m in matches {
        let base = m.rsplit('/').next().unwrap_or_default();
        let target = format!("{}/{base}", d.target);
        if let Some(first) = seen.insert(target.clone(), m.clone()) {
            problems.push(format!(
                "glob matches {first:?} and {m:?} have the same name, so both would be {target:?}"
            ));
        } else if let Err(msg) = check_placed(&target, ctx) {
            problems.push(format!("glob match {m:?}: {msg}"));
        } else {
            out.push(leaf(idx, entry(&target, Kind::Symlink, Some(m)), None));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(d.problem("source", &problems.join("; ")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(parse_mode("symlink"), Ok(LinkMode::Symlink));
        assert_eq!(parse_mode("direct-symlink"), Ok(LinkMode::Direct));
        assert_eq!(parse_mode("644"), Ok(LinkMode::Copy(Mode(0o644))));
        assert_eq!(parse_mode("0644"), Ok(LinkMode::Copy(Mode(0o644))));
        assert_eq!(parse_mode("4755"), Ok(LinkMode::Copy(Mode(0o4755))));
        for bad in ["", "Symlink", "copy", "0x644", "99", "07777x", "755 "] {
            assert!(parse_mode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ancestors_of_targets() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(ancestors("a").count(), 0);
    }

    #[test]
    fn overlay_placement() {
        let ctx = Context {
            overlay_rel: Some("nix/static"),
            overlay: "/etc/nix/static",
            spec_dir: None,
            spec_store: None,
            tree_store: None,
        };
        for good in ["nixos", "ni", "nix-static", "static"] {
            assert!(check_placed(good, &ctx).is_ok(), "{good}");
        }
        // `nix/other` would make `nix` a managed directory holding the flip point.
        for bad in ["nix", "nix/other", "nix/static", "nix/static/x"] {
            let err = check_placed(bad, &ctx).unwrap_err();
            assert!(
                err.contains("collides with the overlay /etc/nix/static"),
                "{bad}: {err}"
            );
        }
    }
}
