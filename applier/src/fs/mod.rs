//! The filesystem layer: everything the applier does to a root goes through `Root`, opened
//! once as a directory fd. Paths below it are walked component by component with
//! `O_NOFOLLOW | O_DIRECTORY` and acted on through the parent's fd, so a link etcflip did not
//! create is never followed, and a live system and a test's temporary root take the same code
//! path. Paths given to `Root` are relative to the root, `/`-separated, canonical
//! (`etc/ssh/x`).
//!
//! - `root`: the handle and its directory cache; `node`: what is at a path (`Node`);
//! - `read`, `write` (atomic replacement included), `remove`: the operations;
//! - `mapped`: files mapped read-only; `statx`: the one stat call; `mounts`: mount
//!   points below a directory; `lock`: `flock` and `fcntl` record locks.

pub mod lock;
pub(crate) mod mapped;
pub(crate) mod mounts;
pub(crate) mod node;
pub(crate) mod read;
pub(crate) mod remove;
pub(crate) mod root;
pub(crate) mod statx;
pub(crate) mod write;
pub(crate) mod xattr;

pub(crate) use node::Node;
pub use read::sha256_bytes;
pub(crate) use read::{read_regular, Ends};
pub(crate) use root::{join, split, Root};
pub(crate) use write::{as_written, temp_name, Owner};
