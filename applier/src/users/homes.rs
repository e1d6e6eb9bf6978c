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
    let mut out = Vec::new();
    // A user the plan removes stops lingering (the linger files are few; the users many).
    for name in root.list(LINGER)? {
        if before.get(&name).is_some() && passwd.get(&name).is_none() {
            out.push(Action::Linger(name, false));
        }
    }
    for u in &decl.users {
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
            let rel = u.home.trim_start_matches('/').to_owned();
            let mode = u32::from_str_radix(&u.home_mode, 8).unwrap_or(0o700);
            match root.node_with(&rel, false)? {
                Node::Dir(m) if m.mode == mode && (m.uid, m.gid) == (owner.uid, owner.gid) => {}
                Node::Dir(_) | Node::Absent => out.push(Action::Home(rel, owner, mode)),
                _ => out.push(Action::Unreachable(rel)),
            }
        }
        // With mutableUsers, lingering is set when the user is made, then left to it.
        let settled = decl.mutable_users && before.get(&u.name).is_some();
        if let Some(on) = u.linger.filter(|_| !settled) {
            let there = root.node_with(&format!("{LINGER}/{}", u.name), false)? != Node::Absent;
            if on != there {
                out.push(Action::Linger(u.name.to_string(), on));
            }
        }
    }
    Ok(out)
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
