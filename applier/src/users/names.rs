//! Where owner names resolve, for every domain that has owners: the copies of `/etc`
//! (`etc/owners.rs`) and the wrappers (`wrappers/mod.rs`). Never the host's NSS: the user
//! database a switch writes, else the generation's own, else the root's.

use std::borrow::Cow;
use std::path::Path;

use anyhow::Result;

use crate::fs::Root;
use crate::manifest::{Id, Manifest};
use crate::users::files::{id_of, Table};

/// Where owner names resolve: the user database a switch writes (its users phase's planned
/// `passwd` and `group`), else the generation's own `passwd`/`group` when the manifest ships
/// them (`gen_host`: the generation on the host), else the root's.
#[derive(Clone, Copy)]
pub(crate) struct Tables<'a> {
    pub(crate) planned: Option<&'a super::Report>,
    pub(crate) gen_host: Option<&'a Path>,
}

/// The `passwd` and `group` that owner names resolve against (see [`Tables`]); the copies of
/// `/etc` and the wrappers' owners both resolve here.
pub(crate) fn user_tables<'t>(
    root: &mut Root,
    new: &Manifest,
    tables: Tables<'t>,
) -> Result<(Cow<'t, Table>, Cow<'t, Table>)> {
    if let Some(report) = tables.planned {
        return Ok(report.tables());
    }
    Ok((
        Cow::Owned(read_db(root, new, tables.gen_host, "passwd", 7)?),
        Cow::Owned(read_db(root, new, tables.gen_host, "group", 4)?),
    ))
}

/// [`user_tables`], read only when one of `ids` is a name other than `root`: numeric ids and
/// `root` need no user database, and reading it would be work every switch (and every boot's
/// wrappers, which on NixOS are all root's) does for nothing.
pub(crate) fn tables_for<'t, 'i>(
    root: &mut Root,
    new: &Manifest,
    tables: Tables<'t>,
    ids: impl Iterator<Item = &'i Id>,
) -> Result<(Cow<'t, Table>, Cow<'t, Table>)> {
    if needs_tables(ids) {
        return user_tables(root, new, tables);
    }
    Ok((Cow::Owned(Table::default()), Cow::Owned(Table::default())))
}

/// Whether one of `ids` is a name other than `root`, which only a user database resolves.
pub(crate) fn needs_tables<'i>(mut ids: impl Iterator<Item = &'i Id>) -> bool {
    ids.any(|id| matches!(id, Id::Name(n) if n.as_str() != ROOT))
}

/// The name that is id 0 even where no user database has it yet (a first boot, an empty
/// root): the kernel's, not a declaration's.
const ROOT: &str = "root";

/// The id for `id`, and the name when it did not resolve (the id is then 0). `root` resolves
/// to 0 when the table does not have it (a line of it with no id is reported, as any other).
pub(crate) fn lookup(id: Option<&Id>, table: &Table) -> (u32, Option<String>) {
    match id {
        None => (0, None),
        Some(Id::Num(n)) => (*n, None),
        Some(Id::Name(name)) => match table.get(name).map(|e| id_of(e, 2)) {
            Some(Some(id)) => (id, None),
            None if name.as_str() == ROOT => (0, None),
            _ => (0, Some(name.clone())),
        },
    }
}

/// `name:x:id:...` lines of a passwd-like file; missing file → empty.
fn read_db(
    root: &mut Root,
    new: &Manifest,
    gen_host: Option<&Path>,
    name: &str,
    fields: usize,
) -> Result<Table> {
    let shipped = gen_host.filter(|_| new.get(name).is_some());
    let bytes = match shipped {
        Some(g) => {
            let p = g.join("etc").join(name);
            Some(crate::fs::read_regular(&p)?)
        }
        None => root.read_in_root(&format!("etc/{name}"))?,
    };
    let Some(bytes) = bytes else {
        return Ok(Table::default());
    };
    Ok(Table::parse(&String::from_utf8_lossy(&bytes), fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (Option<Id>, (u32, Option<&'static str>));

    #[test]
    fn root_is_0_without_a_user_database() {
        let empty = Table::default();
        let (users, groups) = (
            Some(Id::Name("root".into())),
            Some(Id::Name("wheel".into())),
        );
        assert_eq!(lookup(users.as_ref(), &empty), (0, None));
        assert_eq!(lookup(groups.as_ref(), &empty), (0, Some("wheel".into())));
        let broken = Table::parse("root:x:zero:0::/:/bin/sh\n", 7);
        assert_eq!(lookup(users.as_ref(), &broken), (0, Some("root".into())));
    }

    #[test]
    fn names_resolve_through_the_table_and_fall_back_to_root() {
        let table = Table::parse("alice:x:1000:100::/:/bin/sh\nroot:x:0:0::/:/bin/sh\n", 7);
        let cases: [Case; 5] = [
            (None, (0, None)),
            (Some(Id::Num(42)), (42, None)),
            (Some(Id::Name("alice".into())), (1000, None)),
            (Some(Id::Name("root".into())), (0, None)),
            (Some(Id::Name("bob".into())), (0, Some("bob"))),
        ];
        for (id, (want_id, want_name)) in cases {
            let (got, name) = lookup(id.as_ref(), &table);
            assert_eq!((got, name.as_deref()), (want_id, want_name), "{id:?}");
        }
    }
}
