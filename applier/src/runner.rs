//! Runs `systemd-tmpfiles` on a transient snippet.
//!
//! The snippet is written to the state directory and passed by absolute path (tmpfiles reads a
//! config named on its command line from the host, and never installs it), then deleted. Its
//! exit code is advisory (research: a data error can mask a create error), so callers always
//! read back what they asked for.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::rootfs::{Owner, Root};
use crate::state::state_dir;

/// Environment variable naming a specific `systemd-tmpfiles` binary (tests use 252/254/257).
pub const TMPFILES_ENV: &str = "ETCFLIP_TMPFILES";

/// Where `systemd-tmpfiles` is looked for after `PATH` (activation may run with a bare PATH).
const FALLBACK_DIRS: [&str; 3] = ["/usr/bin", "/bin", "/run/current-system/sw/bin"];

const INSTALL_HINT: &str = "etcflip needs it to create and remove /etc links. Install it: \
    Debian/Ubuntu `apt-get install systemd` (or the smaller `systemd-standalone-tmpfiles`), \
    Fedora `dnf install systemd`; on NixOS it is part of systemd";

/// Finds `systemd-tmpfiles` (`$ETCFLIP_TMPFILES`, then `PATH`, then the usual directories),
/// or says which package provides it. Called before a switch's first write.
pub fn find_tmpfiles() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(FALLBACK_DIRS.map(PathBuf::from))
        .collect();
    find_in(std::env::var_os(TMPFILES_ENV).map(PathBuf::from), &dirs)
}

fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The search itself, separate so that the messages can be tested.
fn find_in(over: Option<PathBuf>, dirs: &[PathBuf]) -> Result<PathBuf> {
    if let Some(p) = over {
        if is_executable(&p) {
            return Ok(p);
        }
        bail!(
            "{TMPFILES_ENV}={} is not an executable systemd-tmpfiles; {INSTALL_HINT}",
            p.display()
        );
    }
    dirs.iter()
        .map(|d| d.join("systemd-tmpfiles"))
        .find(|p| is_executable(p))
        .with_context(|| format!("systemd-tmpfiles was not found in PATH; {INSTALL_HINT}"))
}

/// `--create` or `--remove`.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Create links and directories.
    Create,
    /// Remove paths (`r` lines).
    Remove,
}

/// Runs tmpfiles over `lines` below `root`. Returns tmpfiles' complaints (stderr) when it
/// exits non-zero; the caller's read-back decides whether that matters.
pub fn run(
    root: &mut Root,
    bin: &std::path::Path,
    mode: Mode,
    lines: &str,
) -> Result<Option<String>> {
    let (flag, name) = match mode {
        Mode::Create => ("--create", "create.conf"),
        Mode::Remove => ("--remove", "remove.conf"),
    };
    // Transient, read once by tmpfiles and removed: no rename needed (a killed run's copy is
    // swept with the state directory under the lock).
    let rel = format!("{}/{name}", state_dir());
    root.remove_tree_if_present(&rel)?;
    root.write_new(&rel, &[lines.as_bytes()], 0o644, Owner::current())?;
    let conf = root.host_path().join(&rel);
    let mut cmd = Command::new(bin);
    cmd.arg(flag);
    if root.host_path() != std::path::Path::new("/") {
        cmd.arg(format!("--root={}", root.host_path().display()));
    }
    cmd.arg(&conf);
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", bin.display()));
    root.unlink(&rel)?;
    let out = out?;
    if out.status.success() {
        return Ok(None);
    }
    if out.status.code().is_none() {
        bail!("{} was killed ({})", bin.display(), out.status);
    }
    Ok(Some(format!(
        "{} {flag} exited with {}: {}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tmpfiles_names_the_package() {
        let err = find_in(None, &[PathBuf::from("/nonexistent")]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("not found in PATH"), "{msg}");
        assert!(msg.contains("apt-get install systemd"), "{msg}");
        let err = find_in(Some(PathBuf::from("/nonexistent/tmpfiles")), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("ETCFLIP_TMPFILES=/nonexistent/tmpfiles"));
    }

    #[test]
    fn found_in_the_first_directory_that_has_it() {
        let dirs = [PathBuf::from("/nonexistent"), PathBuf::from("/usr/bin")];
        if std::path::Path::new("/usr/bin/systemd-tmpfiles").exists() {
            assert_eq!(
                find_in(None, &dirs).unwrap(),
                PathBuf::from("/usr/bin/systemd-tmpfiles")
            );
        }
    }
}
