//! `/etc`, the first domain: the link farm, the copies and the overlay link of a generation.
//!
//! [`switch`] runs the phases (on the transaction core, `txn/`); [`gather`] reads what the
//! recorded state says, [`stamps`] proves what a transition may skip (for a transition, in
//! [`transition`]), [`observe`] looks (read-only) at the rest, [`owners`] and [`runtime`]
//! resolve what only the root can say, [`plan`] decides (pure), [`apply`] acts, with
//! `systemd-tmpfiles` ([`runner`], in [`parts`]) creating the new links. [`legacy`] takes over
//! a NixOS `setup-etc.pl` `/etc`; [`verify`] and [`status`] report drift.

pub mod apply;
pub mod carry;
pub mod evidence;
pub mod gather;
pub mod legacy;
pub mod look;
pub mod observe;
pub mod overlay;
pub mod owners;
pub mod parts;
pub mod plan;
pub mod right;
pub mod runner;
pub mod runtime;
pub mod scratch;
pub mod stamps;
pub mod status;
pub mod switch;
pub mod transition;
pub mod verify;
