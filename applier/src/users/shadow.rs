//! `/etc/shadow`: each declared user's password field and expiry, planned with NixOS's
//! precedence, and never re-salted.
//!
//! - With `mutableUsers`, an existing user keeps its field, whatever is declared: its
//!   password is its own once it exists (`passwd` may have changed it), as in NixOS.
//! - Otherwise `hashedPasswordFile` (read under the root at switch time) wins, then
//!   `password`; then `hashedPassword`, else the hash of `initialPassword`, else
//!   `initialHashedPassword`, else `!` (locked), for a new user and for an existing one alike
//!   (NixOS's module makes the initial password the default of the password without
//!   `mutableUsers`; `update-users-groups.pl` alone would lock it at the second activation).
//! - A plaintext password is hashed with SHA-512 crypt, as NixOS does; when the field already
//!   holds a hash of that very password, it is kept, so an unchanged password never churns.
//!   The salt is random, except in an image's plan (a seed: see [`salt`]), so that one
//!   generation gives one image, byte for byte.
//! - `expires` is written in days since the epoch.
//!
//! A password file that is missing, empty, or holds `:` or a newline is an error naming the
//! user: nothing is written (a file with two lines would otherwise inject a shadow line).

use std::borrow::Cow;

use sha_crypt::{PasswordHasher as _, PasswordVerifier as _, ShaCrypt};

use super::files::Entry;
use etcflip_format::users::{date_days, User};

/// What a planned shadow field is made of, to report without showing a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The field on the root, kept.
    Kept,
    /// `hashedPassword` or `initialHashedPassword`.
    Declared,
    /// A plaintext password, hashed (or its existing hash kept).
    Hashed,
    /// Read from `hashedPasswordFile`.
    File(String),
    /// Locked (`!`): no password declared.
    Locked,
}

impl Source {
    /// How a change line names it.
    pub(crate) fn label(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Source::Kept => "kept",
            Source::Declared => "the declared hash",
            Source::Hashed => "the declared password, hashed",
            Source::File(path) => return Cow::Owned(format!("the hash in {path}")),
            Source::Locked => "locked (no password declared)",
        })
    }
}

/// Reads a password file under the root: `Ok(None)` when it is missing.
pub(crate) type ReadFile<'a> = &'a mut dyn FnMut(&str) -> anyhow::Result<Option<Vec<u8>>>;

/// The password field of `u` (whose field on the root is `old`), and where it comes from; an
/// error names the user.
pub(crate) fn password<'u>(
    u: &'u User,
    (old, mutable): (Option<&'u str>, bool),
    read: ReadFile,
    seed: Option<&super::Seed>,
) -> Result<(Cow<'u, str>, Source), String> {
    let salted = Salted {
        seed,
        user: &u.name,
    };
    if let (Some(field), true) = (old, mutable) {
        return Ok((Cow::Borrowed(field), Source::Kept));
    }
    if let Some(path) = &u.hashed_password_file {
        let hash = from_file(path, read).map_err(|why| format!("user {}: {why}", u.name))?;
        return Ok((Cow::Owned(hash), Source::File(path.to_string())));
    }
    if let Some(plain) = &u.password {
        return Ok((Cow::Owned(hashed(plain, old, salted)?), Source::Hashed));
    }
    match (old, &u.hashed_password) {
        (Some(_), Some(h)) => Ok((Cow::Borrowed(h.as_str()), Source::Declared)),
        // Without mutableUsers, NixOS's module makes the initial password the default of the
        // password itself: so here, and a declaration says the same at every switch (a
        // second switch would otherwise lock what the first one set).
        (Some(_), None) => initial(u, old, salted),
        (None, _) => initial(u, None, salted),
    }
}

/// Where a new hash's salt comes from: the seed and the user, or (no seed) randomness.
#[derive(Clone, Copy)]
struct Salted<'s> {
    seed: Option<&'s super::Seed>,
    user: &'s str,
}

/// A new user's field (`old`: the field of an existing one without `mutableUsers`, kept when
/// it is the hash of its initial password).
fn initial<'u>(
    u: &'u User,
    old: Option<&str>,
    salted: Salted,
) -> Result<(Cow<'u, str>, Source), String> {
    if let Some(h) = &u.hashed_password {
        return Ok((Cow::Borrowed(h.as_str()), Source::Declared));
    }
    if let Some(plain) = &u.initial_password {
        return Ok((Cow::Owned(hashed(plain, old, salted)?), Source::Hashed));
    }
    Ok(match &u.initial_hashed_password {
        Some(h) => (Cow::Borrowed(h.as_str()), Source::Declared),
        None => (Cow::Borrowed("!"), Source::Locked),
    })
}

/// The hash of `plain`: `old` when it already is one of it, else a new SHA-512 crypt hash.
fn hashed(plain: &str, old: Option<&str>, salted: Salted) -> Result<String, String> {
    let crypt = ShaCrypt::SHA512;
    if let Some(old) = old.filter(|o| o.starts_with("$6$")) {
        if crypt.verify_password(plain.as_bytes(), old).is_ok() {
            return Ok(old.to_owned());
        }
    }
    let salt = salt(salted).map_err(|e| format!("cannot make a salt: {e}"))?;
    crypt
        .hash_password_with_salt(plain.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash a password: {e}"))
}

/// 12 bytes: the crate writes them as 16 characters of crypt's alphabet, the longest salt
/// SHA-crypt uses (a longer one would be cut by glibc, and the hash would not match).
///
/// Random, unless a seed is given (an image): then the first 12 bytes of
/// sha256(seed, user name). The seed is the generation's manifest digest, so salts differ
/// between users and between generations (no table precomputed for one system serves
/// another), and one generation always gives the same `shadow`. The plaintext itself is in that
/// generation already, readable wherever the generation is.
fn salt(salted: Salted) -> std::io::Result<[u8; 12]> {
    let mut bytes = [0u8; 12];
    if let Some(seed) = salted.seed {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(seed);
        h.update(salted.user.as_bytes());
        bytes.copy_from_slice(&h.finalize()[..12]);
        return Ok(bytes);
    }
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes)
}

/// A hash read from `path` (one trailing newline dropped).
fn from_file(path: &str, read: ReadFile) -> Result<String, String> {
    let bytes = match read(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(format!("hashedPasswordFile {path} is missing")),
        Err(e) => return Err(format!("hashedPasswordFile {path}: {e:#}")),
    };
    let text =
        String::from_utf8(bytes).map_err(|_| format!("hashedPasswordFile {path} is not UTF-8"))?;
    let hash = text.strip_suffix('\n').unwrap_or(&text);
    if hash.is_empty() {
        return Err(format!("hashedPasswordFile {path} is empty"));
    }
    if hash.contains([':', '\n', '\r']) {
        return Err(format!(
            "hashedPasswordFile {path} holds ':' or more than one line"
        ));
    }
    Ok(hash.to_owned())
}

/// The shadow entry of `u`: its old one with the new password field and expiry, or a new one
/// (last change on day 1, as NixOS writes it).
pub(crate) fn entry(u: &User, field: &str, old: Option<&Entry>) -> Entry {
    let expire = u
        .expires
        .as_deref()
        .and_then(date_days)
        .map(|d| d.to_string())
        .unwrap_or_default();
    let new = ["", "", "1", "", "", "", "", "", ""];
    let set_expiry = u.expires.is_some() || old.is_none();
    Entry::new((0..new.len()).map(|i| match i {
        0 => u.name.as_str(),
        1 => field,
        7 if set_expiry => &expire,
        _ => old.map_or(new[i], |o| &o[i]),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANDOM: Salted = Salted {
        seed: None,
        user: "alice",
    };

    /// The hash is what the system's own crypt(3) (glibc's, through perl) computes for the same
    /// password and salt: logins will accept it.
    #[test]
    fn hashes_are_what_the_system_crypt_makes() {
        let hash = hashed("correct horse", None, RANDOM).unwrap();
        assert!(hash.starts_with("$6$") && hash.len() > 90, "{hash}");
        assert_eq!(system_crypt("correct horse", &hash), hash);
        assert_ne!(
            hashed("correct horse", None, RANDOM).unwrap(),
            hash,
            "a new salt each time"
        );
        assert_eq!(
            hashed("correct horse", Some(&hash), RANDOM).unwrap(),
            hash,
            "kept when it matches"
        );
        assert_ne!(hashed("other", Some(&hash), RANDOM).unwrap(), hash);
    }

    /// With a seed (an image), one generation gives one hash per user, a valid one, and
    /// different users or generations get different salts.
    #[test]
    fn a_seed_gives_the_same_salt_for_the_same_user_and_generation_only() {
        const ONE: [u8; 32] = [1; 32];
        const TWO: [u8; 32] = [2; 32];
        let with = |seed: &'static [u8; 32], user: &'static str| {
            let salted = Salted {
                seed: Some(seed),
                user,
            };
            hashed("pw", None, salted).unwrap()
        };
        let salt = |hash: &str| hash.rsplit('$').nth(1).unwrap().to_owned();
        let hash = with(&ONE, "alice");
        assert_eq!(system_crypt("pw", &hash), hash);
        assert_eq!(salt(&hash).len(), 16, "{hash}");
        assert_eq!(with(&ONE, "alice"), hash);
        for other in [with(&ONE, "bob"), with(&TWO, "alice")] {
            assert_ne!(salt(&other), salt(&hash));
        }
    }

    /// glibc's crypt(3), through perl, of `plain` with the salt of `hash`.
    fn system_crypt(plain: &str, hash: &str) -> String {
        let out = std::process::Command::new("perl")
            .args(["-e", "print crypt($ARGV[0], $ARGV[1])", plain, hash])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
