//! Error kinds that map to the documented exit codes. Everything else is exit 1.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | failed (before the flip nothing visible changed; the journal lets a rerun finish) |
//! | 2 | bad usage or invalid input ([`Invalid`]) |
//! | 3 | conflicts refused, nothing changed ([`Refused`]) |

use std::fmt;

pub use etcflip_format::errors::Invalid;

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
    if err.downcast_ref::<Refused>().is_some() {
        3
    } else {
        etcflip_format::errors::exit_code(err)
    }
}
