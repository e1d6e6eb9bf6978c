//! etcflip, the runtime applier: makes a root's `/etc` match a generation built by
//! `etcflip-gen`, switching so that readers see the old `/etc` or the new one, never a mix.
//!
//! The crate owns the generation format ([`manifest`]) and its tmpfiles encoding
//! ([`tmpfiles`]); the generator depends on both.

pub mod errors;
pub mod manifest;
pub mod tmpfiles;
