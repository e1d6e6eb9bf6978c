//! Error kinds that map to the documented exit codes. Everything else is exit 1.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | failed (before the flip nothing visible changed; the journal lets a rerun finish) |
//! | 2 | bad usage or invalid input ([`Invalid`]) |
//! | 3 | conflicts refused, nothing changed ([`Refused`]) |

use std::fmt;

/// Invalid input (a spec, a generation, a manifest): every violation at once. Exit 2.
#[derive(Debug)]
pub struct Invalid {
    /// What was being read.
    pub origin: String,
    /// One line per violation.
    pub problems: Vec<String>,
}

impl Invalid {
    /// A single problem, already naming its origin.
    pub fn one(problem: String) -> Invalid {
        Invalid {
            origin: String::new(),
            problems: vec![problem],
        }
    }

    /// Several problems found in `origin`.
    pub fn many(origin: &str, problems: Vec<String>) -> Invalid {
        Invalid {
            origin: origin.to_owned(),
            problems,
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.origin.is_empty() && self.problems.len() == 1 {
            return f.write_str(&self.problems[0]);
        }
        write!(
            f,
            "{} is invalid ({} problem{}):",
            self.origin,
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// The switch was refused because of conflicts; nothing was changed. Exit 3.
#[derive(Debug)]
pub struct Refused {
    /// One line per conflicting path, with the reason.
    pub conflicts: Vec<String>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused: {} path{} not ours (nothing was changed; rerun with --on-conflict backup \
             or overwrite to replace them):",
            self.conflicts.len(),
            if self.conflicts.len() == 1 {
                " is"
            } else {
                "s are"
            }
        )?;
        for c in &self.conflicts {
            write!(f, "\n  - {c}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

/// The exit code for an error chain.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<Invalid>().is_some() {
        2
    } else if err.downcast_ref::<Refused>().is_some() {
        3
    } else {
        1
    }
}
