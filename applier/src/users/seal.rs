//! The seal: proof that the user database is still exactly as the last switch to the applied
//! generation left it, so that a re-switch of that generation (every boot, every deploy that
//! does not change it) neither parses the declared users nor plans them.
//!
//! Phase 3 ends by recording, in the state directory's `users.json`, a sha256 of everything
//! the users plan reads from the root (`read_inputs`, `looks_the_same` and `unwritable` in
//! `mod.rs`): the five files and the five ledgers (kind, mode, owner, whether a mount point,
//! content), the declared password files (content), the declared homes (kind, mode, owner)
//! and the linger directory (its names). The plan is a function of these and of the
//! declaration, and a plan of its own result changes nothing; so while the digest holds, the
//! users phase of that generation has nothing to do. Contents are hashed, not stat'ed: a
//! change within a timestamp tick cannot hide. Which homes and password files to look at is
//! recorded with the digest, so checking it needs no declaration.
//!
//! Like `stamps.json`, the seal belongs to `applied.json`: it is used only when the
//! generation is the applied one byte for byte and no journal is pending (a switch that wrote
//! it and did not commit left its journal). A switch to a generation without users removes
//! it, and an etcflip that does not know the file sweeps it away with the state directory's
//! leftovers.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use etcflip_format::users::Users;

use super::homes::LINGER;
use super::{ledger, FILES};
use crate::fs::{Node, Root};
use crate::txn::state::state_dir;

/// The seal's file, in the state directory.
pub(crate) const FILE: &str = "users.json";
const VERSION: u32 = 1;

/// The recorded seal.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Seal {
    version: u32,
    /// The declared homes, relative to the root.
    homes: Vec<String>,
    /// The declared password files, as declared.
    password_files: Vec<String>,
    /// sha256 of what [`digest`] looks at.
    digest: String,
}

/// Seals the root as it is now for `decl` (the end of phase 3, under `/etc/.pwd.lock`).
pub(crate) fn record(root: &mut Root, decl: &Users) -> Result<()> {
    let homes = (decl.users.iter())
        .filter(|u| u.create_home)
        .map(|u| u.home.trim_start_matches('/').to_owned())
        .collect();
    let password_files = (decl.users.iter())
        .filter_map(|u| u.hashed_password_file.as_ref())
        .map(ToString::to_string)
        .collect();
    let mut seal = Seal {
        version: VERSION,
        homes,
        password_files,
        digest: String::new(),
    };
    seal.digest = digest(root, &seal)?.0;
    let text = serde_json::to_string(&seal)?;
    root.atomic_write(&format!("{}/{FILE}", state_dir()), text.as_bytes())
}

/// What the seal looked at: the user database files and the ledgers in the order of `FILES`
/// then `ledger::FILES`, as read where [`KEPT`] (`None` elsewhere, and where missing or not
/// a regular file).
pub(crate) type Read = Vec<Option<Vec<u8>>>;

/// Whether the recorded seal holds for the root as it is now, and if so, the files as read.
/// A missing or unreadable seal does not hold: the users phase is then planned in full,
/// which is always right.
pub(crate) fn holds(root: &mut Root) -> Result<Option<Read>> {
    let rel = format!("{}/{FILE}", state_dir());
    if !matches!(root.node_with(&rel, false)?, Node::File(_)) {
        return Ok(None);
    }
    let text = root.read(&rel)?;
    let Ok(seal) = serde_json::from_slice::<Seal>(&text) else {
        return Ok(None);
    };
    if seal.version != VERSION {
        return Ok(None);
    }
    let (digest, read) = digest(root, &seal)?;
    Ok((digest == seal.digest).then_some(read))
}

/// Removes the seal, if any (a switch to a generation without users).
pub(crate) fn remove(root: &mut Root) -> Result<()> {
    let rel = format!("{}/{FILE}", state_dir());
    if root.node_with(&rel, false)? == Node::Absent {
        return Ok(());
    }
    root.unlink(&rel)?;
    root.sync_dir(&state_dir())
}

/// The digest of what the users plan reads from the root (see the module comment), and the
/// files it read.
fn digest(root: &mut Root, seal: &Seal) -> Result<(String, Read)> {
    let mut h = Sha256::new();
    let mut line = |what: &str, seen: &str| {
        h.update(what.as_bytes());
        h.update(b"\0");
        h.update(seen.as_bytes());
        h.update(b"\n");
    };
    let ledgers = ledger::FILES.map(|f| format!("{}/{f}", ledger::DIR));
    let mut read = Vec::with_capacity(FILES.len() + ledgers.len());
    let all = FILES
        .iter()
        .copied()
        .chain(ledgers.iter().map(String::as_str));
    for (i, rel) in all.enumerate() {
        let (seen, content) = file(root, rel, KEPT.contains(&i))?;
        line(rel, &seen);
        read.push(content);
    }
    for rel in &seal.homes {
        line(rel, &seen(&root.node_with(rel, false)?, ""));
    }
    for path in &seal.password_files {
        let read = match root.read_in_root(path.trim_start_matches('/')) {
            Ok(Some(bytes)) => format!("file {}", crate::fs::sha256_bytes(&bytes)),
            Ok(None) => "absent".to_owned(),
            Err(e) => format!("unreadable: {e:#}"),
        };
        line(path, &read);
    }
    let linger = match root.node_with(LINGER, false)? {
        Node::Dir(_) => {
            let mut names = root.list(LINGER)?;
            names.sort_unstable();
            format!("names {}", names.join("/"))
        }
        other => seen(&other, ""),
    };
    line(LINGER, &linger);
    Ok((etcflip_format::hash::hex(&h.finalize()), read))
}

/// Which of the files [`digest`] reads a switch reports (`passwd`, `group`, `uid-map` and
/// `gid-map`): the others are only hashed, as they stream by.
const KEPT: [usize; 4] = [0, 1, FILES.len(), FILES.len() + 1];

/// A file of the user database or a ledger: what the digest records of it, and its content
/// if it is to be `kept` and a regular file.
fn file(root: &mut Root, rel: &str, kept: bool) -> Result<(String, Option<Vec<u8>>)> {
    if !kept {
        let node = root.node(rel)?;
        let sha = match &node {
            Node::File(f) => f.sha256.clone(),
            _ => String::new(),
        };
        return Ok((seen(&node, &sha), None));
    }
    let node = root.node_with(rel, false)?;
    if !matches!(node, Node::File(_)) {
        return Ok((seen(&node, ""), None));
    }
    let content = root.read(rel)?;
    let sha = crate::fs::sha256_bytes(&content);
    Ok((seen(&node, &sha), Some(content)))
}

/// What is at a path, as the digest records it (`sha256`: a regular file's content's).
fn seen(node: &Node, sha256: &str) -> String {
    match node {
        Node::Absent => "absent".to_owned(),
        Node::Link(text) => format!("link {text}"),
        Node::File(f) => {
            let m = f.meta;
            format!(
                "file {:o} {}:{} mount={} {sha256}",
                m.mode, m.uid, m.gid, m.mount
            )
        }
        Node::Dir(m) => format!("dir {:o} {}:{} mount={}", m.mode, m.uid, m.gid, m.mount),
        Node::Other(mount) => format!("other mount={mount}"),
        Node::Blocked(at) => format!("blocked at {at}"),
    }
}
