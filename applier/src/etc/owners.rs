//! Owners of copies: names resolved to numbers against the target generation's own
//! `passwd`/`group` when it ships them, else the root's (never the host's NSS, like
//! `systemd-tmpfiles --root`).
//!
//! A name that resolves nowhere never stops a switch (boot-safe, as `setup-etc.pl`): that
//! part of the owner falls back to 0 (root), so the copy is never wider than declared; the
//! entry and the name are reported, and the next switch where the name resolves (a re-switch
//! to the same generation included: copies with named owners are always looked at) gives the
//! copy its owner. First boots, nixos-install and users made later by userborn,
//! systemd-sysusers or a service hit this.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::fs::Root;
use crate::manifest::{Entry, Kind, Manifest};
use crate::users::names::{lookup, tables_for, Tables};

/// Numeric owners of copies, with the names that did not resolve.
#[derive(Debug, Default)]
pub(crate) struct Owners {
    /// Target → (uid, gid) to install; an unresolved part is 0.
    pub ids: BTreeMap<String, (u32, u32)>,
    /// Copies whose owner or group name resolves nowhere, sorted by path.
    pub unresolved: Vec<Unresolved>,
}

/// A copy whose owner names did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    /// The path in the root's namespace.
    pub path: String,
    /// The user name that is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The group name that is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names = Vec::new();
        if let Some(u) = &self.user {
            names.push(format!("user {u:?}"));
        }
        if let Some(g) = &self.group {
            names.push(format!("group {g:?}"));
        }
        write!(
            f,
            "{}: {} not in passwd/group yet; installed with id 0 in its place for now, \
             given its owner by the next switch where the name resolves",
            self.path,
            names.join(" and ")
        )
    }
}

/// Resolves the owners of `new`'s copies against `tables`.
pub(crate) fn resolve(root: &mut Root, new: &Manifest, tables: Tables) -> Result<Owners> {
    let copies: Vec<&Entry> = new
        .entries
        .iter()
        .filter(|e| e.kind == Kind::Copy)
        .collect();
    let ids = copies.iter().flat_map(|e| e.uid.iter().chain(&e.gid));
    let (users, groups) = tables_for(root, new, tables, ids)?;
    let mut out = Owners::default();
    for e in copies {
        let (uid, user) = lookup(e.uid.as_ref(), &users);
        let (gid, group) = lookup(e.gid.as_ref(), &groups);
        if user.is_some() || group.is_some() {
            out.unresolved.push(Unresolved {
                path: format!("/etc/{}", e.target),
                user,
                group,
            });
        }
        out.ids.insert(e.target.to_string(), (uid, gid));
    }
    Ok(out)
}

/// Resolves the owners of an applied generation's copies (`generation`, as the root sees it)
/// as the switch that applied it did: `verify` and `status` see what it saw.
pub(crate) fn resolve_recorded(root: &mut Root, generation: &str, m: &Manifest) -> Result<Owners> {
    let gen_host = generation_on_host(root, generation);
    let tables = Tables {
        planned: None,
        gen_host: Some(&gen_host),
    };
    resolve(root, m, tables)
}

/// Where the host finds a recorded generation (`generation`, as the root sees it): inside
/// the root when it lies there (an image, a test root), else at the same path (the Nix
/// store). `verify` and `status` resolve owners through it exactly as the switch did, from
/// the generation's own `passwd` and `group` when it ships them.
pub(crate) fn generation_on_host(root: &Root, generation: &str) -> std::path::PathBuf {
    let inside = root.host_path().join(generation.trim_start_matches('/'));
    if inside.join("manifest.json").is_file() {
        inside
    } else {
        std::path::PathBuf::from(generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_the_path_and_every_unknown_name() {
        let u = Unresolved {
            path: "/etc/x".into(),
            user: Some("svc".into()),
            group: Some("grp".into()),
        };
        let s = u.to_string();
        assert!(
            s.starts_with("/etc/x: user \"svc\" and group \"grp\" not in"),
            "{s}"
        );
    }
}
