//! The state directory (`/etc/.etcflip` under the root): the lock, the applied generation and
//! the journal of a switch in progress.
//!
//! - `lock`: an exclusive `flock`, held for the whole switch.
//! - `applied.json`: `{"version":1,"generation":…,"manifest":…}`, the generation the root
//!   matches. The manifest is kept verbatim, so "same generation again" is a byte comparison.
//! - `journal.json`: `{"version":1,"pending":[{"generation":…,"manifest":…},…]}`, written
//!   before the first change of a switch and dropped at its commit. Every generation listed
//!   there may have left paths behind, so every later run counts them as ours (and removes
//!   what its own target does not want): a killed switch leaves no orphan, whatever
//!   generation the next run targets.
//!
//! Every file is replaced atomically: temp file in the same directory, fsync, rename, fsync
//! of the directory.

use std::os::fd::OwnedFd;

use anyhow::{bail, Context as _, Result};
use nix::fcntl::{openat, Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::errors::Invalid;
use crate::manifest::{Manifest, STATE_DIR_NAME};
use crate::rootfs::{Owner, Root};

/// The state directory, relative to the root.
pub fn state_dir() -> String {
    format!("etc/{STATE_DIR_NAME}")
}

const APPLIED: &str = "applied.json";
const JOURNAL: &str = "journal.json";
const STATE_VERSION: u32 = 1;

/// A generation as recorded in the state: where it was and its manifest, verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The generation directory as the root sees it.
    pub generation: String,
    /// The manifest text, exactly as read from the generation.
    pub manifest_text: String,
}

impl Recorded {
    /// Parses the recorded manifest.
    pub fn manifest(&self, what: &str) -> Result<Manifest> {
        Manifest::from_json(&self.manifest_text, what)
    }

    fn to_json(&self) -> String {
        format!(
            "{{\"generation\":{},\"manifest\":{}}}",
            serde_json::Value::String(self.generation.clone()),
            self.manifest_text.trim_end()
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecorded<'a> {
    generation: String,
    #[serde(borrow)]
    manifest: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplied<'a> {
    version: u32,
    generation: String,
    #[serde(borrow)]
    manifest: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJournal<'a> {
    version: u32,
    #[serde(borrow)]
    pending: Vec<RawRecorded<'a>>,
}

/// The exclusive lock; released when dropped.
pub struct Lock {
    _flock: Flock<OwnedFd>,
}

/// Takes the lock, creating the state directory if needed. Fails at once if another etcflip
/// holds it.
pub fn lock(root: &mut Root) -> Result<Lock> {
    let dir = state_dir();
    root.make_dirs(&dir)?;
    let shown = root.show(&format!("{dir}/lock"));
    let fd = openat(
        root.dir(&dir)?,
        "lock",
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .with_context(|| format!("cannot open the lock {shown}"))?;
    match Flock::lock(fd, FlockArg::LockExclusiveNonblock) {
        Ok(flock) => {
            sweep(root, &dir)?;
            Ok(Lock { _flock: flock })
        }
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            bail!("another etcflip is working on this root (it holds {shown})")
        }
        Err((_, e)) => bail!("cannot lock {shown}: {e}"),
    }
}

/// Removes what a killed run may have left in the state directory (temporary files,
/// transient snippets). Safe: we hold the lock, and nothing else writes there.
fn sweep(root: &mut Root, dir: &str) -> Result<()> {
    for name in root.list(dir)? {
        if !matches!(name.as_str(), "lock" | APPLIED | JOURNAL) {
            root.remove_tree(&crate::rootfs::join(dir, &name))?;
        }
    }
    Ok(())
}

/// Reads `applied.json`, if any.
pub fn read_applied(root: &mut Root) -> Result<Option<Recorded>> {
    let rel = format!("{}/{APPLIED}", state_dir());
    let Some(text) = read_optional(root, &rel)? else {
        return Ok(None);
    };
    let raw: RawApplied = serde_json::from_str(&text).map_err(|e| corrupt(root, &rel, &e))?;
    if raw.version != STATE_VERSION {
        return Err(corrupt(root, &rel, &format!("version {}", raw.version)));
    }
    Ok(Some(Recorded {
        generation: raw.generation,
        manifest_text: raw.manifest.get().to_owned(),
    }))
}

/// Records the applied generation (the commit of a switch).
pub fn write_applied(root: &mut Root, rec: &Recorded) -> Result<()> {
    let body = rec.to_json();
    let text = format!("{{\"version\":{STATE_VERSION},{}\n", &body[1..]);
    atomic_write(root, &format!("{}/{APPLIED}", state_dir()), text.as_bytes())
}

/// Reads the journal of interrupted switches (empty if none).
pub fn read_journal(root: &mut Root) -> Result<Vec<Recorded>> {
    let rel = format!("{}/{JOURNAL}", state_dir());
    let Some(text) = read_optional(root, &rel)? else {
        return Ok(Vec::new());
    };
    let raw: RawJournal = serde_json::from_str(&text).map_err(|e| corrupt(root, &rel, &e))?;
    if raw.version != STATE_VERSION {
        return Err(corrupt(root, &rel, &format!("version {}", raw.version)));
    }
    Ok(raw
        .pending
        .into_iter()
        .map(|r| Recorded {
            generation: r.generation,
            manifest_text: r.manifest.get().to_owned(),
        })
        .collect())
}

/// Writes the journal.
pub fn write_journal(root: &mut Root, pending: &[Recorded]) -> Result<()> {
    let items: Vec<String> = pending.iter().map(Recorded::to_json).collect();
    let text = format!(
        "{{\"version\":{STATE_VERSION},\"pending\":[{}]}}\n",
        items.join(",")
    );
    atomic_write(root, &format!("{}/{JOURNAL}", state_dir()), text.as_bytes())
}

/// Drops the journal after a commit.
pub fn drop_journal(root: &mut Root) -> Result<()> {
    let dir = state_dir();
    root.unlink(&format!("{dir}/{JOURNAL}"))?;
    root.sync_dir(&dir)
}

fn corrupt(root: &Root, rel: &str, e: &dyn std::fmt::Display) -> anyhow::Error {
    Invalid::one(format!(
        "the state file {} is not one etcflip wrote ({e}); move it aside to start afresh",
        root.show(rel)
    ))
    .into()
}

fn read_optional(root: &mut Root, rel: &str) -> Result<Option<String>> {
    match root.node_with(rel, false)? {
        crate::rootfs::Node::Absent => Ok(None),
        crate::rootfs::Node::File(_) => {
            let bytes = root.read(rel)?;
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| corrupt(root, rel, &"not UTF-8"))
        }
        other => bail!(
            "{} should be a regular file, found {other:?}",
            root.show(rel)
        ),
    }
}

/// Replaces `rel` atomically with `bytes` (mode 0644): a unique temp file in the same
/// directory, written and fsynced, renamed over `rel`, then the directory fsynced.
///
/// # Atomicity
/// A reader (or a crash) sees the old content or the new, never a partial file.
pub fn atomic_write(root: &mut Root, rel: &str, bytes: &[u8]) -> Result<()> {
    let (parent, name) = crate::rootfs::split(rel);
    let owner = Owner {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    };
    for attempt in 0..100u32 {
        let tmp = crate::rootfs::join(
            parent,
            &format!(".{name}.etcflip-tmp-{}-{attempt}", std::process::id()),
        );
        match root.write_new(&tmp, bytes, 0o644, owner) {
            Ok(()) => {
                root.rename(&tmp, rel)?;
                return Ok(());
            }
            Err(e) if e.downcast_ref::<nix::errno::Errno>() == Some(&nix::errno::Errno::EEXIST) => {
            }
            Err(e) => return Err(e),
        }
    }
    bail!(
        "cannot find a free temporary name beside {}",
        root.show(rel)
    )
}
