//! Glob sources (`source` containing `*`): one link per match under the entry's target.
//!
//! NixOS expands these with unquoted shell globbing, which also splits on spaces and leaves a
//! link literally named `*` when nothing matches; we walk the file system ourselves instead and
//! treat "no match" as an error. Supported: `*` (any run of characters) and `?` (one character),
//! both within one path component; like the shell, a wildcard does not match a leading `.`.
//! Other shell syntax (`[...]`, `{a,b}`) is literal. A source counts as a glob only when it
//! contains `*`, as in NixOS; `?` alone is an ordinary character.

use std::io;
use std::path::Path;

/// True when `source` is a glob pattern (NixOS's rule: it contains `*`).
pub(crate) fn is_glob(source: &str) -> bool {
    source.contains('*')
}

fn has_wildcard(component: &str) -> bool {
    component.contains(['*', '?'])
}

/// Does the one-component `pattern` match `name`?
fn matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Greedy matching with one backtrack point (the last `*`): linear enough for file names.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Expands an absolute, normalised pattern into the sorted list of existing matching paths.
///
/// Intermediate directories are entered through links (store paths are often links to
/// directories); the matches themselves are taken as they are, links included. A directory that
/// does not exist or is not a directory simply contributes no match; any other read error is
/// returned.
pub(crate) fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let mut found = vec![String::new()];
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = Vec::new();
        for prefix in &found {
            if has_wildcard(comp) {
                list_matching(prefix, comp, &mut next)?;
            } else {
                let path = format!("{prefix}/{comp}");
                // Only the final literal component needs checking here; an intermediate one is
                // checked by listing or checking what comes after it.
                if !last || exists(&path)? {
                    next.push(path);
                }
            }
        }
        found = next;
    }
    found.sort();
    Ok(found)
}

fn exists(path: &str) -> Result<bool, String> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if absent(&e) => Ok(false),
        Err(e) => Err(format!("cannot look at {path}: {e}")),
    }
}

/// Not there, or not a directory where one was needed: no match, as in the shell.
fn absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn list_matching(prefix: &str, pattern: &str, out: &mut Vec<String>) -> Result<(), String> {
    let dir = if prefix.is_empty() { "/" } else { prefix };
    let entries = match std::fs::read_dir(Path::new(dir)) {
        Ok(entries) => entries,
        Err(e) if absent(&e) => return Ok(()),
        Err(e) => return Err(format!("cannot list {dir}: {e}")),
    };
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {dir}: {e}"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(format!(
                "{dir} holds a name that is not UTF-8 ({}); it cannot become a target",
                name.to_string_lossy()
            ));
        };
        if matches(pattern, name) {
            out.push(format!("{prefix}/{name}"));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matching() {
        for (p, n) in [
            ("*", "a"),
            ("*", "abc"),
            ("*.conf", "x.conf"),
            ("a*b*c", "aXbYbZc"),
            ("a?c", "abc"),
            ("*", "*"),
            (".*", ".hidden"),
            ("*x", "xx"),
            ("a**", "a"),
            ("ü?", "üé"),
        ] {
            assert!(matches(p, n), "{p:?} should match {n:?}");
        }
        for (p, n) in [
            ("*", ".hidden"),
            ("?x", ".x"),
            ("*.conf", "x.confx"),
            ("a?c", "ac"),
            ("abc", "abd"),
            ("a*b", "ab c"),
            ("[a]", "a"),
        ] {
            assert!(!matches(p, n), "{p:?} should not match {n:?}");
        }
    }

    #[test]
    fn only_stars_make_globs() {
        assert!(is_glob("/a/*"));
        assert!(!is_glob("/a/?"));
    }

    #[test]
    fn expansion_walks_sorted_and_follows_directory_links() {
        let base = std::env::temp_dir().join(format!("etcflip-gen-glob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        for d in ["p1/share", "p2/share", "p3"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::fs::write(base.join("p1/share/b"), "").unwrap();
        std::fs::write(base.join("p1/share/a"), "").unwrap();
        std::fs::write(base.join("p1/share/.h"), "").unwrap();
        std::os::unix::fs::symlink(base.join("p1/share"), base.join("p4")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", base.join("p2/share/dangling")).unwrap();
        let b = base.to_str().unwrap();
        assert_eq!(
            expand(&format!("{b}/p1/share/*")).unwrap(),
            [format!("{b}/p1/share/a"), format!("{b}/p1/share/b")]
        );
        assert_eq!(
            expand(&format!("{b}/p*/share")).unwrap(),
            [format!("{b}/p1/share"), format!("{b}/p2/share")]
        );
        assert_eq!(expand(&format!("{b}/p4/?")).unwrap().len(), 2);
        assert_eq!(
            expand(&format!("{b}/*/share/dang*")).unwrap(),
            [format!("{b}/p2/share/dangling")]
        );
        assert!(expand(&format!("{b}/none/*")).unwrap().is_empty());
        assert!(expand(&format!("{b}/p1/share/a/*")).unwrap().is_empty());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
