//! The systemd-tmpfiles binaries the golden tests run: the host's 252 plus the 254 and 257
//! wrappers that `tests/tools/fetch-tmpfiles.sh` unpacks into the cache.
//!
//! Every binary's `--version` is printed and checked: a binary whose major version is not the
//! expected one is refused (panic), never silently tested as something else. A missing 254/257
//! wrapper is skipped loudly, or is fatal with `ETCFLIP_REQUIRE_ALL_TMPFILES=1`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Env var naming the cache dir (default `<repo>/.cache`); relative values are taken from the
/// repo root, as in `fetch-tmpfiles.sh`.
pub const CACHE_ENV: &str = "ETCFLIP_CACHE";
/// With this set to `1`, a missing 254/257 wrapper is a failure instead of a skip.
pub const REQUIRE_ALL_ENV: &str = "ETCFLIP_REQUIRE_ALL_TMPFILES";
/// The script that provides the 254/257 wrappers.
pub const FETCH_SCRIPT: &str = "tests/tools/fetch-tmpfiles.sh";

/// One runnable systemd-tmpfiles of a verified major version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfilesBin {
    /// The major version `--version` reported (252, 254 or 257).
    pub major: u32,
    /// The binary, or the wrapper script that runs it.
    pub path: PathBuf,
}

/// The repository root (parent of the `tests` package).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cache dir: `$ETCFLIP_CACHE` or `<repo>/.cache`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os(CACHE_ENV) {
        Some(dir) if !dir.is_empty() => repo_root().join(dir),
        _ => repo_root().join(".cache"),
    }
}

/// Where `fetch-tmpfiles.sh` puts the wrapper for `major`.
pub fn wrapper_path(major: u32) -> PathBuf {
    cache_dir()
        .join("tmpfiles/bin")
        .join(format!("systemd-tmpfiles-{major}"))
}

/// First line of `<bin> --version`, and the major version it names.
pub fn probe_version(bin: &Path) -> Result<(u32, String), String> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().next().unwrap_or("").to_owned();
    if !out.status.success() {
        return Err(format!(
            "{} --version failed ({}): {first} {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // "systemd 252 (252.38-1~deb12u1)"
    let major = first
        .strip_prefix("systemd ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|m| m.parse::<u32>().ok())
        .ok_or_else(|| format!("{} --version: unexpected output {first:?}", bin.display()))?;
    Ok((major, first))
}

/// Checks `bin` reports `expected` and prints its version line.
fn verified(bin: PathBuf, expected: u32) -> TmpfilesBin {
    let (major, line) = probe_version(&bin).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        major == expected,
        "refusing {}: expected systemd-tmpfiles {expected}, it reports {line:?}",
        bin.display()
    );
    eprintln!("tmpfiles {expected}: {line}  [{}]", bin.display());
    TmpfilesBin { major, path: bin }
}

/// `systemd-tmpfiles` from `PATH` (then the usual Debian locations).
fn host_tmpfiles() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|dir| dir.join("systemd-tmpfiles"))
        .find(|candidate| candidate.is_file())
}

/// The binaries to test against: the host's 252 (required), then 254 and 257 from the cache.
pub fn versions() -> Vec<TmpfilesBin> {
    let host = host_tmpfiles().unwrap_or_else(|| {
        panic!("the host's systemd-tmpfiles (252, Debian 12 package systemd) was not found")
    });
    let mut bins = vec![verified(host, 252)];
    let require_all = std::env::var_os(REQUIRE_ALL_ENV).is_some_and(|v| v == "1");
    for major in [254, 257] {
        let wrapper = wrapper_path(major);
        if wrapper.is_file() {
            bins.push(verified(wrapper, major));
        } else if require_all {
            panic!(
                "systemd-tmpfiles {major} not available at {} and {REQUIRE_ALL_ENV}=1: \
                 run {FETCH_SCRIPT}",
                wrapper.display()
            );
        } else {
            // Straight to the process's stderr: libtest captures `eprintln!`, and a skip must
            // show even when the test passes without `--nocapture`.
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: systemd-tmpfiles {major} not available (run {FETCH_SCRIPT}) \
                 [looked for {}]",
                wrapper.display()
            );
        }
    }
    bins
}
