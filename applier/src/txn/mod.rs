//! The transaction core, shared by every domain and ignorant of what they manage: loading the
//! generation, the lock, the journal and the applied state, the phases and signals, the flip,
//! the commit, and the child processes of a switch. Of `/etc` it knows only where the state
//! lives (`/etc/.etcflip`) and that the lock is taken on `/etc` itself; the domains hand it
//! the rest (how to check their payload, which of their files the state directory keeps,
//! what a killed run of theirs leaves behind).

pub(crate) mod children;
pub(crate) mod flip;
pub(crate) mod generation;
pub(crate) mod lock;
pub(crate) mod phase;
pub(crate) mod signals;
pub(crate) mod state;
