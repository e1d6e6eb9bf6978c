//! `--nixos-etc DIR`: importing the output of NixOS's `etc` derivation as it is.
//!
//! That tree holds real directories whose leaves are absolute links to the sources, plus
//! one-line `X.mode` / `X.uid` / `X.gid` sidecar files beside a link `X` for entries that are
//! not plain symlinks. Each link becomes a [`Decl`] named by its target, so the import goes
//! through exactly the rules a spec does. Directories are implied by the links below them;
//! anything else (a stray regular file, an empty directory, a device) is a problem.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use walkdir::WalkDir;

use crate::decl::{Decl, Origin};
use crate::etc::resolve::ancestors;

const SIDECARS: [&str; 3] = [".mode", ".uid", ".gid"];

/// What one path of the tree is.
enum Node {
    Link(PathBuf),
    File,
    Dir,
}

/// `DIR/etc` when it exists (a derivation output or a toplevel), else `DIR` itself.
fn root_of(dir: &Path) -> PathBuf {
    let etc = dir.join("etc");
    if etc.is_dir() {
        etc
    } else {
        dir.to_path_buf()
    }
}

/// The store the tree at `dir` lives in, if it lives in one: the directory that holds the
/// topmost store path on its real path (`/nix/store` for `/nix/store/<hash>-etc/etc`, and so
/// for `/run/current-system/etc` too). A copy whose link leads outside it is a runtime copy,
/// as it is for a spec with that `store`: NixOS's builder links such a copy to a file that
/// exists only on the running system, e.g. `/run/secrets/x`.
pub(crate) fn store_of(dir: &Path) -> Option<String> {
    let real = fs::canonicalize(root_of(dir)).ok()?;
    let top = real
        .ancestors()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_store_name)
        })
        .last()?;
    top.parent()?.to_str().map(str::to_owned)
}

/// Whether `name` looks like a Nix store path's name: 32 characters of Nix's base-32
/// alphabet (no `e`, `o`, `t`, `u`), a `-`, then a name.
fn is_store_name(name: &str) -> bool {
    const ALPHABET: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";
    let b = name.as_bytes();
    b.len() > 33 && b[32] == b'-' && b[..32].iter().all(|c| ALPHABET.contains(c))
}

/// Reads the tree at `dir`; problems about its content are appended to `problems`, failures to
/// read it are errors.
pub(crate) fn import(dir: &Path, problems: &mut Vec<String>) -> anyhow::Result<Vec<Decl>> {
    let root = root_of(dir);
    let origin = format!("--nixos-etc {}", root.display());
    match fs::metadata(&root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            problems.push(format!("{origin}: not a directory"));
            return Ok(Vec::new());
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            problems.push(format!("{origin}: does not exist"));
            return Ok(Vec::new());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {origin}")),
    }
    let nodes = walk(&root, &origin, problems)?;
    let mut decls = Vec::new();
    for (rel, node) in &nodes {
        match node {
            Node::Link(text) => decls.extend(link_decl(&root, rel, text, &nodes, problems)?),
            Node::File if is_sidecar(rel, &nodes) => {}
            Node::File => problems.push(format!(
                "{origin}: {rel:?} is a regular file, but the NixOS etc tree holds only links \
                 and their .mode/.uid/.gid sidecars"
            )),
            Node::Dir => {}
        }
    }
    // NixOS's builder never makes an empty directory; one would be silently lost otherwise.
    let used: BTreeSet<&str> = nodes.keys().flat_map(|rel| ancestors(rel)).collect();
    for (rel, node) in &nodes {
        if matches!(node, Node::Dir) && !used.contains(rel.as_str()) {
            problems.push(format!("{origin}: {rel:?} is an empty directory"));
        }
    }
    Ok(decls)
}

/// Every path under `root`, by relative path, without following links.
fn walk(
    root: &Path,
    origin: &str,
    problems: &mut Vec<String>,
) -> anyhow::Result<BTreeMap<String, Node>> {
    let mut nodes = BTreeMap::new();
    let walker = WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    for item in walker {
        let item = item.with_context(|| format!("cannot walk {origin}"))?;
        let path = item.path();
        let Some(rel) = path
            .strip_prefix(root)
            .ok()
            .and_then(Path::to_str)
            .map(str::to_owned)
        else {
            problems.push(format!("{origin}: {} is not a UTF-8 path", path.display()));
            continue;
        };
        let ft = item.file_type();
        let node = if ft.is_symlink() {
            let text = fs::read_link(path)
                .with_context(|| format!("cannot read the link {}", path.display()))?;
            Node::Link(text)
        } else if ft.is_file() {
            Node::File
        } else if ft.is_dir() {
            Node::Dir
        } else {
            problems.push(format!(
                "{origin}: {rel:?} is neither a link, a regular file nor a directory"
            ));
            continue;
        };
        nodes.insert(rel, node);
    }
    Ok(nodes)
}

fn is_sidecar(rel: &str, nodes: &BTreeMap<String, Node>) -> bool {
    SIDECARS.iter().any(|ext| {
        rel.strip_suffix(ext)
            .is_some_and(|base| matches!(nodes.get(base), Some(Node::Link(_))))
    })
}

fn link_decl(
    root: &Path,
    rel: &str,
    text: &Path,
    nodes: &BTreeMap<String, Node>,
    problems: &mut Vec<String>,
) -> anyhow::Result<Option<Decl>> {
    let before = problems.len();
    let mut d = Decl::new(rel, Origin::NixosEtc);
    match text.to_str() {
        // The builder expands globs itself; a `*` left in a link text is its "matched nothing"
        // bug (a link literally named `*`), which we refuse rather than expand differently now.
        Some(t) if crate::etc::glob::is_glob(t) => problems.push(d.problem(
            "source",
            &format!("link text {t:?} is an unexpanded glob (it matched nothing in NixOS)"),
        )),
        Some(t) => d.source = Some(t.to_owned()),
        None => problems.push(d.problem(
            "source",
            &format!("link text {} is not UTF-8", text.display()),
        )),
    }
    // A missing sidecar means the NixOS default, as a missing spec field does.
    for (ext, field) in SIDECARS
        .iter()
        .zip([&mut d.mode, &mut d.user, &mut d.group])
    {
        let side = format!("{rel}{ext}");
        if !matches!(nodes.get(&side), Some(Node::File)) {
            continue;
        }
        let path = root.join(&side);
        let content = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        match String::from_utf8(content) {
            Ok(s) if !s.trim().is_empty() && !s.trim().contains('\n') => {
                s.trim().clone_into(field);
            }
            _ => problems.push(format!(
                "--nixos-etc {side:?}: a sidecar holds one non-empty line of UTF-8 text"
            )),
        }
    }
    // A link already found wrong is not passed on, so it is not reported twice.
    Ok((problems.len() == before).then_some(d))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("etcflip-gen-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("etc")).unwrap();
        dir
    }

    #[test]
    fn stray_files_empty_dirs_and_bad_sidecars_are_problems() {
        let dir = tree("import-bad");
        let etc = dir.join("etc");
        fs::create_dir(etc.join("empty")).unwrap();
        fs::write(etc.join("stray"), "x").unwrap();
        fs::write(etc.join("orphan.mode"), "0644").unwrap();
        symlink("/nix/store/a", etc.join("a")).unwrap();
        fs::write(etc.join("a.mode"), "0644\n0600\n").unwrap();
        symlink("/nix/store/x/*", etc.join("*")).unwrap();
        let mut problems = Vec::new();
        let decls = import(&dir, &mut problems).unwrap();
        assert_eq!(decls.len(), 0);
        let all = problems.join("\n");
        for want in [
            "\"empty\" is an empty directory",
            "\"stray\" is a regular file",
            "\"orphan.mode\" is a regular file",
            "\"a.mode\": a sidecar holds one non-empty line",
            "--nixos-etc \"*\".source: link text \"/nix/store/x/*\" is an unexpanded glob",
        ] {
            assert!(all.contains(want), "{want:?} missing in:\n{all}");
        }
        assert_eq!(problems.len(), 5, "{all}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn store_names() {
        assert!(is_store_name("0000000000000000000000000000000a-etc"));
        assert!(is_store_name("sn5ix8pd3wlh2z1kxnz7dl5k0mr9q1yv-etc"));
        for bad in [
            "0000000000000000000000000000000a-",
            "0000000000000000000000000000000e-etc",
            "0000000000000000000000000000000A-etc",
            "000000000000000000000000000000a-etc",
            "0000000000000000000000000000000aa-etc",
            "etc",
        ] {
            assert!(!is_store_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_store_is_where_the_tree_lives() {
        let dir = tree("store-of");
        let name = "0000000000000000000000000000000a-etc";
        fs::create_dir_all(dir.join("store").join(name).join("etc/x")).unwrap();
        symlink(dir.join("store").join(name), dir.join("current")).unwrap();
        let real = fs::canonicalize(&dir).unwrap();
        let want = real.join("store").to_str().unwrap().to_owned();
        assert_eq!(store_of(&dir.join("store").join(name)), Some(want.clone()));
        assert_eq!(store_of(&dir.join("current/etc")), Some(want));
        assert_eq!(store_of(&dir), None);
        assert_eq!(store_of(Path::new("/nonexistent/etcflip")), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_tree_is_a_problem() {
        let mut problems = Vec::new();
        let decls = import(Path::new("/nonexistent/etcflip"), &mut problems).unwrap();
        assert!(decls.is_empty());
        assert!(problems[0].ends_with("does not exist"), "{problems:?}");
    }
}
