//! What the generator can settle of a `users` part: `passwd` and `group` when every id is
//! static (an image then needs no allocation), and the list of what only the switch can do.

use std::collections::BTreeMap;

use etcflip_format::borrowed::Str;
use etcflip_format::users::{Precomputed, Users, NOLOGIN};

/// Fills in `precomputed` and `run_time`.
pub(crate) fn settle(users: &mut Users) {
    users.precomputed = precompute(users);
    users.run_time = run_time(users);
}

/// `passwd` (sorted by uid) and `group` (sorted by gid), or `None` when an id is dynamic.
fn precompute(users: &Users) -> Option<Precomputed> {
    let gids: BTreeMap<&str, i64> = (users.groups.iter())
        .map(|g| g.gid.map(|gid| (g.name.as_str(), gid)))
        .collect::<Option<_>>()?;
    let mut passwd: Vec<(i64, String)> = Vec::new();
    for u in &users.users {
        let gid = match gids.get(u.group.as_str()) {
            Some(gid) => *gid,
            None => u.group.parse().ok()?,
        };
        let shell = u.shell.as_deref().unwrap_or(NOLOGIN);
        let line = format!(
            "{}:x:{}:{gid}:{}:{}:{shell}\n",
            u.name, u.uid?, u.description, u.home
        );
        passwd.push((u.uid?, line));
    }
    let mut group: Vec<(i64, String)> = (users.groups.iter())
        .map(|g| {
            let mut members: Vec<&str> = g.members.iter().map(Str::as_str).collect();
            members.sort_unstable();
            members.dedup();
            let gid = gids[g.name.as_str()];
            (gid, format!("{}:x:{gid}:{}\n", g.name, members.join(",")))
        })
        .collect();
    passwd.sort();
    group.sort();
    Some(Precomputed {
        passwd: passwd.into_iter().map(|(_, l)| l).collect(),
        group: group.into_iter().map(|(_, l)| l).collect(),
    })
}

/// What only the switch can do, one line each, sorted.
fn run_time(users: &Users) -> Vec<String> {
    let mut out = Vec::new();
    for g in users.groups.iter().filter(|g| g.gid.is_none()) {
        out.push(format!("allocate the gid of group {}", g.name));
    }
    for u in &users.users {
        let name = &u.name;
        if u.uid.is_none() {
            out.push(format!("allocate the uid of user {name}"));
        }
        if let Some(file) = &u.hashed_password_file {
            out.push(format!("read the password hash of user {name} from {file}"));
        }
        if u.password.is_some() || u.initial_password.is_some() {
            out.push(format!("hash the password of user {name}"));
        }
        if u.auto_sub_uid_gid_range {
            out.push(format!("allocate subordinate ids for user {name}"));
        }
        if u.create_home {
            out.push(format!("create the home of user {name}"));
        }
    }
    if users.mutable_users {
        out.push("keep the users and members added at run time".to_owned());
    }
    out.push("write shadow".to_owned());
    out.sort();
    out
}
