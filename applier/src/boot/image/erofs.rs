//! The erofs image. `mkfs.erofs` 1.5 reads no pseudo file, so the owners are given to the tree
//! under `fakeroot` (whose `chown` only pretends, and which `mkfs.erofs` then believes), and
//! the image is made in the same session: unprivileged, as in a Nix build. A fixed time, UUID
//! and no extended attributes make the same tree give the same bytes.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};

/// The UUID of every image (a reproducible image cannot have a random one).
const UUID: &str = "00000000-0000-0000-0000-000000000000";

/// The script `fakeroot` runs: the owners (stdin), then the modes (`$4`: a chown clears
/// set-id bits; the top is 0755 whatever the umask it was made under), then the image.
const SCRIPT: &str = r#"cd "$1" && xargs -0 -n2 chown -h && chmod 755 . && xargs -0 -n2 chmod < "$4" && exec mkfs.erofs -T0 -U"$2" -x-1 --quiet "$3" ."#;

/// Makes `image` from the tree `root`, its owners from `pairs` (`uid:gid` and path, each
/// NUL-terminated) and its modes from the file `modes` (mode and path, the same way).
pub(super) fn make(root: &Path, pairs: &[u8], modes: &Path, image: &Path) -> Result<()> {
    let mut child = Command::new("fakeroot")
        .args(["--", "sh", "-c", SCRIPT, "sh"])
        .arg(root)
        .arg(UUID)
        .arg(std::path::absolute(image).with_context(|| format!("{}", image.display()))?)
        .arg(modes)
        // mkfs.erofs would take it over -T0.
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run fakeroot (Debian package fakeroot) for mkfs.erofs")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(pairs)
            .context("cannot give the owners to fakeroot")?;
    }
    let out = (child.wait_with_output()).context("fakeroot mkfs.erofs")?;
    if !out.status.success() {
        bail!(
            "fakeroot mkfs.erofs failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
