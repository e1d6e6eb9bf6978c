//! Where an `etcflip-wrapper` binary holds its target: a reserved placeholder, a marker then
//! [`TARGET_BYTES`] bytes, that the generator fills in a copy of the binary ([`patch`]) and the
//! wrapper reads at run time ([`target_of`]). No compiler is needed to make a wrapper, and the
//! target's path lies in the copy as plain bytes, where Nix's reference scanner finds it.
//!
//! The marker appears once in a wrapper binary: in its placeholder, whose initial bytes
//! [`placeholder`] gives at compile time. Nothing at run time compares against it.

use sha2::{Digest as _, Sha256};

/// Marks the placeholder (its bytes are found nowhere else in a wrapper binary).
pub const MARK: &[u8; 32] = b"\0etcflip-wrapper target v1\0\0\0\0\0\0";

/// Room for the target: its path and a terminating NUL.
pub const TARGET_BYTES: usize = 4096;

/// The placeholder's length.
pub const PLACEHOLDER_BYTES: usize = MARK.len() + TARGET_BYTES;

/// The placeholder as a wrapper binary is built with it: the marker, then no target.
pub const fn placeholder() -> [u8; PLACEHOLDER_BYTES] {
    let mut out = [0u8; PLACEHOLDER_BYTES];
    let mut i = 0;
    while i < MARK.len() {
        out[i] = MARK[i];
        i += 1;
    }
    out
}

/// The target a placeholder holds (its bytes as [`placeholder`] laid them out and [`patch`]
/// filled them); `None` when it was never filled.
pub fn target_of(placeholder: &[u8]) -> Option<&[u8]> {
    let area = placeholder.get(MARK.len()..)?;
    let end = area.iter().position(|&b| b == 0)?;
    (end > 0).then(|| &area[..end])
}

/// Writes `target` into the one placeholder of `binary`, an unpatched `etcflip-wrapper`.
pub fn patch(binary: &mut [u8], target: &str) -> Result<(), String> {
    if !target.starts_with('/') || target.contains('\0') || target.len() >= TARGET_BYTES {
        return Err(format!(
            "a wrapper's target must be an absolute path of fewer than {TARGET_BYTES} bytes \
             without NUL, not {target:?}"
        ));
    }
    let at = one_mark(binary)?;
    let area = &mut binary[at + MARK.len()..at + PLACEHOLDER_BYTES];
    if area.iter().any(|&b| b != 0) {
        return Err("this wrapper already holds a target (patch an unpatched one)".into());
    }
    area[..target.len()].copy_from_slice(target.as_bytes());
    Ok(())
}

/// A patched copy that others are compared with: comparing costs a fraction of hashing, so a
/// generation's wrappers are checked by hashing one and comparing the others with it.
#[derive(Debug, Clone)]
pub struct Reference {
    bytes: Vec<u8>,
    /// Where its placeholder starts.
    at: usize,
    /// sha256's state after the bytes before the placeholder, which every copy shares: the
    /// placeholder lies near the end of the binary, so a copy's hash costs its last pages.
    prefix: Sha256,
}

impl Reference {
    /// `bytes`, a patched copy that must hold `target`.
    pub fn new(bytes: Vec<u8>, target: &str) -> Result<Reference, String> {
        let at = one_mark(&bytes)?;
        holds(&bytes, target, at)?;
        let mut prefix = Sha256::new();
        prefix.update(&bytes[..at]);
        Ok(Reference { bytes, at, prefix })
    }

    /// Where its placeholder starts.
    pub fn at(&self) -> usize {
        self.at
    }

    /// The sha256 of the copy with `target`, as [`crate::hash::sha256_bytes`] gives it.
    pub fn sha256_of(&self, target: &str) -> String {
        let (_, area, after) = self.parts(target);
        let mut h = self.prefix.clone();
        h.update(&area);
        h.update(after);
        crate::hash::hex(&h.finalize())
    }

    /// The copy with `target` (of which [`Reference::alike`] approved one): the bytes before
    /// the placeholder, the placeholder holding `target`, the bytes after it.
    pub fn parts(&self, target: &str) -> (&[u8], Vec<u8>, &[u8]) {
        let mut area = placeholder().to_vec();
        let room = &mut area[MARK.len()..];
        let n = target.len().min(room.len() - 1);
        room[..n].copy_from_slice(&target.as_bytes()[..n]);
        let end = self.at + PLACEHOLDER_BYTES;
        (&self.bytes[..self.at], area, &self.bytes[end..])
    }

    /// Whether `copy` is this reference with `target` in its placeholder: equal outside the
    /// placeholder, which holds the marker, `target` and zeros.
    pub fn alike(&self, copy: &[u8], target: &str) -> Result<(), String> {
        let reference = &self.bytes;
        if copy.len() != reference.len() {
            return Err(format!(
                "{} bytes, where the other wrappers have {}",
                copy.len(),
                reference.len()
            ));
        }
        let (at, end) = (self.at, self.at + PLACEHOLDER_BYTES);
        if copy[..at] != reference[..at] || copy[end..] != reference[end..] {
            return Err("differs from the other wrappers outside its target placeholder".into());
        }
        if copy[at..at + MARK.len()] != MARK[..] {
            return Err("differs from the other wrappers outside its target placeholder".into());
        }
        holds(copy, target, at)
    }
}

/// Whether the placeholder at `at` holds exactly `target`.
fn holds(binary: &[u8], target: &str, at: usize) -> Result<(), String> {
    let area = binary
        .get(at..at + PLACEHOLDER_BYTES)
        .ok_or("its target placeholder is cut short")?;
    let rest = &area[MARK.len()..];
    // A NUL must end the target: a target filling the area would be read back cut short.
    let exact = rest.starts_with(target.as_bytes())
        && rest.get(target.len()) == Some(&0)
        && rest[target.len()..].iter().all(|&b| b == 0);
    if exact {
        Ok(())
    } else {
        Err(format!("its placeholder does not hold exactly {target:?}"))
    }
}

/// Where the placeholder starts: the marker must be there exactly once, with room after it.
fn one_mark(binary: &[u8]) -> Result<usize, String> {
    let mut found = memchr::memmem::find_iter(binary, MARK);
    match (found.next(), found.next()) {
        (Some(at), None) if at + PLACEHOLDER_BYTES <= binary.len() => Ok(at),
        (None, _) => Err("not an etcflip-wrapper binary: it has no target placeholder".into()),
        (Some(_), Some(_)) => Err("not an etcflip-wrapper binary: two target placeholders".into()),
        (Some(_), None) => {
            Err("not an etcflip-wrapper binary: its placeholder is cut short".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary: some bytes, the placeholder, some bytes.
    fn binary() -> Vec<u8> {
        let mut b = b"ELF...code".to_vec();
        b.extend_from_slice(&placeholder());
        b.extend_from_slice(b"...more");
        b
    }

    fn area(b: &[u8]) -> &[u8] {
        let at = one_mark(b).unwrap();
        &b[at..at + PLACEHOLDER_BYTES]
    }

    #[test]
    fn a_patched_placeholder_holds_its_target_and_an_unpatched_one_none() {
        let mut b = binary();
        assert_eq!(target_of(area(&b)), None, "never filled");
        patch(&mut b, "/nix/store/abc-sudo/bin/sudo").unwrap();
        assert_eq!(
            target_of(area(&b)),
            Some(&b"/nix/store/abc-sudo/bin/sudo"[..])
        );
        assert!(b.ends_with(b"...more") && b.starts_with(b"ELF...code"));
        assert_eq!(b.len(), binary().len(), "patched in place");
        let longest = format!("/{}", "x".repeat(TARGET_BYTES - 2));
        let mut b = binary();
        patch(&mut b, &longest).unwrap();
        assert_eq!(target_of(area(&b)), Some(longest.as_bytes()));
    }

    #[test]
    fn bad_targets_and_bad_binaries_are_refused() {
        let too_long = format!("/{}", "x".repeat(TARGET_BYTES - 1));
        for target in ["", "sudo", "./sudo", "/bin/su\0do", too_long.as_str()] {
            let mut b = binary();
            let err = patch(&mut b, target).unwrap_err();
            assert!(err.contains("absolute path"), "{target:?}: {err}");
            assert_eq!(b, binary(), "{target:?}: nothing written");
        }
        let mut twice = binary();
        patch(&mut twice, "/bin/a").unwrap();
        assert!(patch(&mut twice, "/bin/b")
            .unwrap_err()
            .contains("already holds"));
        let cases: [(Vec<u8>, &str); 3] = [
            (b"no placeholder here".to_vec(), "no target placeholder"),
            ([binary(), binary()].concat(), "two target placeholders"),
            (binary()[..10 + MARK.len() + 20].to_vec(), "cut short"),
        ];
        for (mut b, want) in cases {
            let err = patch(&mut b, "/bin/true").unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn a_copy_is_checked_against_another_patched_copy() {
        type Edit = fn(&mut Vec<u8>, usize);
        let patched = |t: &str| {
            let mut b = binary();
            patch(&mut b, t).unwrap();
            b
        };
        let reference = patched("/nix/store/a-sudo/bin/sudo");
        let at = one_mark(&reference).unwrap();
        let ok = patched("/nix/store/a-sudo/bin/sudoedit");
        let r = Reference::new(reference.clone(), "/nix/store/a-sudo/bin/sudo").unwrap();
        assert_eq!(r.alike(&ok, "/nix/store/a-sudo/bin/sudoedit"), Ok(()));
        assert_eq!(r.alike(&reference, "/nix/store/a-sudo/bin/sudo"), Ok(()));
        let cases: [(&str, Edit, &str); 6] = [
            (
                "a byte before",
                |b, _| b[0] ^= 1,
                "outside its target placeholder",
            ),
            (
                "a byte after",
                |b, _| *b.last_mut().unwrap() ^= 1,
                "outside its target placeholder",
            ),
            (
                "a byte longer",
                |b, _| b.push(0),
                "bytes, where the other wrappers have",
            ),
            (
                "another target",
                |b, at| b[at + MARK.len() + 1] = b'x',
                "does not hold exactly",
            ),
            (
                "junk after the target",
                |b, at| b[at + PLACEHOLDER_BYTES - 1] = 1,
                "does not hold exactly",
            ),
            (
                "a broken marker",
                |b, at| b[at + 3] ^= 1,
                "outside its target placeholder",
            ),
        ];
        for (what, edit, want) in cases {
            let mut copy = ok.clone();
            edit(&mut copy, at);
            let err = r
                .alike(&copy, "/nix/store/a-sudo/bin/sudoedit")
                .unwrap_err();
            assert!(err.contains(want), "{what}: {err}");
        }
        // The same bytes as the reference, but declared with another target; a reference
        // that does not hold its own.
        let err = r.alike(&reference, "/bin/other").unwrap_err();
        assert!(err.contains("does not hold exactly"), "{err}");
        let err = Reference::new(reference.clone(), "/bin/other")
            .err()
            .unwrap();
        assert!(err.contains("does not hold exactly"), "{err}");
        // What a copy is made of: the reference around the placeholder holding its target,
        // and its hash, from the state after the shared bytes.
        let (before, area, after) = r.parts("/nix/store/a-sudo/bin/sudoedit");
        assert_eq!([before, &area[..], after].concat(), ok);
        let sha = r.sha256_of("/nix/store/a-sudo/bin/sudoedit");
        assert_eq!(sha, crate::hash::sha256_bytes(&ok));
        // A target that fills the whole area has no NUL after it: never taken as held.
        let full = format!("/{}", "x".repeat(TARGET_BYTES - 1));
        let mut b = binary();
        let at = one_mark(&b).unwrap();
        b[at + MARK.len()..at + PLACEHOLDER_BYTES].copy_from_slice(full.as_bytes());
        assert!(holds(&b, &full, at).is_err());
    }
}
