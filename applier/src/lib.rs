//! etcflip, the runtime applier: makes a root's `/etc` match a generation built by
//! `etcflip-gen`, switching so that readers see the old `/etc` or the new one, never a mix.
//!
//! The crate owns the generation format ([`manifest`]) and its tmpfiles encoding
//! ([`tmpfiles`]); the generator depends on both.
//!
//! Layout: [`switch`] runs the phases; [`observe`] looks (read-only), [`plan`] decides (pure),
//! [`apply`] acts; every file-system access goes through [`rootfs::Root`].

pub mod apply;
pub mod borrowed;
pub mod errors;
pub mod evidence;
pub mod generation;
pub mod legacy;
pub mod manifest;
pub mod mapped;
pub mod observe;
pub mod parts;
pub mod plan;
pub mod rootfs;
pub mod runner;
pub mod signals;
pub mod state;
pub mod switch;
pub mod tmpfiles;
pub mod verify;
