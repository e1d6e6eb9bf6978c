//! The users part of a generation, parsed and checked on a second core while the switch
//! opens and locks the root and reads its state: for 1,000 users that is about half a
//! millisecond a first switch (or any switch to another generation) no longer waits for.
//! A re-switch whose users are sealed (see `seal.rs`) never asks for the result; the thread
//! is then left to finish or to end with the process.

use std::thread::JoinHandle;

use anyhow::{anyhow, Result};

use etcflip_format::manifest::{users_part, Manifest};
use etcflip_format::users::Users;

/// The users part being parsed, until it is taken.
pub(crate) struct Ahead(Option<JoinHandle<Result<Option<Users<'static>>>>>);

impl Ahead {
    /// Starts parsing the users part of `text`, the manifest at `origin` (named in errors).
    pub(crate) fn start(origin: String, text: &'static str) -> Ahead {
        let parse = move || match Manifest::users_text(text) {
            Some(part) => users_part(part, &origin).map(Some),
            None => Ok(None),
        };
        Ahead(std::thread::Builder::new().spawn(parse).ok())
    }

    /// The users part, parsed and checked (`None`: the manifest has none, or the thread could
    /// not be started: the caller parses it then).
    pub(crate) fn take(&mut self) -> Option<Result<Option<Users<'static>>>> {
        let handle = self.0.take()?;
        Some(
            handle.join().unwrap_or_else(|_| {
                Err(anyhow!("internal: the thread parsing the users panicked"))
            }),
        )
    }
}
