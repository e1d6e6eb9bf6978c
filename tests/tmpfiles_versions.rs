//! Golden test of the tmpfiles encoding (`etcflip::tmpfiles`) against every available
//! systemd-tmpfiles: the host's 252 and the 254/257 from `tests/tools/fetch-tmpfiles.sh`.
//!
//! For each binary, in a fresh scratch root: links with nasty names and nasty targets are
//! created from a snippet passed by absolute path (outside the root), every link is read back
//! and its target compared byte for byte, and the root must hold nothing else. A negative test
//! shows the same check failing for an argument written without the encoding. (Removal does
//! not go through tmpfiles: see the README, "Removal".)

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use etcflip::tmpfiles::{dir_line, link_line, parse_line};
use etcflip_e2e::tmpfiles_bins::{versions, TmpfilesBin};

/// A 200-byte name made of characters that each need care.
fn long_name() -> String {
    let mut name = String::new();
    while name.len() < 200 {
        name.push_str("long name %m \\x2d \"q\" 'q' #- ");
    }
    name.truncate(200);
    name
}

/// File names that each broke some tmpfiles encoding somewhere.
fn nasty_names() -> Vec<String> {
    // Control characters cannot be file names in a spec (they are refused before tmpfiles).
    let mut names: Vec<String> = etcflip::tmpfiles::TRICKY_NAMES
        .iter()
        .filter(|n| !n.chars().any(char::is_control))
        .map(|s| (*s).to_owned())
        .collect();
    names.push(long_name());
    names
}

/// Targets that are not `/etc/static/<name>`: arbitrary strings (absolute or not) that a link
/// may legitimately hold.
const ODD_TARGETS: &[&str] = &[
    "-",
    " ",
    "/nix/store/x-\t tab and space \t",
    "/nix/store/new\nline",
    "/nix/store/%%already-doubled%%",
    "/nix/store/\\x20 literal backslash-x",
    "/nix/store/\\\\two\\\\",
    "relative/target with trailing space ",
    "/nix/store/\"quoted\"",
    "/nix/store/- dash-",
];

/// What one scratch root should end up holding.
struct Layout {
    /// Directories, parents first.
    dirs: Vec<String>,
    /// `(link path, target)`.
    links: Vec<(String, String)>,
    /// Regular files put there beforehand, standing for entries etcflip does not own: no
    /// snippet line names them, and they must survive creation.
    foreign: Vec<String>,
}

fn layout() -> Layout {
    let dirs: Vec<String> = [
        "/etc",
        "/etc/arbitrary",
        "/etc/odd",
        "/etc/a b",
        "/etc/a b/c\"d",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut links = Vec::new();
    for name in nasty_names() {
        links.push((format!("/etc/{name}"), format!("/etc/static/{name}")));
        links.push((
            format!("/etc/arbitrary/{name}"),
            format!("/nix/store/x- {name} "),
        ));
    }
    links.push((
        "/etc/a b/c\"d/e%f".to_owned(),
        "/etc/static/a b/c\"d/e%f".to_owned(),
    ));
    for (i, target) in ODD_TARGETS.iter().enumerate() {
        links.push((format!("/etc/odd/{i}"), (*target).to_owned()));
    }
    Layout {
        dirs,
        links,
        foreign: Vec::new(),
    }
}

/// Names that are glob patterns to tmpfiles' globbing line types, each with the foreign names
/// that pattern would match: `L` and `d` paths must stay literal.
const GLOB_NAMES: &[(&str, &[&str])] = &[
    ("star*", &["starX"]),
    ("q?", &["qX"]),
    ("br[a]", &["bra"]),
    ("{a,b}", &["a", "b"]),
    ("back\\slash", &["backslash"]),
];

fn glob_layout() -> Layout {
    let links = GLOB_NAMES
        .iter()
        .map(|(name, _)| (format!("/etc/g/{name}"), format!("/etc/static/{name}")))
        .collect();
    let foreign = GLOB_NAMES
        .iter()
        .flat_map(|(_, matches)| matches.iter().map(|m| format!("/etc/g/{m}")))
        .collect();
    Layout {
        dirs: vec!["/etc".to_owned(), "/etc/g".to_owned()],
        links,
        foreign,
    }
}

/// A unique directory under the system temp dir holding `root/` and the snippets; removed on
/// drop, also when the test fails (kept with `ETCFLIP_KEEP_SCRATCH=1`, for debugging).
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("etcflip-tmpfiles-{tag}-{}-{n}", std::process::id()));
            match fs::create_dir(&dir) {
                Ok(()) => {
                    let scratch = Scratch { dir };
                    fs::create_dir(scratch.root())
                        .unwrap_or_else(|e| panic!("mkdir {}: {e}", scratch.root().display()));
                    return scratch;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => panic!("mkdir {}: {e}", dir.display()),
            }
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// Writes a snippet next to (not inside) the root and returns its absolute path.
    fn snippet(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("ETCFLIP_KEEP_SCRATCH").is_some_and(|v| v == "1") {
            eprintln!("ETCFLIP_KEEP_SCRATCH=1: keeping {}", self.dir.display());
            return;
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("warning: could not remove {}: {e}", self.dir.display());
        }
    }
}

/// `path` (absolute, image namespace) inside `root`.
fn in_root(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Runs `<bin> <action> --root=<root> <snippet>`: Ok(stderr) on rc 0, else Err with details.
fn run(bin: &TmpfilesBin, action: &str, root: &Path, snippet: &Path) -> Result<String, String> {
    let mut root_arg = std::ffi::OsString::from("--root=");
    root_arg.push(root);
    let out = Command::new(&bin.path)
        .arg(action)
        .arg(root_arg)
        .arg(snippet)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.path.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !stderr.trim().is_empty() {
        eprintln!(
            "[tmpfiles {} {action}] stderr:\n{}",
            bin.major,
            stderr.trim_end()
        );
    }
    if out.status.success() {
        Ok(stderr)
    } else {
        Err(format!(
            "{action} exited with {}; stderr: {}",
            out.status,
            stderr.trim_end()
        ))
    }
}

/// Every entry below `root`, as absolute image paths (bytes), without following links.
fn walk(root: &Path) -> BTreeSet<Vec<u8>> {
    fn visit(root: &Path, dir: &Path, out: &mut BTreeSet<Vec<u8>>) {
        let entries =
            fs::read_dir(dir).unwrap_or_else(|e| panic!("readdir {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("readdir {}: {e}", dir.display()));
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let mut image = b"/".to_vec();
            image.extend_from_slice(rel.as_os_str().as_bytes());
            out.insert(image);
            let file_type = entry
                .file_type()
                .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
            if file_type.is_dir() {
                visit(root, &path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    visit(root, root, &mut out);
    out
}

fn show(paths: impl IntoIterator<Item = impl AsRef<[u8]>>) -> Vec<String> {
    paths
        .into_iter()
        .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
        .collect()
}

/// Every deviation of the created root from `layout`, one message each: link targets compared
/// byte for byte, dirs present, foreign entries untouched, nothing else in the root.
fn creation_problems(root: &Path, layout: &Layout) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, want) in &layout.links {
        match fs::read_link(in_root(root, path)) {
            Ok(got) if got.as_os_str().as_bytes() == want.as_bytes() => {}
            Ok(got) => problems.push(format!(
                "{path:?}: target {:?}, wanted {want:?}",
                String::from_utf8_lossy(got.as_os_str().as_bytes())
            )),
            Err(e) => problems.push(format!("{path:?}: no link ({e}), wanted {want:?}")),
        }
    }
    for dir in &layout.dirs {
        if !fs::symlink_metadata(in_root(root, dir)).is_ok_and(|m| m.is_dir()) {
            problems.push(format!("directory {dir:?} missing"));
        }
    }
    for file in &layout.foreign {
        if !fs::symlink_metadata(in_root(root, file)).is_ok_and(|m| m.is_file()) {
            problems.push(format!("foreign file {file:?} gone"));
        }
    }
    let wanted: BTreeSet<Vec<u8>> = layout
        .dirs
        .iter()
        .chain(layout.links.iter().map(|(path, _)| path))
        .chain(&layout.foreign)
        .map(|p| p.as_bytes().to_vec())
        .collect();
    for extra in show(walk(root).difference(&wanted)) {
        problems.push(format!("unexpected entry {extra:?}"));
    }
    problems
}

/// The create snippet for `layout`, links encoded by `link`.
fn create_snippet(layout: &Layout, link: impl Fn(&str, &str) -> String) -> String {
    let mut text = String::new();
    for dir in &layout.dirs {
        text.push_str(&dir_line(dir, 0o755));
    }
    for (path, target) in &layout.links {
        text.push_str(&link(path, target));
    }
    text
}

/// Creates `layout` with the emitted encoding and checks it; returns every problem found,
/// prefixed by the version.
fn create_and_check(bin: &TmpfilesBin, layout: &Layout) -> Vec<String> {
    let scratch = Scratch::new(&bin.major.to_string());
    let root = scratch.root();
    for file in &layout.foreign {
        let path = in_root(&root, file);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        fs::write(&path, "foreign\n").unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
    let tag = |p: String| format!("tmpfiles {}: {p}", bin.major);
    let mut problems = Vec::new();

    let create = create_snippet(layout, link_line);
    let snippet = scratch.snippet("create.conf", &create);
    match run(bin, "--create", &root, &snippet) {
        Ok(stderr) if stderr.trim().is_empty() => {}
        Ok(stderr) => problems.push(tag(format!("--create printed: {}", stderr.trim_end()))),
        Err(e) => problems.push(tag(e)),
    }
    problems.extend(creation_problems(&root, layout).into_iter().map(tag));

    if problems.is_empty() {
        eprintln!(
            "tmpfiles {}: {} links + {} dirs created, read back byte-exact, nothing else in the \
             root, {} foreign entries kept",
            bin.major,
            layout.links.len(),
            layout.dirs.len(),
            layout.foreign.len()
        );
    } else {
        eprintln!("tmpfiles {}: create snippet:\n{create}", bin.major);
    }
    problems
}

/// Runs [`create_and_check`] on every available version; every problem fails the test.
fn assert_every_version(layout: &Layout) {
    let problems: Vec<String> = versions()
        .iter()
        .flat_map(|bin| create_and_check(bin, layout))
        .collect();
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn every_version_round_trips_nasty_names() {
    assert_every_version(&layout());
}

/// `L` and `d` paths are literal: a name that would be a glob pattern (with braces) makes
/// exactly that link, and the foreign entries it would match stay as they are.
#[test]
fn every_version_creates_glob_names_literally() {
    assert_every_version(&glob_layout());
}

#[test]
fn emitted_lines_parse_back() {
    for layout in [layout(), glob_layout()] {
        for (path, target) in &layout.links {
            let line = link_line(path, target);
            let parsed = parse_line(&line).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed.kind, "L", "{line:?}");
            assert_eq!(&parsed.path, path, "{line:?}");
            assert_eq!(parsed.arg.as_ref(), Some(target), "{line:?}");
            assert!(!line.contains(['\t', '\r']), "{line:?}");
            assert_eq!(line.matches('\n').count(), 1, "{line:?}");
            assert!(!line.trim_end_matches('\n').ends_with(' '), "{line:?}");
        }
        for dir in &layout.dirs {
            let line = dir_line(dir, 0o755);
            let parsed = parse_line(&line).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((parsed.kind.as_str(), &parsed.path), ("d", dir), "{line:?}");
            assert_eq!(parsed.arg, None, "{line:?}");
        }
    }
}

/// Proves the read-back check can fail: the same names with the argument written raw (path
/// still quoted) come back different, on every version. This is why `escape_arg` exists.
#[test]
fn unencoded_argument_is_mangled() {
    // (link, raw target, what tmpfiles actually stores)
    let mangled: &[(&str, &str, &str)] = &[
        // Trailing whitespace of the Argument field is stripped.
        (
            "/etc/trailing ",
            "/etc/static/trailing ",
            "/etc/static/trailing",
        ),
        // `\x2d` in the Argument is a C escape, so a systemd-escaped name loses its backslash.
        (
            "/etc/dev-disk-by\\x2duuid",
            "/etc/static/dev-disk-by\\x2duuid",
            "/etc/static/dev-disk-by-uuid",
        ),
    ];
    let layout = Layout {
        dirs: vec!["/etc".to_owned()],
        links: mangled
            .iter()
            .map(|(path, target, _)| ((*path).to_owned(), (*target).to_owned()))
            .collect(),
        foreign: Vec::new(),
    };
    let raw = |path: &str, target: &str| {
        format!(
            "L {} - - - - {target}\n",
            etcflip::tmpfiles::quote_path(path)
        )
    };
    let create = create_snippet(&layout, raw);
    for bin in versions() {
        let scratch = Scratch::new(&format!("neg{}", bin.major));
        let root = scratch.root();
        let snippet = scratch.snippet("create.conf", &create);
        run(&bin, "--create", &root, &snippet).unwrap_or_else(|e| panic!("{e}"));
        let problems = creation_problems(&root, &layout);
        assert_eq!(
            problems.len(),
            mangled.len(),
            "tmpfiles {}: the check should flag every raw line: {problems:#?}",
            bin.major
        );
        for (path, _, stored) in mangled {
            let got = fs::read_link(in_root(&root, path))
                .unwrap_or_else(|e| panic!("tmpfiles {}: readlink {path:?}: {e}", bin.major));
            assert_eq!(
                got.as_os_str().as_bytes(),
                stored.as_bytes(),
                "tmpfiles {} on {path:?}",
                bin.major
            );
        }
        eprintln!(
            "tmpfiles {}: raw arguments mangled as expected:\n  {}",
            bin.major,
            problems.join("\n  ")
        );
    }
}
