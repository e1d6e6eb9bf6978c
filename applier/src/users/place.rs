//! Where the user database lives: in `/etc` (the default), or in a writable directory that
//! `/etc`'s five files link to (the users part's `passwordFilesLocation`, e.g.
//! `/var/lib/nixos`, as userborn does it), which keeps the users mutable on a read-only `/etc`.
//!
//! With a location elsewhere:
//! - the plan reads each file from `/etc` when a regular file stands there (the files before a
//!   migration to the location, or one a tool wrote in place of the link: either way the
//!   newest; Debian's shadow-utils refuse a linked `/etc/passwd` outright), else from the
//!   location;
//! - phase 3 writes the location's files (a moved file keeps its mode and owner), marks the
//!   location ([`MARK`]), then makes each `/etc` file the link `/etc/NAME -> LOCATION/NAME` (a
//!   new link renamed over the file, so no reader ever finds it missing);
//! - a read-only `/etc` must already hold the links (an image built by `etcflip image` does);
//!   anything else standing there is a clash, found before anything is written.
//!
//! Back in `/etc` (a generation without the location), a link to a marked location is
//! etcflip's: it is read through, and replaced with the file it showed.

use anyhow::Result;

use etcflip_format::users::Users;

use crate::fs::{Node, Root};

/// The mark a place holds once `/etc`'s files link to it: what proves, to a later switch
/// whose files are in `/etc` again, that those links are etcflip's to replace with files (a
/// link into `/persist` made by hand has none, and stays refused). It counts only where no one
/// but root could have put it ([`trusted`]), and goes once the links are files again.
pub(super) const MARK: &str = ".etcflip-linked";

/// The five files, in the order [`super::Inputs`] holds them.
pub(crate) const NAMES: [&str; 5] = ["passwd", "group", "shadow", "subuid", "subgid"];

/// The directory (relative to the root) that holds the five files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    dir: String,
}

/// Where the plan read a file from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadFrom {
    /// The place's own file.
    Place,
    /// A regular file in `/etc`, where the place is elsewhere: the newest content.
    Etc,
}

impl Place {
    /// The declaration's place.
    pub(crate) fn of(decl: &Users) -> Place {
        let dir =
            (decl.password_files_location.as_deref()).map_or("etc", |d| d.trim_start_matches('/'));
        Place {
            dir: dir.to_owned(),
        }
    }

    /// The directory, relative to the root.
    pub(crate) fn dir(&self) -> &str {
        &self.dir
    }

    /// File `i` of [`NAMES`], relative to the root.
    pub(crate) fn file(&self, i: usize) -> String {
        format!("{}/{}", self.dir, NAMES[i])
    }

    /// Whether the files live outside `/etc`, which links to them.
    pub(crate) fn elsewhere(&self) -> bool {
        self.dir != "etc"
    }

    /// What `/etc`'s file `i` links to when the place is elsewhere.
    fn link_text(&self, i: usize) -> String {
        format!("/{}/{}", self.dir, NAMES[i])
    }

    /// Where the plan reads file `i` from (see the module comment).
    pub(crate) fn read_from(&self, root: &mut Root, i: usize) -> Result<ReadFrom> {
        if !self.elsewhere() {
            return Ok(ReadFrom::Place);
        }
        let in_etc = root.node_with(&format!("etc/{}", NAMES[i]), false)?;
        Ok(match in_etc {
            Node::File(f) if !f.meta.mount => ReadFrom::Etc,
            _ => ReadFrom::Place,
        })
    }

    /// The record lock `lckpwdf` takes: `/etc/.pwd.lock`, which `useradd` and `passwd` take
    /// too; on a read-only `/etc`, where they cannot write, the place's own.
    pub(crate) fn lock_file(&self, root: &mut Root) -> Result<String> {
        let etc_ro = self.elsewhere() && root.read_only("etc")?;
        let dir = if etc_ro { self.dir.as_str() } else { "etc" };
        if etc_ro {
            root.make_dirs(dir)?;
        }
        Ok(format!("{dir}/.pwd.lock"))
    }

    /// The `/etc` files that are not yet the links the place wants (empty when it is `/etc`):
    /// each with what stands there.
    pub(crate) fn links_to_make(&self, root: &mut Root) -> Result<Vec<(usize, Node)>> {
        let mut out = Vec::new();
        if !self.elsewhere() {
            return Ok(out);
        }
        for (i, name) in NAMES.iter().enumerate() {
            let node = root.node_with(&format!("etc/{name}"), false)?;
            if node != Node::Link(self.link_text(i)) {
                out.push((i, node));
            }
        }
        Ok(out)
    }

    /// Why the `/etc` links cannot be made: what stands there is neither nothing nor a regular
    /// file, or `/etc` is read-only. Empty when they can (or need not).
    pub(crate) fn link_clashes(&self, root: &mut Root) -> Result<Vec<String>> {
        let todo = self.links_to_make(root)?;
        if todo.is_empty() {
            return Ok(Vec::new());
        }
        let etc_ro = root.read_only("etc")?;
        Ok((todo.into_iter())
            .filter_map(|(i, node)| {
                let shown = root.show(&format!("etc/{}", NAMES[i]));
                let want = self.link_text(i);
                let why = match node {
                    _ if etc_ro => "/etc is read-only (an image's /etc must hold the link)",
                    Node::Absent => return None,
                    Node::File(f) if !f.meta.mount => return None,
                    Node::Link(_) => "a link elsewhere stands there",
                    _ => {
                        "something etcflip does not replace stands there (a mount point, a \
                          directory)"
                    }
                };
                Some(format!(
                    "{shown} should link to {want} (passwordFilesLocation), but {why}: nothing \
                     was written"
                ))
            })
            .collect())
    }

    /// Where `/etc`'s file `i` is a link etcflip made to a place (`/D/NAME`, with D's mark),
    /// that file, relative to the root: what a switch back to `/etc` replaces the link with.
    pub(crate) fn ours_link(root: &mut Root, i: usize) -> Result<Option<String>> {
        let Node::Link(text) = root.node_with(&format!("etc/{}", NAMES[i]), false)? else {
            return Ok(None);
        };
        let suffix = format!("/{}", NAMES[i]);
        let dir = text.strip_prefix('/').and_then(|t| t.strip_suffix(&suffix));
        let Some(dir) = dir.filter(|d| etcflip_format::manifest::check_target(d).is_ok()) else {
            return Ok(None);
        };
        let file = format!("{dir}{suffix}");
        let ours = trusted(root, &format!("{dir}/{MARK}"))? && trusted(root, &file)?;
        Ok(ours.then_some(file))
    }

    /// Whether the place holds its mark (see [`MARK`]).
    pub(crate) fn marked(&self, root: &mut Root) -> Result<bool> {
        let rel = format!("{}/{MARK}", self.dir);
        Ok(matches!(root.node_with(&rel, false)?, Node::File(_)))
    }

    /// Marks the place as one `/etc` links to (see [`MARK`]), before the links are made.
    pub(crate) fn mark(&self, root: &mut Root) -> Result<()> {
        let rel = format!("{}/{MARK}", self.dir);
        if !self.elsewhere() || self.marked(root)? {
            return Ok(());
        }
        let text = b"/etc's user database links here (etcflip: users/place.rs)\n";
        root.atomic_write_as(&rel, &[text], 0o644, crate::fs::Owner { uid: 0, gid: 0 })
    }

    /// Takes the mark away from the place of `file` (a place file a link in `/etc` showed),
    /// once `/etc` holds files again: a link made there later by hand is then not etcflip's.
    pub(crate) fn unmark(root: &mut Root, file: &str) -> Result<()> {
        let dir = crate::fs::split(file).0;
        let rel = format!("{dir}/{MARK}");
        if matches!(root.node_with(&rel, false)?, Node::File(_)) {
            root.unlink(&rel)?;
            root.sync_dir(dir)?;
        }
        Ok(())
    }

    /// Makes `/etc`'s files the links to the place (phase 3, after the place's files are
    /// written): each a new link renamed over what stands there, which [`Self::link_clashes`]
    /// found to be nothing or a regular file whose content the plan read.
    pub(crate) fn link(&self, root: &mut Root) -> Result<()> {
        let todo = self.links_to_make(root)?;
        for (i, _) in &todo {
            let rel = format!("etc/{}", NAMES[*i]);
            let temp = crate::fs::temp_name(&rel);
            // A killed run's (the lock is held: the name is this run's).
            root.remove_tree_if_present(&temp)?;
            root.symlink(&self.link_text(*i), &temp)?;
            root.rename(&temp, &rel)?;
        }
        if !todo.is_empty() {
            root.sync_dir("etc")?;
        }
        Ok(())
    }
}

/// Whether `rel` and every directory above it belong to root (or to this process, in an
/// unprivileged scratch root) and no one else may write them: a mark or a file another user
/// could have put there proves nothing, and is never installed as `/etc/shadow`.
fn trusted(root: &mut Root, rel: &str) -> Result<bool> {
    let me = nix::unistd::geteuid().as_raw();
    let mut at = String::new();
    for part in rel.split('/') {
        at = crate::fs::join(&at, part);
        let meta = match root.node_with(&at, false)? {
            Node::Dir(m) => m,
            Node::File(f) => f.meta,
            _ => return Ok(false),
        };
        if (meta.uid != 0 && meta.uid != me) || meta.mode & 0o022 != 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_place_is_etc_unless_declared_elsewhere() {
        let cases: [(Option<&str>, &str, bool, &str); 3] = [
            (None, "etc/passwd", false, "/etc/passwd"),
            (
                Some("/var/lib/nixos"),
                "var/lib/nixos/passwd",
                true,
                "/var/lib/nixos/passwd",
            ),
            (
                Some("/persist/users"),
                "persist/users/passwd",
                true,
                "/persist/users/passwd",
            ),
        ];
        for (location, file, elsewhere, link) in cases {
            let decl = Users {
                mutable_users: true,
                users: Vec::new(),
                groups: Vec::new(),
                precomputed: None,
                run_time: Vec::new(),
                password_files_location: location.map(Into::into),
            };
            let place = Place::of(&decl);
            assert_eq!(place.file(0), file, "{location:?}");
            assert_eq!(place.elsewhere(), elsewhere, "{location:?}");
            assert_eq!(place.link_text(0), link, "{location:?}");
        }
    }
}
