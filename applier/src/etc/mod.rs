//! `/etc`, the first domain: the link farm, the copies and the overlay link of a generation.
//!
//! `switch` runs the phases (on the transaction core, `txn/`); `gather` reads what the
//! recorded state says, `stamps` proves what a transition may skip (for a transition, in
//! `transition`), `observe` looks (read-only) at the rest, `owners` and `runtime`
//! resolve what only the root can say, `plan` decides (pure), `apply` acts, with
//! `systemd-tmpfiles` (`runner`, in `parts`) creating the new links. `legacy` takes over
//! a NixOS `setup-etc.pl` `/etc`; `verify` and `status` report drift.

pub(crate) mod apply;
pub(crate) mod carry;
pub(crate) mod evidence;
pub(crate) mod gather;
pub(crate) mod legacy;
pub(crate) mod look;
pub(crate) mod observe;
pub(crate) mod overlay;
pub(crate) mod owners;
pub(crate) mod parts;
pub(crate) mod plan;
pub(crate) mod right;
pub(crate) mod runner;
pub(crate) mod runtime;
pub(crate) mod scratch;
pub(crate) mod stamps;
pub(crate) mod status;
pub(crate) mod switch;
pub(crate) mod verify;

pub use plan::{Action, Flip, Found, OnConflict, Plan, Step};
pub use runner::find_tmpfiles;
pub use status::{status, Status};
pub use switch::{switch, Options, Outcome};
pub use verify::{verify, Drift, Report};
