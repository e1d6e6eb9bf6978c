//! The `/etc` part of a generation: every step that knows about `/etc` entries lives here, so
//! that other parts of a generation can sit beside it with the spec, the declarations and the
//! writing of the generation shared at the top of the crate.

mod assemble;
mod glob;
pub(crate) mod nixos_etc;
pub(crate) mod payload;
mod resolve;
pub(crate) mod snippet;
mod source;

pub(crate) use assemble::{assemble, Assembled};
