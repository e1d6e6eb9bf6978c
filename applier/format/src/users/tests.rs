//! The rules of a `users` part, one case per violation.

use super::*;

fn user<'a>(name: &'a str, uid: Option<i64>, group: &'a str) -> User<'a> {
    User {
        name: name.into(),
        uid,
        group: group.into(),
        description: Str::default(),
        home: "/var/empty".into(),
        home_mode: "700".into(),
        create_home: false,
        is_system_user: true,
        password: None,
        hashed_password: None,
        hashed_password_file: None,
        initial_password: None,
        initial_hashed_password: None,
        expires: None,
        linger: None,
        shell: None,
        auto_sub_uid_gid_range: false,
        sub_uid_ranges: Vec::new(),
        sub_gid_ranges: Vec::new(),
    }
}

fn group(name: &str, gid: Option<i64>) -> Group<'_> {
    Group {
        name: name.into(),
        gid,
        members: Vec::new(),
    }
}

fn users<'a>(users: Vec<User<'a>>, groups: Vec<Group<'a>>) -> Users<'a> {
    Users {
        mutable_users: true,
        users,
        groups,
        precomputed: None,
        run_time: Vec::new(),
        password_files_location: None,
    }
}

#[test]
fn names_are_checked() {
    let cases = [
        ("alice", None),
        ("_svc.x-1", None),
        ("", Some("is not a name")),
        ("..", Some("is not a name")),
        ("a:b", Some("contains ':'")),
        ("a,b", Some("contains ','")),
        ("a b", Some("contains ' '")),
        ("a\nb", Some("contains '\\n'")),
        ("+nis", Some("contains '+'")),
        ("-x", Some("starts with '-'")),
        ("1000", Some("all digits")),
        ("ä", Some("contains 'ä'")),
        ("abcdefghijabcdefghijabcdefghijab", Some("longer than 31")),
    ];
    for (name, want) in cases {
        match (check_account_name(name), want) {
            (Ok(()), None) => {}
            (Err(m), Some(w)) => assert!(m.contains(w), "{name:?}: {m}"),
            (got, want) => panic!("{name:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn every_violation_is_listed() {
    let mut bad = user("bob", Some(65_535), "nosuch");
    bad.description = "a:b".into();
    bad.home = "relative".into();
    bad.home_mode = "07777x".into();
    bad.expires = Some("2024-02-30".into());
    bad.hashed_password = Some("$6$x\nroot::0:0::/:/bin/sh".into());
    let mut second_root = user("toor", Some(0), "root");
    second_root.is_system_user = false;
    let u = users(
        vec![
            user("root", Some(0), "root"),
            bad,
            second_root,
            user("x", Some(-1), "7"),
        ],
        vec![
            group("root", Some(0)),
            group("wheel", Some(0)),
            group("wheel", Some(10)),
        ],
    );
    let p = u.problems();
    let want = [
        "user \"bob\": uid 65535 is the 16-bit \"no id\"",
        "user \"bob\": description \"a:b\" contains ':', a newline or a control character",
        "user \"bob\": hashedPassword (a hash) contains",
        "user \"bob\": home \"relative\" is not an absolute path without",
        "user \"bob\": primary group \"nosuch\" is neither a declared group nor a number",
        "user \"bob\": homeMode \"07777x\" is not octal permission bits",
        "user \"bob\": expires \"2024-02-30\" is not a real date",
        "user \"x\": uid -1 is not between 0 and 4294967294",
        "group \"wheel\" is declared 2 times",
        "gid 0 is declared for root, wheel",
        "uid 0 is declared for root, toor",
    ];
    for w in want {
        assert!(
            p.iter().any(|m| m.starts_with(w)),
            "missing {w:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), want.len(), "{p:#?}");
}

#[test]
fn subordinate_ranges_may_not_overlap_or_be_empty() {
    let mut a = user("a", None, "users");
    a.sub_uid_ranges = vec![SubUidRange {
        start_uid: 100_000,
        count: 65_536,
    }];
    let mut b = user("b", None, "users");
    b.sub_uid_ranges = vec![SubUidRange {
        start_uid: 165_535,
        count: 10,
    }];
    b.sub_gid_ranges = vec![SubGidRange {
        start_gid: 5,
        count: 0,
    }];
    let p = users(vec![a, b], vec![group("users", Some(100))]).problems();
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].contains("subUidRanges overlap: \"a\" 100000+65536 and \"b\" 165535+10"));
    assert!(p[1].contains("subGidRanges 5+0 is empty"), "{p:#?}");
}

#[test]
fn dates_are_days_since_the_epoch() {
    let cases = [
        ("1970-01-01", Some(0)),
        ("2000-03-01", Some(11_017)),
        ("2024-02-29", Some(19_782)),
        ("2023-02-29", None),
        ("2024-13-01", None),
        ("1969-12-31", None),
        ("2024-1-01", None),
        ("+024-01-01", None),
    ];
    for (date, days) in cases {
        assert_eq!(date_days(date), days, "{date}");
    }
}

#[test]
fn paths_stay_below_the_root_and_values_stay_printable() {
    let mut u = user("u", Some(1000), "root");
    u.home = "/../outside".into();
    u.create_home = true;
    u.description = "a\u{0}b".into();
    u.home_mode = "00750".into();
    let mut slash = user("s", Some(1001), "root");
    slash.home = "/".into();
    slash.create_home = true;
    let mut big = user("b", Some(1002), "root");
    big.sub_uid_ranges = vec![SubUidRange {
        start_uid: i64::MAX,
        count: i64::MAX,
    }];
    let p = users(vec![u, slash, big], vec![group("root", Some(0))]).problems();
    let want = [
        "user \"u\": description \"a\\0b\" contains ':', a newline or a control character",
        "user \"u\": home \"/../outside\" is not an absolute path without",
        "user \"s\": createHome with home \"/\" would chown the root directory",
        "user \"b\": subUidRanges 9223372036854775807+9223372036854775807 is empty or outside",
    ];
    for w in want {
        assert!(
            p.iter().any(|m| m.starts_with(w)),
            "missing {w:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), want.len(), "homeMode 00750 is fine: {p:#?}");
}

/// Subordinate ranges as (user, start, count).
type Ranges<'a> = &'a [(&'a str, i64, i64)];
/// Overlaps as reported: (earlier, later) user names.
type Overlaps<'a> = &'a [(&'a str, &'a str)];

#[test]
fn overlapping_ranges_are_found_in_any_order() {
    let cases: [(Ranges, Overlaps); 6] = [
        (&[("a", 0, 10), ("b", 10, 10)], &[]),
        (&[("b", 10, 10), ("a", 0, 11)], &[("a", "b")]),
        (
            &[("a", 0, 100), ("b", 10, 5), ("c", 20, 5)],
            &[("a", "b"), ("a", "c")],
        ),
        (
            &[("a", 0, 10), ("b", 5, 10), ("c", 12, 1)],
            &[("a", "b"), ("b", "c")],
        ),
        (&[("a", 0, 10), ("a", 9, 1)], &[("a", "a")]),
        (&[("a", 0, 10), ("b", 5, 0), ("c", 100, 1)], &[]),
    ];
    for (ranges, want) in cases {
        let mut declared: Vec<User> = Vec::new();
        for &(name, start, count) in ranges {
            if declared.last().is_none_or(|u| u.name != name) {
                declared.push(user(name, None, "users"));
            }
            let u = declared.last_mut().unwrap();
            u.sub_uid_ranges.push(SubUidRange {
                start_uid: start,
                count,
            });
        }
        let p = users(declared, vec![group("users", Some(100))]).problems();
        let got: Vec<(String, String)> = p
            .iter()
            .filter_map(|m| {
                let rest = m.strip_prefix("subUidRanges overlap: ")?;
                let names: Vec<&str> = rest.split('"').collect();
                Some((names[1].to_owned(), names[3].to_owned()))
            })
            .collect();
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        assert_eq!(got, want, "{ranges:?}: {p:#?}");
    }
}

#[test]
fn fields_that_would_break_a_line_are_refused() {
    let cases = [
        ("Alice Q. User", true),
        ("Zoë Ångström", true),
        ("a:b", false),
        ("a\nb", false),
        ("tab\there", false),
        ("del\u{7f}", false),
        ("c1 \u{85} next line", false),
    ];
    for (description, ok) in cases {
        let mut u = user("u", None, "users");
        u.description = description.into();
        let p = users(vec![u], vec![group("users", Some(100))]).problems();
        assert_eq!(p.is_empty(), ok, "{description:?}: {p:#?}");
    }
}

#[test]
fn the_manifest_form_leaves_out_defaults_and_reads_back_the_same() {
    let plain = user("plain", None, "users");
    let mut full = user("full", Some(1000), "users");
    full.description = "Full User".into();
    full.home_mode = "750".into();
    full.create_home = true;
    full.is_system_user = false;
    full.hashed_password_file = Some("/run/secrets/full".into());
    full.expires = Some("2030-01-31".into());
    full.linger = Some(false);
    full.auto_sub_uid_gid_range = true;
    full.sub_gid_ranges = vec![SubGidRange {
        start_gid: 5,
        count: 1,
    }];
    let part = users(vec![plain, full], vec![group("users", None)]);
    let text = crate::lines::to_lines(&part).unwrap();
    let back: Users = serde_json::from_str(&text).unwrap();
    assert_eq!(back, part, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(
            &r#"    {"name":"plain","group":"users","home":"/var/empty","isSystemUser":true},"#
        ),
        "{text}"
    );
    assert!(lines.contains(&r#"    {"name":"users"}"#), "{text}");
    assert!(text.contains(r#""homeMode":"750""#) && text.contains(r#""linger":false"#));
}
