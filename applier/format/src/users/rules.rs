//! The rules of a `users` part, every violation listed: names, fields that end up in
//! colon-separated files, ids, primary groups, dates and subordinate ranges.

use std::collections::{HashMap, HashSet};

use super::{Group, User, Users};

/// The largest id a user or group may have: 2^32 − 2 (2^32 − 1 is "no id", `(uid_t) -1`).
const MAX_ID: i64 = 4_294_967_294;
/// The 16-bit "no id" (`(uint16_t) -1`), which old interfaces still read as "none".
const ID_16_NONE: i64 = 65_535;

impl Users<'_> {
    /// Every violation of the rules, empty when the part is valid.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let groups: HashSet<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
        for u in &self.users {
            let own = user_problems(u, &groups);
            out.extend(own.into_iter().map(|m| format!("user {:?}: {m}", u.name)));
        }
        for g in &self.groups {
            let own = group_problems(g);
            out.extend(own.into_iter().map(|m| format!("group {:?}: {m}", g.name)));
        }
        let users = self.users.iter().map(|u| (u.name.as_str(), u.uid));
        out.extend(duplicates("user", "uid", users));
        let groups = self.groups.iter().map(|g| (g.name.as_str(), g.gid));
        out.extend(duplicates("group", "gid", groups));
        out.extend(overlaps(self));
        out
    }
}

/// Checks a user or group name: what `useradd` accepts, and nothing a colon-separated file or
/// `chown` could misread.
pub fn check_account_name(n: &str) -> Result<(), String> {
    if n.is_empty() || n == "." || n == ".." {
        return Err(format!("{n:?} is not a name"));
    }
    if n.len() > 31 {
        return Err(format!("name {n:?} is longer than 31 bytes"));
    }
    if let Some(c) = n
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "name {n:?} contains {c:?} (names use only A-Z, a-z, 0-9, '_', '.' and '-')"
        ));
    }
    if n.starts_with('-') {
        return Err(format!("name {n:?} starts with '-'"));
    }
    if n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("name {n:?} is all digits (it would read as an id)"));
    }
    Ok(())
}

fn user_problems(u: &User, groups: &HashSet<&str>) -> Vec<String> {
    let mut out = Vec::new();
    if let Err(m) = check_account_name(&u.name) {
        out.push(m);
    }
    if let Some(uid) = u.uid {
        out.extend(id_problem("uid", uid));
    }
    let verbatim = [
        ("description", Some(&u.description)),
        ("home", Some(&u.home)),
        ("shell", u.shell.as_ref()),
        ("hashedPassword", u.hashed_password.as_ref()),
        ("initialHashedPassword", u.initial_hashed_password.as_ref()),
        ("hashedPasswordFile", u.hashed_password_file.as_ref()),
    ];
    for (field, value) in verbatim {
        let Some(v) = value.filter(|v| breaks_a_line(v)) else {
            continue;
        };
        // A hash is never printed, not even in an error.
        let shown = if field.ends_with("Password") {
            "(a hash)".to_owned()
        } else {
            format!("{v:?}")
        };
        out.push(format!(
            "{field} {shown} contains ':', a newline or a control character"
        ));
    }
    for (field, value) in [
        ("home", Some(&u.home)),
        ("shell", u.shell.as_ref()),
        ("hashedPasswordFile", u.hashed_password_file.as_ref()),
    ] {
        if let Some(v) = value.filter(|v| !is_canonical_absolute(v)) {
            out.push(format!(
                "{field} {v:?} is not an absolute path without '.', '..' or empty components"
            ));
        }
    }
    if u.create_home && u.home.trim_end_matches('/').is_empty() {
        out.push("createHome with home \"/\" would chown the root directory".into());
    }
    if u.group.is_empty() {
        out.push("no primary group".into());
    } else if !groups.contains(u.group.as_str()) && !u.group.bytes().all(|b| b.is_ascii_digit()) {
        out.push(format!(
            "primary group {:?} is neither a declared group nor a number",
            u.group
        ));
    }
    // NixOS takes 1 to 5 octal digits; the value must still fit the permission bits.
    let mode_ok = (1..=5).contains(&u.home_mode.len())
        && u.home_mode.bytes().all(|b| (b'0'..=b'7').contains(&b))
        && u32::from_str_radix(&u.home_mode, 8).is_ok_and(|m| m <= 0o7777);
    if !mode_ok {
        out.push(format!(
            "homeMode {:?} is not octal permission bits (at most 07777)",
            u.home_mode
        ));
    }
    if let Some(e) = u.expires.as_deref().filter(|e| date_days(e).is_none()) {
        out.push(format!("expires {e:?} is not a real date (YYYY-MM-DD)"));
    }
    out
}

fn group_problems(g: &Group) -> Vec<String> {
    let mut out = Vec::new();
    if let Err(m) = check_account_name(&g.name) {
        out.push(m);
    }
    if let Some(gid) = g.gid {
        out.extend(id_problem("gid", gid));
    }
    for m in &g.members {
        if let Err(why) = check_account_name(m) {
            out.push(format!("member: {why}"));
        }
    }
    out
}

fn id_problem(what: &str, id: i64) -> Option<String> {
    match id {
        ..0 | 4_294_967_295.. => Some(format!("{what} {id} is not between 0 and {MAX_ID}")),
        ID_16_NONE => Some(format!(
            "{what} 65535 is the 16-bit \"no id\" ((uint16_t) -1)"
        )),
        _ => None,
    }
}

/// Names that repeat, and static ids that two names share.
fn duplicates<'a>(
    what: &str,
    id: &str,
    items: impl Iterator<Item = (&'a str, Option<i64>)>,
) -> Vec<String> {
    // Hashed, not ordered: thousands of names, checked on every switch; the few repeated
    // ones are sorted for the message. Ids are sorted as pairs: no allocation per id.
    let items = items.into_iter();
    let mut names: HashMap<&str, usize> = HashMap::with_capacity(items.size_hint().0);
    let mut ids: Vec<(i64, &str)> = Vec::with_capacity(items.size_hint().0);
    for (name, n) in items {
        *names.entry(name).or_default() += 1;
        if let Some(n) = n {
            ids.push((n, name));
        }
    }
    let mut repeated: Vec<(&str, usize)> = names.into_iter().filter(|(_, n)| *n > 1).collect();
    repeated.sort_unstable();
    let mut out: Vec<String> = (repeated.into_iter())
        .map(|(name, count)| format!("{what} {name:?} is declared {count} times"))
        .collect();
    // Stable: the names sharing an id are listed in declaration order.
    ids.sort_by_key(|&(n, _)| n);
    for shared in ids.chunk_by(|a, b| a.0 == b.0).filter(|c| c.len() > 1) {
        let names: Vec<&str> = shared.iter().map(|&(_, name)| name).collect();
        out.push(format!(
            "{id} {} is declared for {}",
            shared[0].0,
            names.join(", ")
        ));
    }
    out
}

/// Subordinate ranges: empty ones, ones past 2^32, and ranges two users share.
fn overlaps(users: &Users) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, ranges) in [
        ("subUidRanges", sub_ranges(users, true)),
        ("subGidRanges", sub_ranges(users, false)),
    ] {
        for (name, start, count) in &ranges {
            if *count < 1 || *start < 0 || start.saturating_add(*count) > MAX_ID + 2 {
                out.push(format!(
                    "user {name:?}: {kind} {start}+{count} is empty or outside 0..2^32"
                ));
            }
        }
        out.extend(shared(kind, ranges));
    }
    out
}

/// Ranges two users share, each reported with the earlier range it overlaps (sorted by start,
/// so that thousands of ranges cost a sort, not every pair).
fn shared(kind: &str, mut ranges: Vec<(&str, i64, i64)>) -> Vec<String> {
    ranges.sort_by_key(|&(name, start, count)| (start, count, name));
    let mut out = Vec::new();
    // The range reaching furthest so far: what a later range overlaps if it starts before its end.
    let mut reach: Option<(&str, i64, i64)> = None;
    for (b, sb, cb) in ranges {
        if let Some((a, sa, ca)) = reach {
            if sb < sa.saturating_add(ca) && cb > 0 && ca > 0 {
                out.push(format!(
                    "{kind} overlap: {a:?} {sa}+{ca} and {b:?} {sb}+{cb}"
                ));
            }
        }
        let end = sb.saturating_add(cb);
        if reach.is_none_or(|(_, sa, ca)| end > sa.saturating_add(ca)) {
            reach = Some((b, sb, cb));
        }
    }
    out
}

fn sub_ranges<'u>(users: &'u Users, uids: bool) -> Vec<(&'u str, i64, i64)> {
    let mut out = Vec::new();
    for u in &users.users {
        if uids {
            out.extend(
                u.sub_uid_ranges
                    .iter()
                    .map(|r| (u.name.as_str(), r.start_uid, r.count)),
            );
        } else {
            out.extend(
                u.sub_gid_ranges
                    .iter()
                    .map(|r| (u.name.as_str(), r.start_gid, r.count)),
            );
        }
    }
    out
}

/// Whether `v` holds a `:` or a control character (a newline among them), which would break a
/// line of a colon-separated file. Checked byte by byte, since the manifest is read on every
/// switch; only text that is not ASCII goes through `char::is_control` (C1 controls).
#[allow(clippy::needless_bitwise_bool)] // `|`, not `||`: no branch, so the loop is vectorised
fn breaks_a_line(v: &str) -> bool {
    // A fold, not `any`: without the early exit the loop is vectorised.
    v.bytes()
        .fold(false, |bad, b| bad | (b == b':') | (b < 0x20) | (b == 0x7f))
        || (!v.is_ascii() && v.chars().any(char::is_control))
}

/// Whether `p` is absolute with no empty, `.` or `..` component (a home made with it must stay
/// below the root).
fn is_canonical_absolute(p: &str) -> bool {
    p.strip_prefix('/').is_some_and(|rest| {
        rest.is_empty()
            || rest
                .trim_end_matches('/')
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..")
    })
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (shadow's expiry field); `None` unless it is
/// a real date from 1970 on.
pub fn date_days(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse::<i64>().ok())?
    };
    let (y, m, d) = (num(&date[..4])?, num(&date[5..7])?, num(&date[8..])?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let days_in_month = *month_days.get(usize::try_from(m).ok()?.checked_sub(1)?)?;
    if y < 1970 || d < 1 || d > days_in_month {
        return None;
    }
    // Days from 1970-01-01 to y-m-d (the civil-date algorithm, March-based years).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}
