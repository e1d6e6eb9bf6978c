//! Homes and lingering, as NixOS does them at every activation: a user with `createHome` gets
//! its home made (parents 0755), owned by it and given `homeMode` (the top directory only,
//! never recursively). `linger = true` makes `/var/lib/systemd/linger/<name>`, `false`
//! removes it, no value leaves it alone; with `mutableUsers` that holds only when the user is
//! made (then lingering is the user's, `loginctl`), as NixOS's rule has it; a removed user
//! stops lingering. Everything is under the root; nothing follows a link.

use anyhow::Result;

use etcflip_format::users::Users;

use super::files::{id_of, Table};
use crate::fs::{Node, Owner, Root};

/// Where logind keeps lingering users, relative to the root.
pub(super) const LINGER: &str = "var/lib/systemd/linger";

/// One thing to do outside the user database files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Make (or fix) a home: path relative to the root, owner, mode.
    Home(String, Owner, u32),
    /// Make (`true`) or remove (`false`) a user's linger file.
    Linger(String, bool),
    /// A home that is not made: a link is in the way (etcflip follows none).
    Unreachable(String),
}

impl Action {
    /// Whether the switch has something to do for it.
    pub(crate) fn acts(&self) -> bool {
        !matches!(self, Action::Unreachable(_))
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Home(rel, o, mode) => {
                write!(
                    f,
                    "make the home /{rel} ({}:{}, mode {mode:04o})",
                    o.uid, o.gid
                )
            }
            Action::Linger(name, true) => write!(f, "let user {name} linger"),
            Action::Linger(name, false) => write!(f, "stop user {name} lingering"),
            Action::Unreachable(rel) => write!(
                f,
                "leave the home /{rel} alone: a link is on its path (etcflip follows none)"
            ),
        }
    }
}

/// What is not yet as `decl` wants it, for the users in `passwd` (the planned file);
/// `before`: the `passwd` on the root.
pub(crate) fn look(
    root: &mut Root,
    decl: &Users,
    (passwd, before): (&Table, &Table),
) -> Result<Vec<Action>> {
    let lingering = lingering(root)?;
    let mut homes = Vec::new();
    for rel in wanted_homes(decl) {
        let node = root.node_with(&rel, false)?;
        homes.push((rel, node));
    }
    Ok(actions(
        decl,
        (passwd, before),
        (&homes, lingering.as_deref()),
    ))
}

/// The names in the linger directory, sorted (none when it is missing); `None` when it is
/// not a real directory (a link, as on an impermanent root): etcflip follows no link, so it
/// leaves lingering alone there.
pub(crate) fn lingering(root: &mut Root) -> Result<Option<Vec<String>>> {
    Ok(match root.node_with(LINGER, false)? {
        Node::Dir(_) => Some(root.list(LINGER)?),
        Node::Absent => Some(Vec::new()),
        _ => None,
    })
}

/// The homes `decl` makes, relative to the root.
pub(crate) fn wanted_homes(decl: &Users) -> Vec<String> {
    (decl.users.iter())
        .filter(|u| u.create_home)
        .map(|u| u.home.trim_start_matches('/').to_owned())
        .collect()
}

/// What is not yet as `decl` wants it, for the users in `passwd` (the planned file) and
/// `before` (the one on the root), given what is at each of [`wanted_homes`] (`homes`) and
/// the names in the linger directory ([`lingering`]).
pub(crate) fn actions(
    decl: &Users,
    (passwd, before): (&Table, &Table),
    (homes, lingering): (&[(String, Node)], Option<&[String]>),
) -> Vec<Action> {
    let mut out = Vec::new();
    // A user the plan removes stops lingering (the linger files are few; the users many).
    for name in lingering.unwrap_or_default() {
        if before.get(name).is_some() && passwd.get(name).is_none() {
            out.push(Action::Linger(name.clone(), false));
        }
    }
    // `homes` lists the homes in the order of `wanted_homes`: walked along, not searched (a
    // search per user was quadratic in the number of homes).
    let mut listed = homes.iter();
    for u in &decl.users {
        let node = if u.create_home {
            let rel = u.home.trim_start_matches('/');
            let next = listed.next().filter(|(r, _)| r == rel);
            next.or_else(|| homes.iter().find(|(r, _)| r == rel))
                .map(|(_, n)| n)
        } else {
            None
        };
        if !u.create_home && u.linger.is_none() {
            continue;
        }
        let Some(entry) = passwd.get(&u.name) else {
            continue;
        };
        let owner = Owner {
            uid: id_of(entry, 2).unwrap_or(0),
            gid: id_of(entry, 3).unwrap_or(0),
        };
        if u.create_home {
            let rel = u.home.trim_start_matches('/');
            let mode = u32::from_str_radix(&u.home_mode, 8).unwrap_or(0o700);
            match node {
                Some(Node::Dir(m))
                    if m.mode == mode && (m.uid, m.gid) == (owner.uid, owner.gid) => {}
                Some(Node::Dir(_) | Node::Absent) | None => {
                    out.push(Action::Home(rel.to_owned(), owner, mode));
                }
                Some(_) => out.push(Action::Unreachable(rel.to_owned())),
            }
        }
        // With mutableUsers, lingering is set when the user is made, then left to it.
        let settled = decl.mutable_users && before.get(&u.name).is_some();
        if let (Some(on), Some(names)) = (u.linger.filter(|_| !settled), lingering) {
            let there = names.binary_search_by(|n| n.as_str().cmp(&u.name)).is_ok();
            if on != there {
                out.push(Action::Linger(u.name.to_string(), on));
            }
        }
    }
    out
}

/// Does `actions`.
pub(crate) fn apply(root: &mut Root, actions: &[Action]) -> Result<()> {
    for a in actions {
        match a {
            Action::Home(rel, owner, mode) => {
                root.make_dirs(rel)?;
                root.set_dir_owner_mode(rel, *owner, *mode)?;
            }
            Action::Linger(name, true) => {
                root.make_dirs(LINGER)?;
                let rel = format!("{LINGER}/{name}");
                if root.node_with(&rel, false)? == Node::Absent {
                    root.write_new(&rel, &[], 0o644, Owner { uid: 0, gid: 0 })?;
                }
            }
            Action::Linger(name, false) => root.unlink(&format!("{LINGER}/{name}"))?,
            Action::Unreachable(_) => {}
        }
    }
    Ok(())
}
