//! etcflip, the runtime applier: makes a root's `/etc` match a generation built by
//! `etcflip-gen`, switching so that readers see the old `/etc` or the new one, never a mix.
//!
//! The generation format ([`manifest`], [`borrowed`], [`tmpfiles`]) lives in the applier's own
//! format crate, `applier/format` (`etcflip-format`), re-exported here; the generator depends
//! on that crate alone, not on this one.
//!
//! Layout: [`switch`] runs the phases; [`stamps`] proves what a transition may skip (for a
//! transition, in [`transition`]), [`observe`] looks (read-only) at the rest, [`owners`] and
//! [`runtime`] resolve what only the root can say, [`plan`] decides (pure), [`apply`] acts;
//! every file-system access goes through [`rootfs::Root`] (its one stat call: [`statx`]).

pub use etcflip_format::{borrowed, manifest, tmpfiles};

pub mod apply;
pub mod errors;
pub mod evidence;
pub mod gather;
pub mod generation;
pub mod legacy;
pub mod lock;
pub mod mapped;
pub mod mounts;
pub mod observe;
pub mod owners;
pub mod parts;
pub mod plan;
pub mod rootfs;
pub mod runner;
pub mod runtime;
pub mod scratch;
pub mod signals;
pub mod stamps;
pub mod state;
pub mod status;
pub mod statx;
pub mod switch;
pub mod transition;
pub mod verify;
