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

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use etcflip_format::users::Users;

use super::files::Table;
use super::homes::{self, LINGER};
use super::plan::FileRead;
use super::{ledger, FILES};
use crate::fs::{Node, Owner, Root};
use crate::txn::state::state_dir;

/// The seal's file, in the state directory.
pub(crate) const FILE: &str = "users.json";
const VERSION: u32 = 1;
/// The etcflip that plans, as exactly as it can be told: its version and its executable's
/// path, size and mtime (a Nix store path names one build; a rebuild elsewhere changes the
/// mtime). A seal another etcflip recorded is not trusted: its planner may differ, and the
/// users part was checked against its rules, not this one's. `None` (never trusted) when the
/// executable cannot be looked at.
fn etcflip() -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let exe = std::env::current_exe().ok()?;
    let m = std::fs::metadata(&exe).ok()?;
    let version = env!("CARGO_PKG_VERSION");
    Some(format!(
        "{version} {} {} {}",
        exe.display(),
        m.len(),
        m.mtime()
    ))
}

/// The recorded seal.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Seal {
    version: u32,
    /// The etcflip that recorded it.
    etcflip: String,
    /// The declared homes, relative to the root.
    homes: Vec<String>,
    /// The declared password files, as declared.
    password_files: Vec<String>,
    /// sha256 of what [`observe`] looks at.
    digest: String,
}

/// What the plan phase 3 carried out makes of the root. A seal records the files as the plan
/// made them (not as read back): a change made meanwhile, by a program that ignores
/// `/etc/.pwd.lock`, then fails the next check. Kinds, modes, homes and lingering are
/// recorded as they are, and only when they are what a plan wants (a change to a home made
/// meanwhile is never sealed).
pub(crate) struct Proof<'p> {
    /// The five files as the plan makes them, in `FILES`' order.
    pub(crate) files: [&'p str; 5],
    /// The ledgers after phase 3 (`None`: absent).
    pub(crate) ledgers: &'p ledger::Texts,
    /// The password files as the plan read them.
    pub(crate) password_files: &'p BTreeMap<String, FileRead>,
    /// `passwd` as planned: the homes and lingering a plan wants follow from it.
    pub(crate) passwd: &'p Table,
}

/// What the seal looked at: the user database files and the ledgers in the order of `FILES`
/// then `ledger::FILES`, as read where [`KEPT`] (`None` elsewhere, and where missing or not
/// a regular file).
pub(crate) type Read = Vec<Option<Vec<u8>>>;

/// Seals the root for `decl` if it is what `proof` says (the end of phase 3, under
/// `/etc/.pwd.lock`); otherwise removes any seal, so that the next switch plans.
pub(crate) fn record(root: &mut Root, decl: &Users, proof: &Proof) -> Result<()> {
    // The declared password files are the ones the plan read.
    let password_files = proof.password_files.keys().cloned().collect();
    let Some(etcflip) = etcflip() else {
        return remove(root);
    };
    let mut seal = Seal {
        version: VERSION,
        etcflip,
        homes: homes::wanted_homes(decl),
        password_files,
        digest: String::new(),
    };
    match observe(root, &seal, Some((decl, proof)))? {
        Some((digest, _)) => seal.digest = digest,
        None => return remove(root),
    }
    let text = serde_json::to_string(&seal)?;
    // Not for others to read: the digest covers shadow and the password files.
    let owner = Owner { uid: 0, gid: 0 };
    let rel = format!("{}/{FILE}", state_dir());
    root.atomic_write_as(&rel, &[text.as_bytes()], 0o600, owner)
}

/// Whether the recorded seal holds for the root as it is now, and if so, the files as read.
/// A missing, unreadable or foreign seal does not hold: the users phase is then planned in
/// full, which is always right.
pub(crate) fn holds(root: &mut Root) -> Result<Option<Read>> {
    let rel = format!("{}/{FILE}", state_dir());
    if !matches!(root.node_with(&rel, false)?, Node::File(_)) {
        return Ok(None);
    }
    let text = root.read(&rel)?;
    let Ok(seal) = serde_json::from_slice::<Seal>(&text) else {
        return Ok(None);
    };
    if seal.version != VERSION || Some(&seal.etcflip) != etcflip().as_ref() {
        return Ok(None);
    }
    let seen = observe(root, &seal, None)?;
    Ok(seen.and_then(|(digest, read)| (digest == seal.digest).then_some(read)))
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
/// files it read; with a proof, `None` unless all of it is what the proof says.
fn observe(
    root: &mut Root,
    seal: &Seal,
    proof: Option<(&Users, &Proof)>,
) -> Result<Option<(String, Read)>> {
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
        let seen = if let Some((_, p)) = proof {
            // Recorded as the plan made it: a root that differs later fails the check.
            let Some(seen) = expected(root, rel, &wanted(p, i))? else {
                return Ok(None);
            };
            seen
        } else {
            let (seen, content) = file(root, rel, KEPT.contains(&i))?;
            read.push(content);
            seen
        };
        line(rel, &seen);
    }
    let mut homes = Vec::with_capacity(seal.homes.len());
    for rel in &seal.homes {
        let node = root.node_with(rel, false)?;
        line(rel, &describe(&node, ""));
        homes.push((rel.clone(), node));
    }
    for path in &seal.password_files {
        let got = super::read_password_file(root, path);
        if let Some((_, p)) = proof {
            if p.password_files.get(path) != Some(&got) {
                return Ok(None);
            }
        }
        let seen = match got {
            Ok(Some(bytes)) => format!("file {}", crate::fs::sha256_bytes(&bytes)),
            Ok(None) => "absent".to_owned(),
            Err(e) => format!("unreadable: {e}"),
        };
        line(path, &seen);
    }
    let lingering = homes::lingering(root)?;
    let names = lingering.as_ref().map(|n| n.join("/"));
    line(LINGER, &format!("names {names:?}"));
    if let Some((decl, p)) = proof {
        // Nothing to do and nothing to report: a re-plan would find the homes as they are.
        let planned = (p.passwd, p.passwd);
        if !homes::actions(decl, planned, (&homes, lingering.as_deref())).is_empty() {
            return Ok(None);
        }
    }
    Ok(Some((etcflip_format::hash::hex(&h.finalize()), read)))
}

/// Which of the files [`observe`] reads a switch reports (`passwd`, `group`, `uid-map` and
/// `gid-map`): the others are only hashed.
const KEPT: [usize; 4] = [0, 1, FILES.len(), FILES.len() + 1];

/// What a proof wants of file `i` (of `FILES` then the ledgers).
enum Want<'p> {
    /// A database file: this text (missing reads as empty); `shadow` closed to others.
    Text(&'p str, bool),
    /// A ledger: this text, or missing.
    Ledger(Option<&'p str>),
}

fn wanted<'p>(p: &'p Proof, i: usize) -> Want<'p> {
    match p.files.get(i) {
        Some(text) => Want::Text(text, FILES[i] == "etc/shadow"),
        None => Want::Ledger(p.ledgers.get(i - FILES.len()).and_then(Option::as_deref)),
    }
}

/// The digest line of `rel` holding what `want` says, its kind and mode as they are; `None`
/// when they are not what the plan made (a regular file that is no mount point, `shadow`
/// closed to others; missing only where that reads the same).
fn expected(root: &mut Root, rel: &str, want: &Want) -> Result<Option<String>> {
    let node = root.node_with(rel, false)?;
    let text = match (&node, want) {
        (Node::Absent, Want::Text("", _) | Want::Ledger(None)) => {
            return Ok(Some(describe(&node, "")))
        }
        (Node::File(f), Want::Text(text, shadow)) if !(*shadow && f.meta.mode & 0o027 != 0) => {
            *text
        }
        (Node::File(_), Want::Ledger(Some(text))) => *text,
        _ => return Ok(None),
    };
    let mount = matches!(&node, Node::File(f) if f.meta.mount);
    let sha = crate::fs::sha256_bytes(text.as_bytes());
    Ok((!mount).then(|| describe(&node, &sha)))
}

/// A file of the user database or a ledger, as the digest records it, and its content if it
/// is to be `kept` and a regular file (otherwise it is only hashed, as it streams by).
fn file(root: &mut Root, rel: &str, kept: bool) -> Result<(String, Option<Vec<u8>>)> {
    let (node, content) = if kept {
        let node = root.node_with(rel, false)?;
        let content = match node {
            Node::File(_) => Some(root.read(rel)?),
            _ => None,
        };
        (node, content)
    } else {
        (root.node(rel)?, None)
    };
    let sha = match (&node, &content) {
        (_, Some(bytes)) => crate::fs::sha256_bytes(bytes),
        (Node::File(f), None) => f.sha256.clone(),
        _ => String::new(),
    };
    Ok((describe(&node, &sha), content))
}

/// What is at a path, as the digest records it (`sha256`: a regular file's content's).
fn describe(node: &Node, sha256: &str) -> String {
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
