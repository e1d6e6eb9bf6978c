//! The `/etc` part of a generation: every step that knows about `/etc` entries lives here, so
//! that other parts of a generation can sit beside it with the spec, the declarations and the
//! writing of the generation shared at the top of the crate.
//!
//! - `nixos_etc.rs` imports a NixOS etc tree into declarations (a spec's `etc` object is read by
//!   `spec.rs`, since the spec holds every part);
//! - `resolve.rs` checks each declaration on its own (with `source.rs` for sources and owners,
//!   `glob.rs` for glob sources) and turns it into leaves, the entries that are not directories;
//! - `assemble.rs` applies the rules between entries and implies the directories: an
//!   [`Assembled`], the manifest and the payload texts, which is all `write.rs` needs;
//! - `payload.rs` writes `GEN/etc`, and `snippet.rs` renders the tmpfiles lines that make the
//!   `/etc` link farm; `write.rs` calls both.

mod assemble;
mod glob;
pub(crate) mod nixos_etc;
pub(crate) mod payload;
mod resolve;
pub(crate) mod snippet;
mod source;

pub(crate) use assemble::{assemble, Assembled};
