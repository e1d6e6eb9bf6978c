//! Looking at the root's `/run/wrappers` (read-only, never following a link): where `bin`
//! points, the files of that directory, and every `wrappers.*` directory beside it.

use std::collections::BTreeMap;
use std::os::fd::AsFd as _;

use anyhow::{Context as _, Result};
use etcflip_format::caps::Sets;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use super::plan::{Bin, Live, Seen};
use super::{BIN, DIR, DIRS, NEW_LINK};
use crate::fs::statx::statx_at;
use crate::fs::{join, Node, Root};

/// What `/run/wrappers` holds now.
pub(crate) fn look(root: &mut Root) -> Result<Live> {
    let bin = match root.node_with(BIN, false)? {
        Node::Absent => Bin::Absent,
        Node::Link(text) => match owned_dir(&text) {
            Some(name) if matches!(root.node_with(&join(DIR, name), false)?, Node::Dir(_)) => {
                Bin::Dir(name.to_owned())
            }
            _ => Bin::Elsewhere(text),
        },
        Node::Dir(_) => Bin::Foreign("a directory".into()),
        Node::Blocked(at) => Bin::Foreign(format!(
            "below {}, which is not a directory",
            root.show(&at)
        )),
        Node::File(_) | Node::Other(_) => Bin::Foreign("not a link".into()),
    };
    let files = match &bin {
        Bin::Dir(name) => files(root, &join(DIR, name))?,
        _ => BTreeMap::new(),
    };
    let dirs = if matches!(root.node_with(DIR, false)?, Node::Dir(_)) {
        let mut dirs = Vec::new();
        for name in root.list(DIR)? {
            if is_wrappers_dir(&name)
                && matches!(root.node_with(&join(DIR, &name), false)?, Node::Dir(ref m) if !m.mount)
            {
                dirs.push(name);
            }
        }
        dirs
    } else {
        Vec::new()
    };
    let new_link = !matches!(root.node_with(NEW_LINK, false)?, Node::Absent);
    Ok(Live {
        bin,
        files,
        dirs,
        new_link,
    })
}

/// The directory of `/run/wrappers` a `bin` link's text names, as NixOS (`wrappers.XXXXXXXXXX`)
/// and etcflip make them.
fn owned_dir(text: &str) -> Option<&str> {
    let name = text.strip_prefix("/run/wrappers/")?;
    is_wrappers_dir(name).then_some(name)
}

/// A name of a wrappers directory, NixOS's or etcflip's own.
pub(crate) fn is_wrappers_dir(name: &str) -> bool {
    name.starts_with(DIRS) && name.len() > DIRS.len() && !name.contains('/')
}

/// Every file of the wrappers directory `rel`, by name.
pub(crate) fn files(root: &mut Root, rel: &str) -> Result<BTreeMap<String, Seen>> {
    let mut out = BTreeMap::new();
    for name in root.list(rel)? {
        let seen = seen(root, rel, &name)?;
        out.insert(name, seen);
    }
    Ok(out)
}

/// One file of a wrappers directory: its status and, for a regular file, its capabilities.
fn seen(root: &mut Root, dir: &str, name: &str) -> Result<Seen> {
    let shown = root.show(&join(dir, name));
    let dfd = root.dir(dir)?;
    let st = statx_at(dfd.as_fd(), name).with_context(|| format!("cannot look at {shown}"))?;
    let regular = st.mode & libc::S_IFMT == libc::S_IFREG;
    let caps = if regular {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        match openat(dfd, name, flags, Mode::empty()) {
            Ok(fd) => match crate::fs::xattr::capability(fd.as_fd()) {
                Ok(None) => Ok(Sets::default()),
                Ok(Some(v)) => Sets::from_xattr(&v),
                Err(e) => Err(format!("cannot read security.capability: {e}")),
            },
            Err(Errno::ENOENT) => Err("it went away while looked at".into()),
            Err(e) => return Err(e).with_context(|| format!("cannot open {shown}")),
        }
    } else {
        Ok(Sets::default())
    };
    Ok(Seen {
        regular,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        size: st.size,
        caps,
    })
}
