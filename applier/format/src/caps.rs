//! Capabilities as `cap_from_text(3)` writes them, for `security.wrappers`' `capabilities`
//! (issue 11): whitespace-separated clauses, each a comma-separated list of names (none: all of
//! them) followed by operators (`=`, `+`, `-`) with flags (`e`, `i`, `p`). NixOS hands the text
//! to `setcap`, with `cap_setpcap` added for its own wrapper; here a declared `cap_setpcap` is an
//! error, because a wrapper never passes it on (and `all` means all the others).

/// The file capability sets a text gives, as 64-bit masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

/// `security.capability`'s `magic_etc`: the revision in the top byte, the effective flag in
/// the lowest bit (`<linux/capability.h>`).
const REVISION_MASK: u32 = 0xff00_0000;
const REVISION_1: u32 = 0x0100_0000;
const REVISION_2: u32 = 0x0200_0000;
const REVISION_3: u32 = 0x0300_0000;
const EFFECTIVE: u32 = 0x0000_0001;

impl Sets {
    /// The `security.capability` value that grants these sets: revision 2 (the kernel writes
    /// revision 3 only for a file owned inside a user namespace). The effective flag stands
    /// for all of them, as [`parse`] ensures.
    pub fn to_xattr(&self) -> [u8; 20] {
        let words = [
            REVISION_2 | if self.effective == 0 { 0 } else { EFFECTIVE },
            low(self.permitted),
            low(self.inheritable),
            high(self.permitted),
            high(self.inheritable),
        ];
        let mut out = [0u8; 20];
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// The sets a `security.capability` value (revision 1, 2 or 3) grants; an error for a
    /// value the kernel would not accept either. The effective set is all the others when the
    /// effective flag is set.
    pub fn from_xattr(value: &[u8]) -> Result<Sets, String> {
        let word = |i: usize| -> u64 {
            value.get(4 * i..4 * i + 4).map_or(0, |b| {
                u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            })
        };
        if value.len() < 4 {
            return Err("a security.capability value shorter than its header".into());
        }
        let magic = u32::try_from(word(0)).unwrap_or(0);
        let (len, words) = match magic & REVISION_MASK {
            REVISION_1 => (12, 1),
            REVISION_2 => (20, 2),
            REVISION_3 => (24, 2),
            other => {
                return Err(format!(
                    "security.capability of unknown revision {other:#x}"
                ))
            }
        };
        if value.len() != len {
            return Err(format!(
                "a security.capability value of {} bytes, not {len}",
                value.len()
            ));
        }
        let mut sets = Sets::default();
        for i in 0..words {
            sets.permitted |= word(1 + 2 * i) << (32 * i);
            sets.inheritable |= word(2 + 2 * i) << (32 * i);
        }
        if magic & EFFECTIVE != 0 {
            sets.effective = sets.permitted | sets.inheritable;
        }
        Ok(sets)
    }
}

fn low(mask: u64) -> u32 {
    u32::try_from(mask & 0xffff_ffff).unwrap_or(0)
}

fn high(mask: u64) -> u32 {
    u32::try_from(mask >> 32).unwrap_or(0)
}

/// The capabilities by number, as `<linux/capability.h>` names them (without `cap_`).
pub const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// `CAP_SETPCAP`: the one capability a wrapper never passes on.
pub const SETPCAP: u32 = 8;

/// The sets `text` gives; every problem in it at once (unknown names, `cap_setpcap`, bad
/// operators or flags), each naming what is wrong.
pub fn parse(text: &str) -> Result<Sets, Vec<String>> {
    let mut sets = Sets::default();
    let mut problems = Vec::new();
    for clause in text.split_whitespace() {
        if let Err(mut p) = apply(clause, &mut sets) {
            problems.append(&mut p);
        }
    }
    let granted = sets.permitted | sets.inheritable;
    if problems.is_empty() && sets.effective != 0 && sets.effective != granted {
        // The attribute holds one effective flag for all of them (setcap refuses this too).
        problems.push(format!(
            "{text:?}: the effective set must be empty or all of the permitted and \
             inheritable capabilities"
        ));
    }
    if problems.is_empty() {
        Ok(sets)
    } else {
        Err(problems)
    }
}

/// One clause applied to `sets`.
fn apply(clause: &str, sets: &mut Sets) -> Result<(), Vec<String>> {
    let at = clause.find(['=', '+', '-']).ok_or_else(|| {
        vec![format!(
            "{clause:?} has no operator (=, + or -) and flags (e, i, p)"
        )]
    })?;
    let (names, mut actions) = clause.split_at(at);
    let caps = names_mask(names)?;
    while let Some(op) = actions.chars().next() {
        let end = actions[1..]
            .find(['=', '+', '-'])
            .map_or(actions.len(), |i| i + 1);
        let flags = &actions[1..end];
        if let Some(bad) = flags.chars().find(|c| !matches!(c, 'e' | 'i' | 'p')) {
            return Err(vec![format!("{clause:?}: {bad:?} is not a flag (e, i, p)")]);
        }
        for (flag, set) in [
            ('e', &mut sets.effective),
            ('i', &mut sets.inheritable),
            ('p', &mut sets.permitted),
        ] {
            let given = flags.contains(flag);
            *set = match (op, given) {
                // `=` sets exactly the flags it names, for these capabilities.
                ('+' | '=', true) => *set | caps,
                ('-', true) | ('=', false) => *set & !caps,
                _ => *set,
            };
        }
        actions = &actions[end..];
    }
    Ok(())
}

/// The capabilities a comma-separated list names (empty or `all`: every one).
fn names_mask(names: &str) -> Result<u64, Vec<String>> {
    if names.is_empty() || names.eq_ignore_ascii_case("all") {
        return Ok(((1u64 << NAMES.len()) - 1) & !(1 << SETPCAP));
    }
    let mut mask = 0;
    let mut problems = Vec::new();
    for name in names.split(',') {
        match number(name) {
            Some(SETPCAP) => problems
                .push("cap_setpcap is never passed on by a wrapper: leave it out".to_owned()),
            Some(n) => mask |= 1 << n,
            None => problems.push(format!("{name:?} is not a capability")),
        }
    }
    if problems.is_empty() {
        Ok(mask)
    } else {
        Err(problems)
    }
}

/// A capability's number: `cap_net_raw` (any case) or a number the kernel may know.
fn number(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    if let Some(short) = lower.strip_prefix("cap_") {
        return (0..).zip(NAMES).find(|(_, n)| *n == short).map(|(i, _)| i);
    }
    name.parse().ok().filter(|&n: &u32| n < 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(e: u64, p: u64, i: u64) -> Sets {
        Sets {
            effective: e,
            permitted: p,
            inheritable: i,
        }
    }

    #[test]
    fn texts_give_the_sets_setcap_would_write() {
        let all = ((1u64 << NAMES.len()) - 1) & !(1 << 8);
        let raw = 1u64 << 13;
        let time = 1u64 << 25;
        let cases = [
            ("cap_net_raw+ep", sets(raw, raw, 0)),
            ("CAP_NET_RAW+pe", sets(raw, raw, 0)),
            (
                "cap_net_raw,cap_sys_time+ep",
                sets(raw | time, raw | time, 0),
            ),
            ("cap_net_raw+eip-i", sets(raw, raw, 0)),
            (
                "cap_net_raw+ei cap_sys_time+ep",
                sets(raw | time, time, raw),
            ),
            (
                "cap_net_raw,cap_sys_time+p cap_sys_time=p",
                sets(0, raw | time, 0),
            ),
            ("=ep", sets(all, all, 0)),
            ("all+p", sets(0, all, 0)),
            ("40+ep", sets(1 << 40, 1 << 40, 0)),
            ("cap_checkpoint_restore+p", sets(0, 1 << 40, 0)),
            ("", sets(0, 0, 0)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let cases: [(&str, &[&str]); 8] = [
            (
                "cap_setpcap,cap_net_raw+ep",
                &["cap_setpcap is never passed on"],
            ),
            ("8+ep", &["cap_setpcap is never passed on"]),
            (
                "cap_nope+ep cap_net_raw+eq cap_x,cap_y+p",
                &[
                    "\"cap_nope\" is not a capability",
                    "'q' is not a flag",
                    "\"cap_x\" is not a capability",
                    "\"cap_y\" is not a capability",
                ],
            ),
            ("cap_net_raw", &["has no operator"]),
            // As setcap(8) refuses them: one effective flag covers every capability.
            (
                "cap_net_raw+ep cap_sys_time+i",
                &["the effective set must be"],
            ),
            (
                "cap_net_raw+ep cap_sys_time+p",
                &["the effective set must be"],
            ),
            (
                "cap_net_raw,cap_sys_time+ep cap_sys_time=p",
                &["the effective set must be"],
            ),
            ("64+ep", &["\"64\" is not a capability"]),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_err();
            assert_eq!(got.len(), want.len(), "{text:?}: {got:?}");
            for (g, w) in got.iter().zip(want) {
                assert!(g.contains(w), "{text:?}: {g}");
            }
        }
    }

    #[test]
    fn sets_go_through_the_attribute_and_back() {
        for text in [
            "cap_net_raw+ep",
            "cap_net_raw,40+p",
            "cap_net_raw+ei cap_sys_time+ei",
            "=ep",
        ] {
            let want = parse(text).unwrap();
            let value = want.to_xattr();
            assert_eq!(Sets::from_xattr(&value), Ok(want), "{text:?}");
        }
        // As the kernel lays it out: revision 2, effective, permitted low/high words.
        let v = parse("cap_net_raw,40+ep").unwrap().to_xattr();
        assert_eq!(v[..4], [1, 0, 0, 2]);
        assert_eq!(u32::from_le_bytes([v[4], v[5], v[6], v[7]]), 1 << 13);
        assert_eq!(u32::from_le_bytes([v[12], v[13], v[14], v[15]]), 1 << 8);
    }
}
