//! Runs `systemd-tmpfiles` on a transient snippet.
//!
//! The snippet is written to the state directory and passed by absolute path (tmpfiles reads a
//! config named on its command line from the host, and never installs it), then deleted. Its
//! exit code is advisory (research: a data error can mask a create error), so callers always
//! read back what they asked for.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::rootfs::Root;
use crate::state::{atomic_write, state_dir};

/// Environment variable naming a specific `systemd-tmpfiles` binary (tests use 252/254/257).
pub const TMPFILES_ENV: &str = "ETCFLIP_TMPFILES";

/// Finds `systemd-tmpfiles`, or says which package provides it.
pub fn find_tmpfiles() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(TMPFILES_ENV) {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/bin", "/bin", "/run/current-system/sw/bin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|d| d.join("systemd-tmpfiles"))
        .find(|p| p.is_file())
        .context(
            "systemd-tmpfiles was not found in PATH; etcflip needs it to create and remove \
             /etc links. Install it: Debian/Ubuntu `apt-get install systemd` (or the smaller \
             `systemd-standalone-tmpfiles`), Fedora `dnf install systemd`, NixOS: systemd is \
             always present",
        )
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
pub fn run(root: &mut Root, mode: Mode, lines: &str) -> Result<Option<String>> {
    let bin = find_tmpfiles()?;
    let (flag, name) = match mode {
        Mode::Create => ("--create", "create.conf"),
        Mode::Remove => ("--remove", "remove.conf"),
    };
    let rel = format!("{}/{name}", state_dir());
    atomic_write(root, &rel, lines.as_bytes())?;
    let conf = root.host_path().join(&rel);
    let mut cmd = Command::new(&bin);
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
