//! The transaction core, shared by every domain and ignorant of what they manage: loading the
//! generation, the lock, the journal and the applied state, signals, the flip and the commit.

pub mod children;
pub mod flip;
pub mod generation;
pub mod lock;
pub mod phase;
pub mod signals;
pub mod state;
