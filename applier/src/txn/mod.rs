//! The transaction core, shared by every domain and ignorant of what they manage: loading the
//! generation, the lock, the journal and the applied state, signals, the flip and the commit.

pub(crate) mod children;
pub(crate) mod flip;
pub(crate) mod generation;
pub(crate) mod lock;
pub(crate) mod phase;
pub(crate) mod signals;
pub(crate) mod state;
