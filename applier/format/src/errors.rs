//! The invalid-input error: a spec, a generation or a manifest that breaks the format's rules,
//! every violation at once. Both binaries exit 2 for it (see the applier's `errors.rs`).

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

/// The exit code for an error chain as far as the format knows it: 2 when an [`Invalid`] is
/// anywhere in it, else 1. (The applier adds 3 for a refused switch: its `errors.rs`.)
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<Invalid>().is_some() {
        2
    } else {
        1
    }
}
