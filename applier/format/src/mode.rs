//! File modes as `chmod(1)` writes them, for `security.wrappers`' `permissions` (issue 11):
//! octal (`"4755"`, `"0511"`) or symbolic clauses (`"u+rx,g+x,o+x"`, NixOS's default), applied
//! to a file whose mode starts at `0000`, as NixOS's activation does after its `chmod 0000`.
//!
//! One difference from `chmod`: a clause naming no class (`"+x"`) means `a` without the umask,
//! because a switch sets the mode it declares, whatever umask it runs under.

/// Whether `text` is an octal mode (which sets every bit) rather than symbolic clauses.
pub fn is_octal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// The mode `text` gives a file whose mode is `base`: octal replaces it, symbolic clauses
/// change it (NixOS's `chmod u+s,g-s,<permissions>` on a wrapper at `0000`).
pub fn apply_to(text: &str, base: u32) -> Result<u32, String> {
    if is_octal(text) {
        return match u32::from_str_radix(text, 8) {
            Ok(mode) if text.len() <= 4 && mode <= 0o7777 => Ok(mode),
            _ => Err(format!(
                "{text:?} is not an octal mode (at most 4 digits, 0-7)"
            )),
        };
    }
    let mut mode = base;
    for clause in text.split(',') {
        mode = apply(clause, mode).map_err(|why| format!("{text:?}: {why}"))?;
    }
    Ok(mode)
}

/// The bits of each class: (read, write, execute, set-id).
const CLASSES: [(char, [u32; 4]); 3] = [
    ('u', [0o400, 0o200, 0o100, 0o4000]),
    ('g', [0o040, 0o020, 0o010, 0o2000]),
    ('o', [0o004, 0o002, 0o001, 0]),
];
const STICKY: u32 = 0o1000;

/// `mode` after one symbolic clause: classes, then operators each with permissions.
fn apply(clause: &str, mut mode: u32) -> Result<u32, String> {
    let ops_at = clause
        .find(['+', '-', '='])
        .ok_or_else(|| format!("clause {clause:?} has no operator (+, - or =)"))?;
    let (who, mut rest) = clause.split_at(ops_at);
    let mut classes = [false; 3];
    for c in who.chars() {
        match c {
            'a' => classes = [true; 3],
            _ => match CLASSES.iter().position(|(name, _)| *name == c) {
                Some(i) => classes[i] = true,
                None => return Err(format!("clause {clause:?}: {c:?} is not u, g, o or a")),
            },
        }
    }
    if who.is_empty() {
        classes = [true; 3];
    }
    while let Some(op) = rest.chars().next() {
        let perms_end = rest[1..]
            .find(['+', '-', '='])
            .map_or(rest.len(), |i| i + 1);
        let perms = &rest[1..perms_end];
        let bits = bits(perms, mode, classes).map_err(|c| {
            format!("clause {clause:?}: {c:?} is not one of r, w, x, X, s, t, u, g, o")
        })?;
        let all: u32 = (0..3)
            .filter(|&i| classes[i])
            .map(|i| CLASSES[i].1.iter().sum::<u32>())
            .sum::<u32>()
            | if classes[2] { STICKY } else { 0 };
        mode = match op {
            '+' => mode | bits,
            '-' => mode & !bits,
            _ => (mode & !all) | bits,
        };
        rest = &rest[perms_end..];
    }
    Ok(mode)
}

/// The bits `perms` stands for in `classes`, given the mode so far; the first character that
/// is not a permission, if any.
fn bits(perms: &str, mode: u32, classes: [bool; 3]) -> Result<u32, char> {
    let mut out = 0;
    for p in perms.chars() {
        // A copy (`g=u`): the permissions another class has now, given to these.
        let copied = CLASSES
            .iter()
            .find(|(name, _)| *name == p)
            .map(|(_, b)| [0, 1, 2].map(|k| mode & b[k] != 0));
        for (i, (_, b)) in CLASSES.iter().enumerate().filter(|&(i, _)| classes[i]) {
            let any_x = mode & 0o111 != 0;
            out |= match (p, copied) {
                (_, Some(rwx)) => (0..3).filter(|&k| rwx[k]).map(|k| b[k]).sum(),
                ('r', _) => b[0],
                ('w', _) => b[1],
                ('x', _) => b[2],
                ('X', _) if any_x => b[2],
                ('s', _) => b[3],
                ('t', _) if i == 2 => STICKY,
                // X without an execute bit yet, t for u or g: nothing (as chmod).
                ('X' | 't', _) => 0,
                (other, _) => return Err(other),
            };
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_what_chmod_makes_of_0000() {
        // (text, mode): each as chmod(1) (coreutils 9.1, umask 0) makes it of a file at 0000.
        let cases = [
            ("u+rx,g+x,o+x", 0o511),
            ("u+rwx,g+rx,o+rx", 0o755),
            ("u+rx,g+x,o+x,u+s", 0o4511),
            ("u=rwx,g=rx,o=", 0o750),
            ("a+rx", 0o555),
            ("+x", 0o111),
            ("u+rwx,g=u,o=g-w", 0o775),
            ("u+r,u+w,u-w", 0o400),
            ("ug+s,u+x", 0o6100),
            ("o+t,a+r", 0o1444),
            ("u+X", 0),
            ("u+x,go+X", 0o111),
            ("u+rw-w+x", 0o500),
            ("u+s,u=rx", 0o500),
            ("g+s,g=x", 0o010),
            ("o+t,o=r", 0o004),
            ("a+t,a=r", 0o444),
            ("+t", 0o1000),
            ("u+t", 0),
            ("u+s,g=u", 0o4000),
            ("755", 0o755),
            ("0511", 0o511),
            ("4755", 0o4755),
            ("0", 0),
        ];
        for (text, want) in cases {
            assert_eq!(apply_to(text, 0), Ok(want), "{text} = {want:o}");
        }
    }

    #[test]
    fn anything_else_is_refused_naming_what_is_wrong() {
        let cases = [
            ("", "no operator"),
            ("u", "no operator"),
            ("u+rx,", "no operator"),
            ("z+x", "'z' is not u, g, o or a"),
            ("u+q", "'q' is not one of"),
            ("u+rx,g+y", "'y' is not one of"),
            ("8", "not an octal mode"),
            ("17777", "not an octal mode"),
            ("07777x", "no operator"),
        ];
        for (text, want) in cases {
            let err = apply_to(text, 0).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
