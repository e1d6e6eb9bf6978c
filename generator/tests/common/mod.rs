//! Helpers shared by the integration tests: unique temporary directories, building a
//! generation, and a readable listing of a generation's payload.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use etcflip_gen::Options;

/// A directory under the system temp dir, unique per process and call, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "etcflip-gen-test-{name}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Canonical, so the paths the generator records (it canonicalises the spec's
        // directory) can be replaced by a placeholder exactly.
        TempDir(std::fs::canonicalize(dir).unwrap())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    pub(crate) fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// Writes `content` at `rel`, creating parents.
    pub(crate) fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    /// Creates a link at `rel` with text `target`, creating parents.
    pub(crate) fn link(&self, rel: &str, target: &str) {
        let path = self.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, path).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds from a spec file at `dir/spec.json` holding `spec` into `out`.
pub(crate) fn build_spec(dir: &TempDir, spec: &str, out: &Path) -> anyhow::Result<()> {
    let path = dir.write("spec.json", spec);
    etcflip_gen::build(&Options {
        spec: Some(path),
        out: out.to_path_buf(),
        ..Options::default()
    })
}

/// Every path under `root`, sorted: `d MODE path`, `f MODE path sha256-prefix "content"` or
/// `l path -> text`.
pub(crate) fn listing(root: &Path) -> String {
    let mut out = String::new();
    for item in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let item = item.unwrap();
        let rel = item
            .path()
            .strip_prefix(root)
            .unwrap()
            .display()
            .to_string();
        let meta = item.path().symlink_metadata().unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let text = std::fs::read_link(item.path()).unwrap();
            writeln!(out, "l {rel} -> {}", text.display()).unwrap();
        } else if meta.is_dir() {
            writeln!(out, "d {mode:04o} {rel}").unwrap();
        } else {
            let content = std::fs::read(item.path()).unwrap();
            let shown = String::from_utf8_lossy(&content);
            let shown: String = shown.chars().take(60).collect();
            writeln!(out, "f {mode:04o} {rel} {shown:?}").unwrap();
        }
    }
    out
}

/// Reads a generation's manifest, snippet and payload listing as one text.
pub(crate) fn generation_text(gen: &Path) -> String {
    format!(
        "=== manifest.json\n{}=== tmpfiles.d/etcflip.conf\n{}=== payload\n{}",
        std::fs::read_to_string(gen.join("manifest.json")).unwrap(),
        std::fs::read_to_string(gen.join("tmpfiles.d/etcflip.conf")).unwrap(),
        listing(&gen.join("etc"))
    )
}

/// The names in `dir` (to check that nothing, not even a temporary directory, was left).
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
