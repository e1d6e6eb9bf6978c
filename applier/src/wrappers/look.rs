//! Looking at the root's `/run/wrappers` (read-only, never following a link): where `bin`
//! points, that directory and its files, and every `wrappers.*` directory beside it.

use std::collections::BTreeMap;
use std::os::fd::AsFd as _;
use std::os::unix::fs::FileExt as _;

use anyhow::{Context as _, Result};
use etcflip_format::caps::Sets;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use etcflip_format::wrapper::{target_of, MARK, PLACEHOLDER_BYTES};

use super::plan::{Bin, DirMeta, Live, Seen, BUILT_MTIME};
use super::{BIN, DIR, DIRS, NEW_LINK};
use crate::fs::statx::statx_at;
use crate::fs::{join, Node, Root};

/// What `/run/wrappers` holds now (its files' targets are left for [`targets`]).
pub(crate) fn look(root: &mut Root) -> Result<Live> {
    let parent = match root.node_with(DIR, false)? {
        Node::Dir(m) => Some(meta(m)),
        _ => None,
    };
    let (bin, dir) = bin(root)?;
    let files = match &bin {
        Bin::Dir(name) => files(root, &join(DIR, name))?,
        _ => BTreeMap::new(),
    };
    let (mut dirs, mut mounted) = (Vec::new(), Vec::new());
    if parent.is_some() {
        for name in root.list(DIR)?.into_iter().filter(|n| is_wrappers_dir(n)) {
            match root.node_with(&join(DIR, &name), false)? {
                Node::Dir(m) if m.mount => mounted.push(name),
                Node::Dir(_) => dirs.push(name),
                _ => {}
            }
        }
    }
    let new_link = match root.node_with(NEW_LINK, false)? {
        Node::Absent | Node::Blocked(_) => None,
        Node::Link(_) => Some(true),
        _ => Some(false),
    };
    Ok(Live {
        bin,
        parent,
        dir,
        files,
        targets: BTreeMap::new(),
        dirs,
        mounted,
        new_link,
    })
}

/// What `bin` is, and the directory it points at.
fn bin(root: &mut Root) -> Result<(Bin, Option<DirMeta>)> {
    Ok(match root.node_with(BIN, false)? {
        Node::Absent => (Bin::Absent, None),
        Node::Link(text) => match owned_dir(&text) {
            Some(name) => match root.node_with(&join(DIR, name), false)? {
                Node::Dir(m) => (Bin::Dir(name.to_owned()), Some(meta(m))),
                _ => (Bin::Elsewhere(text), None),
            },
            None => (Bin::Elsewhere(text), None),
        },
        Node::Blocked(at) => (Bin::Blocked(root.show(&at)), None),
        n if n.is_mount_point() => (Bin::Blocked(root.show(BIN)), None),
        Node::Dir(_) => (Bin::Foreign("a directory".into()), None),
        Node::File(_) | Node::Other(_) => (Bin::Foreign("not a link".into()), None),
    })
}

/// The targets the files of the directory `bin` points at run, read from their placeholders
/// at `at` (where the generation's own wrapper binary has it); a file of another binary, or
/// unreadable, is left out.
pub(crate) fn targets(root: &mut Root, live: &mut Live, at: usize) {
    let Bin::Dir(name) = &live.bin else {
        return;
    };
    let dir = join(DIR, name);
    for program in live.files.iter().filter(|(_, s)| s.regular).map(|(p, _)| p) {
        let Ok(fd) = root.open_file(&join(&dir, program)) else {
            continue;
        };
        let mut area = vec![0u8; PLACEHOLDER_BYTES];
        let file = std::fs::File::from(fd);
        let read = file.read_exact_at(&mut area, u64::try_from(at).unwrap_or(u64::MAX));
        let target = (read.is_ok() && area.starts_with(MARK))
            .then(|| target_of(&area))
            .flatten();
        if let Some(t) = target.and_then(|t| std::str::from_utf8(t).ok()) {
            live.targets.insert(program.clone(), t.to_owned());
        }
    }
}

fn meta(m: crate::fs::node::Meta) -> DirMeta {
    DirMeta {
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
    }
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

/// Every file of the wrappers directory `rel`, by name. A wrapper is as built when its
/// modification time is the one the build gave it and its status changed no later than the
/// directory's, which the flip's `chmod` changed last (`build.rs`): a write changes the one,
/// and putting the time back changes the other.
pub(crate) fn files(root: &mut Root, rel: &str) -> Result<BTreeMap<String, Seen>> {
    let dir_ctime = root.stat(rel)?.map_or(i128::MIN, |st| st.ctime);
    let mut out = BTreeMap::new();
    for name in root.list(rel)? {
        let seen = seen(root, rel, &name, dir_ctime)?;
        out.insert(name, seen);
    }
    Ok(out)
}

/// One file of a wrappers directory: its status and, for a regular file, its capabilities. A
/// name that is gone when looked at (or not UTF-8, so listed in another spelling) is something
/// other than a wrapper: the directory is then rebuilt, and the old one removed by bytes.
fn seen(root: &mut Root, dir: &str, name: &str, dir_ctime: i128) -> Result<Seen> {
    let shown = root.show(&join(dir, name));
    let dfd = root.dir(dir)?;
    let st = match statx_at(dfd.as_fd(), name) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(Seen::gone()),
        Err(e) => return Err(e).with_context(|| format!("cannot look at {shown}")),
    };
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
        as_built: st.mtime == i128::from(BUILT_MTIME) * 1_000_000_000 && st.ctime <= dir_ctime,
        caps,
    })
}
