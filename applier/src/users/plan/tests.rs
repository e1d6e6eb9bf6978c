//! The users plan on inputs built in memory: one table per rule.

use etcflip_format::users::{Group, User, Users};

use super::*;

fn user(name: &str, uid: Option<i64>, system: bool) -> User<'static> {
    <User as serde::Deserialize>::deserialize(serde_json::json!({
        "name": name, "uid": uid, "group": "users", "home": format!("/home/{name}"),
        "isSystemUser": system, "shell": "/bin/sh"
    }))
    .unwrap()
}

fn decl(
    mutable: bool,
    users: Vec<User<'static>>,
    extra_groups: &[(&'static str, Option<i64>)],
) -> Users<'static> {
    let mut groups = vec![Group {
        name: "users".into(),
        gid: Some(100),
        members: Vec::new(),
    }];
    groups.extend(extra_groups.iter().map(|(n, gid)| Group {
        name: (*n).into(),
        gid: *gid,
        members: Vec::new(),
    }));
    Users {
        mutable_users: mutable,
        users,
        groups,
        precomputed: None,
        run_time: Vec::new(),
        password_files_location: None,
    }
}

fn found(passwd: &str, group: &str, uid_map: &[(&str, u32)], declarative: &[&str]) -> Found {
    let ledgers = Ledgers {
        uids: uid_map
            .iter()
            .map(|(n, id)| ((*n).to_owned(), *id))
            .collect(),
        declarative_users: Names::new(declarative.iter().copied()),
        ..Ledgers::default()
    };
    Found {
        db: Database {
            passwd: Table::parse(passwd, 7),
            group: Table::parse(group, 4),
            ledgers,
            ..Database::default()
        },
        ..Found::default()
    }
}

fn uid(p: &Planned, name: &str) -> Option<u32> {
    p.db.passwd.get(name).and_then(|e| id_of(e, 2))
}

/// What, the declared users, the ledger, the expected uids, and a change line to expect.
type IdCase = (
    &'static str,
    Vec<User<'static>>,
    Vec<(&'static str, u32)>,
    Vec<(&'static str, u32)>,
    &'static str,
);

#[test]
fn ids_are_kept_declared_revived_or_allocated() {
    let root = "root:x:0:0::/root:/bin/sh\nold:x:1000:100::/home/old:/bin/sh\n";
    // (what, declared users, ledger, expected uids, a change line)
    let cases: Vec<IdCase> = vec![
        (
            "static",
            vec![user("a", Some(1234), false)],
            vec![],
            vec![("a", 1234)],
            "create user a (uid 1234)",
        ),
        (
            "normal users from 1000 up, past the root's",
            vec![user("a", None, false), user("b", None, false)],
            vec![],
            vec![("a", 1001), ("b", 1002)],
            "create user a (allocate uid 1001)",
        ),
        (
            "system users from 999 down",
            vec![user("s", None, true), user("t", None, true)],
            vec![],
            vec![("s", 999), ("t", 998)],
            "create user s (allocate uid 999)",
        ),
        (
            "a returning name gets its old id back",
            vec![user("back", None, false)],
            vec![("back", 1500)],
            vec![("back", 1500)],
            "create user back (revive uid 1500)",
        ),
        (
            "another name's ledger id is never handed out",
            vec![user("new", None, false)],
            vec![("gone", 1001)],
            vec![("new", 1002)],
            "create user new (allocate uid 1002)",
        ),
        (
            "a static id is reserved before allocation",
            vec![user("dyn", None, false), user("st", Some(1001), false)],
            vec![],
            vec![("dyn", 1002), ("st", 1001)],
            "create user dyn (allocate uid 1002)",
        ),
        (
            "an existing account keeps its id",
            vec![user("old", None, false)],
            vec![],
            vec![("old", 1000)],
            "",
        ),
    ];
    for (what, users, ledger, want, line) in cases {
        let p = plan(
            &decl(true, users, &[]),
            &found(root, "users:x:100:\n", &ledger, &[]),
        );
        assert!(p.clashes.is_empty(), "{what}: {:?}", p.clashes);
        for (name, id) in want {
            assert_eq!(
                uid(&p, name),
                Some(id),
                "{what}: {name} in {:?}",
                p.db.passwd
            );
            assert_eq!(p.db.ledgers.uids.get(name), Some(&id), "{what}: ledger");
        }
        if !line.is_empty() {
            assert!(
                p.changes.iter().any(|c| c == line),
                "{what}: {:?}",
                p.changes
            );
        }
        for (name, id) in ledger {
            assert_eq!(
                p.db.ledgers.uids.get(name),
                Some(&id),
                "{what}: ledgers never shrink"
            );
        }
    }
}

#[test]
fn an_id_another_account_holds_is_a_clash_not_a_skip() {
    let root = "root:x:0:0::/root:/bin/sh\nold:x:1000:100::/home/old:/bin/sh\n";
    let cases = [
        (
            user("new", Some(1000), false),
            "user new: uid 1000 belongs to user old on the root",
        ),
        (
            user("old", Some(1001), false),
            "user old has uid 1000 on the root, the declaration says 1001",
        ),
    ];
    for (u, want) in cases {
        let p = plan(
            &decl(true, vec![u], &[]),
            &found(root, "users:x:100:\n", &[], &[]),
        );
        assert_eq!(p.clashes.len(), 1, "{:?}", p.clashes);
        assert!(p.clashes[0].starts_with(want), "{:?}", p.clashes);
    }
}

#[test]
fn mutable_users_keep_what_was_added_at_run_time() {
    let root = "root:x:0:0::/root:/bin/sh\nmade:x:1001:100::/home/made:/bin/sh\n\
                dropped:x:1002:100::/home/dropped:/bin/sh\n";
    let group = "users:x:100:made,dropped\nextra:x:500:made\n";
    let keep = |mutable: bool| {
        let d = decl(mutable, vec![user("root", Some(0), true)], &[]);
        plan(
            &d,
            &found(root, group, &[("dropped", 1002)], &["root", "dropped"]),
        )
    };
    let p = keep(true);
    assert_eq!(uid(&p, "made"), Some(1001), "added at run time: kept");
    assert_eq!(
        uid(&p, "dropped"),
        None,
        "declared before, not now: removed"
    );
    assert!(p
        .changes
        .iter()
        .any(|c| c == "remove user dropped (its uid stays reserved)"));
    assert_eq!(&p.db.group.get("users").unwrap()[3], "made");
    assert_eq!(
        &p.db.group.get("extra").unwrap()[3],
        "made",
        "an undeclared group stays"
    );
    assert_eq!(
        p.db.ledgers.uids.get("dropped"),
        Some(&1002),
        "its id stays reserved"
    );
    let p = keep(false);
    assert_eq!(uid(&p, "made"), None, "immutable: only what is declared");
    assert_eq!(&p.db.group.get("users").unwrap()[3], "");
    assert!(p.db.group.get("extra").is_none());
}

/// A user with passwords set as given: (password, hashedPassword, hashedPasswordFile,
/// initialPassword).
fn with_passwords(
    name: &str,
    (plain, hashed, file, initial): (Option<&str>, Option<&str>, Option<&str>, Option<&str>),
) -> User<'static> {
    let mut u = user(name, Some(1000), false);
    u.password = plain.map(|s| Str::from(s.to_owned()));
    u.hashed_password = hashed.map(|s| Str::from(s.to_owned()));
    u.hashed_password_file = file.map(|s| Str::from(s.to_owned()));
    u.initial_password = initial.map(|s| Str::from(s.to_owned()));
    u
}

fn shadow_field(p: &Planned, name: &str) -> String {
    p.db.shadow
        .get(name)
        .map(|e| e[1].to_owned())
        .unwrap_or_default()
}

#[test]
fn passwords_follow_nixos_precedence_and_never_churn() {
    let root = "a:x:1000:100::/home/a:/bin/sh\n";
    let old = "a:$6$old$hash:19000:0:99999:7:::\n";
    let mut f = found(root, "users:x:100:\n", &[], &[]);
    f.db.shadow = Table::parse(old, 9);
    f.password_files
        .insert("/run/pw".into(), Ok(Some(b"$6$file$hash\n".to_vec())));
    let cases = [
        (
            "existing, mutable: kept",
            true,
            (None, Some("$6$decl"), None, None),
            "$6$old$hash",
        ),
        (
            "existing, immutable: declared",
            false,
            (None, Some("$6$decl"), None, None),
            "$6$decl",
        ),
        (
            "existing, immutable, none: locked",
            false,
            (None, None, None, None),
            "!",
        ),
        (
            "existing, mutable: kept even over a file",
            true,
            (None, None, Some("/run/pw"), None),
            "$6$old$hash",
        ),
        (
            "a file wins",
            false,
            (None, Some("$6$decl"), Some("/run/pw"), None),
            "$6$file$hash",
        ),
        (
            "initial only for new users",
            true,
            (None, None, None, Some("x")),
            "$6$old$hash",
        ),
    ];
    // Without mutableUsers the initial password is the password, at every switch (NixOS's
    // module makes it its default): the first switch's hash is not locked by the second.
    let mut init = with_passwords("a", (None, None, None, None));
    init.initial_hashed_password = Some(Str::from("$6$init".to_owned()));
    let p = plan(&decl(false, vec![init], &[]), &f);
    assert_eq!(shadow_field(&p, "a"), "$6$init");
    for (what, mutable, pw, want) in cases {
        let p = plan(&decl(mutable, vec![with_passwords("a", pw)], &[]), &f);
        assert!(p.invalid.is_empty(), "{what}: {:?}", p.invalid);
        assert_eq!(shadow_field(&p, "a"), want, "{what}");
        assert_eq!(
            &p.db.shadow.get("a").unwrap()[2],
            "19000",
            "{what}: the rest is kept"
        );
    }
    // A plaintext password is hashed once, then kept while it is unchanged.
    let d = decl(
        false,
        vec![with_passwords("a", (Some("secret"), None, None, None))],
        &[],
    );
    let first = shadow_field(&plan(&d, &f), "a");
    assert!(first.starts_with("$6$"), "{first}");
    f.db.shadow = Table::parse(&format!("a:{first}:19000:0:99999:7:::\n"), 9);
    let p = plan(&d, &f);
    assert_eq!(
        shadow_field(&p, "a"),
        first,
        "no new salt for the same password"
    );
    assert!(
        !p.changes.iter().any(|c| c.contains("password")),
        "{:?}",
        p.changes
    );
    // A new user without a line gets one: last change on day 1, the expiry in days.
    let mut new = with_passwords("n", (None, None, None, None));
    new.uid = Some(1001);
    new.expires = Some("1970-01-11".into());
    let p = plan(&decl(true, vec![new], &[]), &f);
    assert_eq!(p.db.shadow.get("n").unwrap().line(), "n:!:1:::::10:");
}

#[test]
fn a_password_file_that_cannot_be_used_names_its_user() {
    let cases: [(FileRead, &str); 5] = [
        (Ok(None), "user a: hashedPasswordFile /run/pw is missing"),
        (
            Ok(Some(b"\n".to_vec())),
            "user a: hashedPasswordFile /run/pw is empty",
        ),
        (
            Ok(Some(b"$6$x\nroot::0:0::/:/bin/sh\n".to_vec())),
            "user a: hashedPasswordFile /run/pw holds ':' or more than one line",
        ),
        (Ok(Some(b"a:b".to_vec())), "holds ':'"),
        (
            Err("not a regular file".into()),
            "user a: hashedPasswordFile /run/pw: not a regular",
        ),
    ];
    for (content, want) in cases {
        let mut f = found("", "users:x:100:\n", &[], &[]);
        f.password_files.insert("/run/pw".into(), content);
        let d = decl(
            true,
            vec![with_passwords("a", (None, None, Some("/run/pw"), None))],
            &[],
        );
        let p = plan(&d, &f);
        assert_eq!(p.invalid.len(), 1, "{want}: {:?}", p.invalid);
        assert!(p.invalid[0].contains(want), "{want}: {:?}", p.invalid);
    }
}

#[test]
fn members_follow_the_declaration_and_removed_users_leave_every_group() {
    let root =
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:100::/:/bin/sh\nbob:x:1001:100::/:/bin/sh\n\
                carol:x:1002:100::/:/bin/sh:\n";
    let group = "root:x:0:\nusers:x:100:\nwheel:x:1:alice,bob\ndocker:x:131:bob,alice\n";
    let mut d = decl(
        true,
        vec![
            user("root", Some(0), true),
            user("alice", Some(1000), false),
        ],
        &[("wheel", Some(1))],
    );
    d.groups[0].members = vec![];
    // Before: alice and bob declared, both in wheel; now alice is declared without wheel,
    // and bob is gone.
    let f = found(root, group, &[("bob", 1001)], &["root", "alice", "bob"]);
    let p = plan(&d, &f);
    assert_eq!(
        &p.db.group.get("wheel").unwrap()[3],
        "",
        "a declared user leaves a group"
    );
    assert_eq!(
        &p.db.group.get("docker").unwrap()[3],
        "alice",
        "a removed user leaves kept groups"
    );
    assert!(p.db.passwd.get("bob").is_none());
    // carol's line has a stray ':' (not understood, kept): its uid is still held.
    let mut d2 = d.clone();
    d2.users.push(user("dave", None, false));
    let p = plan(&d2, &f);
    assert_eq!(uid(&p, "dave"), Some(1003), "{:?}", p.changes);
    // Root is never removed silently.
    let p = plan(
        &decl(false, vec![user("alice", Some(1000), false)], &[]),
        &f,
    );
    assert!(
        p.clashes
            .iter()
            .any(|c| c == "user root (uid 0) would be removed: declare it"),
        "{:?}",
        p.clashes
    );
    assert!(
        p.clashes
            .iter()
            .any(|c| c == "group root (gid 0) would be removed: declare it"),
        "{:?}",
        p.clashes
    );
}

#[test]
fn a_root_of_many_accounts_keeps_and_removes_as_a_small_one() {
    use std::fmt::Write as _;
    // Past 8 accounts on the root, `Table::get` indexes them: the plan is the same.
    let mut many = String::new();
    for i in 0..12 {
        let _ = writeln!(many, "extra{i}:x:{}:100::/home/extra{i}:/bin/sh", 2000 + i);
    }
    let root = format!("root:x:0:0::/root:/bin/sh\nold:x:1002:100::/home/old:/bin/sh\n{many}");
    let d = decl(true, vec![user("root", Some(0), true)], &[]);
    let p = plan(&d, &found(&root, "users:x:100:\n", &[], &["root", "old"]));
    assert!(p.clashes.is_empty(), "root is declared: {:?}", p.clashes);
    assert_eq!(uid(&p, "root"), Some(0));
    assert_eq!(uid(&p, "old"), None, "declared before, not now: removed");
    assert_eq!(uid(&p, "extra11"), Some(2011), "added at run time: kept");
    let removed: Vec<&str> = p
        .changes
        .iter()
        .filter(|c| c.starts_with("remove"))
        .collect();
    assert_eq!(removed, ["remove user old (its uid stays reserved)"]);
}
