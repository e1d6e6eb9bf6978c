//! What `etcflip verify` reports, whichever domain found it: one path that differs from the
//! applied generation. The domains (`etc/verify.rs`, `wrappers/verify.rs`) each make these;
//! here so that neither imports the other's.

use serde::Serialize;

/// One path that differs from the applied generation.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Drift {
    /// The path in the root's namespace.
    pub path: String,
    /// What the applied generation made there.
    pub expected: String,
    /// What is there now.
    pub found: String,
}
