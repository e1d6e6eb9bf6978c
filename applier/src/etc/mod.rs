//! `/etc`, the first domain: the link farm, the copies and the overlay link of a generation.
//!
//! One switch, in order: `switch` (phases 0 and 1, on the transaction core in `txn/`) asks
//! `gather` what the recorded state says (for a transition, `gather/transition.rs` and
//! `stamps` prove what may be skipped); `look` has `observe` look (read-only) at the rest,
//! with `owners` and `runtime` resolving what only the root can say; `plan` decides (pure);
//! `carry` runs phases 2 to 9, where `apply` acts, with `systemd-tmpfiles` (`runner`, in
//! `parts`) creating the new links, and `overlay` moves the flip point. `right` is the one
//! answer to "is this path what its entry wants?". `legacy` takes over a NixOS
//! `setup-etc.pl` `/etc`; `payload` checks a generation's `GEN/etc`; `verify` and `status`
//! report drift.

pub(crate) mod apply;
pub(crate) mod carry;
pub(crate) mod evidence;
pub(crate) mod gather;
pub(crate) mod legacy;
pub(crate) mod look;
pub(crate) mod observe;
pub(crate) mod outcome;
pub(crate) mod overlay;
pub(crate) mod owners;
pub(crate) mod parts;
pub(crate) mod payload;
pub(crate) mod plan;
pub(crate) mod right;
pub(crate) mod runner;
pub(crate) mod runtime;
pub(crate) mod scratch;
pub(crate) mod stamps;
pub(crate) mod status;
pub(crate) mod switch;
pub(crate) mod verify;

pub use outcome::Outcome;
pub use plan::{Action, Flip, Found, OnConflict, Plan, Step};
pub use runner::find_tmpfiles;
pub use status::{status, Status};
pub use switch::{switch, Options};
pub use verify::{verify, Drift, Report};

/// The state directory's files besides `applied.json` and the journal: the stamps, the
/// runtime-copy key and the users' seal. A killed run's sweep keeps them; all are
/// machine-local, so an image leaves them out.
pub(crate) const LOCAL_STATE: [&str; 3] =
    [stamps::FILE, runtime::KEY_FILE, crate::users::seal::FILE];
