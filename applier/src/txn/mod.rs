//! The transaction core, shared by every domain and ignorant of what they manage: loading the
//! generation, the lock, the journal and the applied state, the phases and signals, the flip,
//! the commit, and the child processes of a switch. It imports no domain. Of `/etc` it knows
//! where the state lives (`/etc/.etcflip`) and that the lock is taken on `/etc` itself, and
//! its state records carry, as data, what the `/etc` domain keeps with a generation (the
//! digests of runtime copies, and the mark of a switch that migrates a `setup-etc.pl` `/etc`).
//! The domains hand it the rest: how to check their payload, which of their files the state
//! directory keeps, what a killed run of theirs leaves behind.

pub(crate) mod applied;
pub(crate) mod children;
pub(crate) mod flip;
pub(crate) mod generation;
pub(crate) mod lock;
pub(crate) mod phase;
pub(crate) mod signals;
pub(crate) mod state;
