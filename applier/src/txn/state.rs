//! The state directory (`/etc/.etcflip` under the root): the lock, the applied generation and
//! the journal of a switch in progress.
//!
//! - `lock`: an exclusive `flock`, held for the whole switch.
//! - `applied.json`: `{"version":1,"generation":…,"manifest":…}`, the generation the root
//!   matches. The manifest is kept verbatim, so "same generation again" is a byte comparison.
//!   Its `"pending":[…]`, when present, holds what earlier generations made that the last
//!   switch had to leave for a mount point (still ours, until a switch replaces or removes it);
//!   also `"runtime":{…}`, the keyed digests of runtime copies (see `etc/runtime.rs`).
//! - `journal.json`: the same record for the switch's target, plus `"pending":[…]`, the
//!   targets of earlier switches that were interrupted. Written before the first change of a
//!   switch; at the commit it simply becomes `applied.json` by a rename (when nothing older
//!   is pending), so a switch writes its manifest once. Every generation in the journal may
//!   have left paths behind, so every later run counts them as ours (and removes what its own
//!   target does not want): a killed switch leaves no orphan, whatever generation the next
//!   run targets.
//!
//! Every file is replaced atomically: temp file in the same directory, fsync, rename, fsync
//! of the directory.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::errors::Invalid;
use crate::fs::mapped::Mapped;
use crate::fs::Root;
use crate::manifest::{Manifest, Str, STATE_DIR_NAME};

/// The state directory, relative to the root.
pub(crate) fn state_dir() -> String {
    format!("etc/{STATE_DIR_NAME}")
}

pub(super) const APPLIED: &str = "applied.json";
const JOURNAL: &str = "journal.json";
/// Present while the journal's switch counts a legacy NixOS `/etc` as evidence.
const LEGACY_MARK: &str = "legacy";
const STATE_VERSION: u32 = 1;

/// The record whose text up to its manifest's value is `head` (ending `"manifest":`), as
/// [`write_state`] writes one with nothing pending: the head closed with a null manifest
/// parses as the whole record would, without reading the manifest. `None` for another version
/// or a head holding pending records (written after the manifest: not one `write_state`
/// wrote), which is then read whole.
pub(super) fn head_view(head: &[u8]) -> Option<RawView<'static, ()>> {
    let closed = [head, b"null}"].concat();
    let view = serde_json::from_slice::<RawView<()>>(&closed).ok()?;
    (view.version == STATE_VERSION && view.pending.is_empty()).then(|| RawView {
        version: view.version,
        generation: view.generation,
        runtime: view.runtime,
        manifest: (),
        pending: Vec::new(),
    })
}

/// A generation as recorded in the state: where it was and its manifest, verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recorded<'a> {
    /// The generation directory as the root sees it.
    pub generation: String,
    /// The manifest text, exactly as read from the generation.
    pub manifest_text: Str<'a>,
    /// sha256 of what the switch installs (or installed) at each runtime copy, whose manifest
    /// entry has no hash (see `etc/runtime.rs`).
    pub runtime: BTreeMap<String, String>,
}

impl Recorded<'_> {
    /// Parses the recorded manifest.
    pub(crate) fn manifest(&self, what: &str) -> Result<Manifest<'_>> {
        Manifest::from_trusted_json(&self.manifest_text, what)
    }

    /// `"generation":…,["runtime":{…},]"manifest":` (the manifest text itself follows).
    fn head(&self) -> String {
        let runtime = if self.runtime.is_empty() {
            String::new()
        } else {
            format!(
                "\"runtime\":{},",
                serde_json::to_string(&self.runtime).unwrap_or_default()
            )
        };
        format!(
            "\"generation\":{},{runtime}\"manifest\":",
            serde_json::Value::String(self.generation.clone())
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecorded<'a> {
    generation: String,
    #[serde(default)]
    runtime: BTreeMap<String, String>,
    #[serde(borrow)]
    manifest: &'a RawValue,
}

impl RawRecorded<'_> {
    fn owned(&self) -> Recorded<'static> {
        Recorded {
            generation: self.generation.clone(),
            manifest_text: self.manifest.get().to_owned().into(),
            runtime: self.runtime.clone(),
        }
    }
}

/// Removes what a killed run may have left in the state directory (temporary files,
/// transient snippets): everything but the state's own files and the domains' (`keep`). Safe:
/// we hold the lock, and nothing else writes there.
pub(crate) fn sweep(root: &mut Root, keep: &[&str]) -> Result<()> {
    let dir = state_dir();
    for name in root.list(&dir)? {
        let own = matches!(name.as_str(), "lock" | APPLIED | JOURNAL | LEGACY_MARK);
        if !own && !keep.contains(&name.as_str()) {
            root.remove_tree(&crate::fs::join(&dir, &name))?;
        }
    }
    Ok(())
}

/// Reads one state file: its record and the older pending ones.
fn read_state(
    root: &mut Root,
    name: &str,
) -> Result<Option<(Recorded<'static>, Vec<Recorded<'static>>)>> {
    let rel = format!("{}/{name}", state_dir());
    let Some(file) = read_optional(root, &rel)? else {
        return Ok(None);
    };
    let view = StateView::parse(root, &rel, &file)?;
    let rec = Recorded {
        generation: view.generation,
        manifest_text: view.manifest.to_owned().into(),
        runtime: view.runtime,
    };
    Ok(Some((
        rec,
        view.pending.iter().map(RawRecorded::owned).collect(),
    )))
}

fn write_state(root: &mut Root, name: &str, rec: &Recorded, older: &[Recorded]) -> Result<()> {
    // The manifests are written as they are, in parts: no 2 MB copy per switch.
    let heads: Vec<String> = std::iter::once(rec)
        .chain(older)
        .map(Recorded::head)
        .collect();
    let version = format!("{{\"version\":{STATE_VERSION},");
    let mut parts: Vec<&[u8]> = Vec::with_capacity(4 * heads.len() + 4);
    parts.push(version.as_bytes());
    parts.push(heads[0].as_bytes());
    parts.push(rec.manifest_text.trim_end().as_bytes());
    if !older.is_empty() {
        parts.push(b",\"pending\":[");
        for (i, r) in older.iter().enumerate() {
            parts.push(if i == 0 { b"{" } else { b",{" });
            parts.push(heads[i + 1].as_bytes());
            parts.push(r.manifest_text.trim_end().as_bytes());
            parts.push(b"}");
        }
        parts.push(b"]");
    }
    parts.push(b"}\n");
    root.atomic_write_parts(&format!("{}/{name}", state_dir()), &parts)
}

/// A state file as read (the one format of `applied.json` and `journal.json`), borrowing from
/// its mapped text. The manifest is kept as text: a re-switch compares it by bytes with the
/// generation's, and parses it ([`StateView::manifest`]) only when they differ.
#[derive(Debug)]
pub(crate) struct StateView<'a> {
    /// The generation as the root saw it.
    pub generation: String,
    /// Hashes of the runtime copies installed (see [`Recorded::runtime`]).
    pub runtime: BTreeMap<String, String>,
    manifest: &'a str,
    pending: Vec<RawRecorded<'a>>,
}

/// A state file's format; `M`: its manifest (its text, or `()` for a head closed with `null`,
/// see [`StateView::parse_applied_against`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawView<'a, M> {
    version: u32,
    pub(super) generation: String,
    #[serde(default)]
    pub(super) runtime: BTreeMap<String, String>,
    manifest: M,
    #[serde(default, borrow)]
    pending: Vec<RawRecorded<'a>>,
}

/// `applied.json`, mapped, if any (parse it with [`StateView::parse_applied`]).
pub(crate) fn read_applied_text(root: &mut Root) -> Result<Option<Mapped>> {
    read_optional(root, &format!("{}/{APPLIED}", state_dir()))
}

impl<'a> StateView<'a> {
    /// Parses a state file (`rel` names it in errors).
    fn parse(root: &Root, rel: &str, file: &'a Mapped) -> Result<StateView<'a>> {
        let text = file
            .text()
            .ok_or_else(|| corrupt(root, rel, &"not UTF-8"))?;
        let view: RawView<&RawValue> =
            serde_json::from_str(text).map_err(|e| corrupt(root, rel, &e))?;
        if view.version != STATE_VERSION {
            return Err(corrupt(root, rel, &format!("version {}", view.version)));
        }
        Ok(StateView {
            generation: view.generation,
            runtime: view.runtime,
            manifest: view.manifest.get(),
            pending: view.pending,
        })
    }

    /// Parses the file [`read_applied_text`] returned.
    pub(crate) fn parse_applied(root: &Root, file: &'a Mapped) -> Result<StateView<'a>> {
        Self::parse(root, &format!("{}/{APPLIED}", state_dir()), file)
    }

    /// Like [`StateView::parse_applied`], and whether its manifest is `manifest` (trimmed).
    /// When the file ends with that manifest as [`write_state`] ends a record with nothing
    /// pending, only the head before it is parsed: a re-switch need not scan a large manifest
    /// it already compared byte for byte.
    pub(crate) fn parse_applied_against(
        root: &Root,
        file: &'a Mapped,
        manifest: &str,
    ) -> Result<(StateView<'a>, bool)> {
        let manifest = manifest.trim_end();
        let text = file.text().unwrap_or_default();
        let head = (text.strip_suffix("}\n"))
            .and_then(|t| t.strip_suffix(manifest))
            .filter(|h| h.ends_with("\"manifest\":"));
        if let Some(view) = head.and_then(|h| head_view(h.as_bytes())) {
            let at = text.len() - "}\n".len() - manifest.len();
            let view = StateView {
                generation: view.generation,
                runtime: view.runtime,
                manifest: &text[at..at + manifest.len()],
                pending: Vec::new(),
            };
            return Ok((view, true));
        }
        let view = Self::parse_applied(root, file)?;
        let same = view.manifest == manifest;
        Ok((view, same))
    }

    /// In `applied.json`: what earlier generations made that the last switch left only for a
    /// mount point (still ours; see [`commit`]).
    pub(crate) fn held(&self) -> Vec<Recorded<'static>> {
        self.pending.iter().map(RawRecorded::owned).collect()
    }

    /// The recorded manifest, parsed (it was validated when it was recorded).
    pub(crate) fn manifest(&self) -> Result<Manifest<'a>> {
        Manifest::from_trusted_json(self.manifest, "the applied generation's manifest")
    }
}

/// Reads the journal: every generation a switch was started to and not committed, oldest
/// first (empty if none).
pub(crate) fn read_journal(root: &mut Root) -> Result<Vec<Recorded<'static>>> {
    Ok(match read_state(root, JOURNAL)? {
        Some((rec, mut older)) => {
            older.push(rec);
            older
        }
        None => Vec::new(),
    })
}

/// Records whether the switch about to be journaled counts a legacy NixOS `/etc` as evidence
/// (a migration, or a return after a rollback), so that a rerun after an interruption does
/// too: by then the overlay no longer tells. Written before the journal, dropped after the
/// commit; a stale mark is harmless (it only counts while a journal exists) and reset by the
/// next switch's journal.
fn mark_legacy(root: &mut Root, legacy: bool) -> Result<()> {
    let rel = format!("{}/{LEGACY_MARK}", state_dir());
    match (
        legacy,
        root.node_with(&rel, false)? == crate::fs::Node::Absent,
    ) {
        (true, true) => root.atomic_write(&rel, b""),
        (false, false) => {
            root.unlink(&rel)?;
            root.sync_dir(&state_dir())
        }
        _ => Ok(()),
    }
}

/// Whether [`mark_legacy`] marked the journal's switch.
pub(crate) fn legacy_marked(root: &mut Root) -> Result<bool> {
    let rel = format!("{}/{LEGACY_MARK}", state_dir());
    Ok(root.node_with(&rel, false)? != crate::fs::Node::Absent)
}

/// Writes the journal of a switch to `target`, keeping `older` interrupted targets; `legacy`:
/// the switch counts a legacy NixOS `/etc` as evidence (see [`legacy_marked`]).
pub(crate) fn write_journal(
    root: &mut Root,
    target: &Recorded,
    older: &[Recorded],
    legacy: bool,
) -> Result<()> {
    mark_legacy(root, legacy)?;
    write_state(root, JOURNAL, target, older)
}

/// The commit: the journal's target becomes the applied generation, keeping `held` (what
/// earlier generations made that the switch had to leave for a mount point: still ours). The
/// journal was written with `interrupted` and `held` as its older records; when nothing was
/// interrupted it already has the applied format, and a rename is the whole commit.
pub(crate) fn commit(
    root: &mut Root,
    target: &Recorded,
    interrupted: &[Recorded],
    held: &[Recorded],
) -> Result<()> {
    let dir = state_dir();
    if interrupted.is_empty() {
        root.rename(&format!("{dir}/{JOURNAL}"), &format!("{dir}/{APPLIED}"))?;
    } else {
        write_state(root, APPLIED, target, held)?;
        root.unlink(&format!("{dir}/{JOURNAL}"))?;
        root.sync_dir(&dir)?;
    }
    mark_legacy(root, false)
}

fn corrupt(root: &Root, rel: &str, e: &dyn std::fmt::Display) -> anyhow::Error {
    Invalid::one(format!(
        "the state file {} is not one etcflip wrote ({e}); move it aside to start afresh",
        root.show(rel)
    ))
    .into()
}

fn read_optional(root: &mut Root, rel: &str) -> Result<Option<Mapped>> {
    match root.node_with(rel, false)? {
        crate::fs::Node::Absent => Ok(None),
        crate::fs::Node::File(_) => {
            let fd = root.open_file(rel)?;
            // SAFETY: state files are never modified in place: they are replaced by rename,
            // and only by a switch holding the lock (the caller holds it, or is a read-only
            // command that accepts seeing the old or the new file).
            #[allow(unsafe_code)]
            let mapped = unsafe { Mapped::of(&fd, &root.show(rel)) }?;
            Ok(Some(mapped))
        }
        other => bail!(
            "{} should be a regular file, found {other:?}",
            root.show(rel)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_ending_with_the_manifest_is_read_by_its_head_alone() {
        let root = Root::open(std::path::Path::new("/")).unwrap();
        let m = r#"{"version":1,"overlay":"/etc/static","entries":[]}"#;
        let other = r#"{"version":1,"overlay":"/etc/other","entries":[]}"#;
        let rec = |manifest: &str| {
            format!(r#""generation":"/g","runtime":{{"a":"b"}},"manifest":{manifest}"#)
        };
        // (state file, manifest compared, same, what a full parse says of the manifest)
        let cases = [
            (format!("{{\"version\":1,{}}}\n", rec(m)), m, true),
            (format!("{{\"version\":1,{}}}\n", rec(m)), other, false),
            (
                format!(
                    "{{\"version\":1,{},\"pending\":[{{{}}}]}}\n",
                    rec(m),
                    rec(other)
                ),
                m,
                true,
            ),
            (
                format!(
                    "{{\"version\":1,{},\"pending\":[{{{}}}]}}\n",
                    rec(other),
                    rec(m)
                ),
                m,
                false,
            ),
            // Written by hand: spaces, no trailing newline.
            (format!("{{ \"version\": 1, {} }}", rec(m)), m, true),
        ];
        for (text, manifest, same) in cases {
            let file = crate::fs::mapped::map(text.as_bytes());
            let (view, got) = StateView::parse_applied_against(&root, &file, manifest).unwrap();
            let full = StateView::parse_applied(&root, &file).unwrap();
            assert_eq!(got, same, "{text}");
            assert_eq!(
                (&view.generation, &view.runtime, view.manifest, view.held()),
                (&full.generation, &full.runtime, full.manifest, full.held()),
                "{text}"
            );
        }
        // A head that is no record falls back to the full parse, which refuses it.
        let file = crate::fs::mapped::map(format!("{{\"version\":2,{}}}\n", rec(m)).as_bytes());
        assert!(StateView::parse_applied_against(&root, &file, m).is_err());
    }
}
