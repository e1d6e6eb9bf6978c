//! etcflip, the runtime applier: makes a root's `/etc` match a generation built by
//! `etcflip-gen`, switching so that readers see the old `/etc` or the new one, never a mix.
//!
//! Three layers (ARCHITECTURE.md draws them and follows one switch through them):
//! - [`fs`], the filesystem layer: the root handle every file-system access goes through,
//!   mapped files, atomic writes, mount points, locks;
//! - `txn`, the transaction core, which uses no domain: the generation, the lock, the journal
//!   and the applied state, phases and signals, the flip, the commit, child processes;
//! - one folder per domain: [`etc`], the link farm and copies of `/etc`; [`users`], the user
//!   database; [`wrappers`], the setuid and capability wrappers of `/run/wrappers`.
//!
//! The generation format ([`manifest`], [`borrowed`], [`tmpfiles`]) lives in the applier's own
//! format crate, `applier/format` (`etcflip-format`), re-exported here; the generator depends
//! on that crate alone, not on this one.

pub use etcflip_format::{borrowed, manifest, tmpfiles};

pub mod boot;
pub mod conflict;
pub mod drift;
pub mod errors;
pub mod etc;
pub mod fs;
pub(crate) mod txn;
pub mod users;
pub mod wrappers;
