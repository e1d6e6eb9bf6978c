//! The exec of a wrapper's target: `execve(2)` itself, never `execvp` (which `std`'s `Command`
//! uses), whose fallback would run a file the kernel refuses (`ENOEXEC`: a truncated or foreign
//! binary, a script without `#!`) with `/bin/sh`, privileges and all.
//!
//! One of the audited `unsafe` spots (see the workspace's `Cargo.toml`): SIGPIPE, which Rust's
//! runtime ignores at start, is set back to its default before the exec, as `Command` does (an
//! ignored signal stays ignored across `execve`).

#![allow(unsafe_code)]

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};

use nix::sys::signal::{signal, SigHandler, Signal};

/// Execs `target` with `argv` (as given, `argv[0]` included) and the variables `env`; returns
/// only why it could not.
pub(crate) fn exec(
    target: &OsStr,
    argv: impl Iterator<Item = OsString>,
    env: impl Iterator<Item = (OsString, OsString)>,
) -> nix::Error {
    // Neither the kernel's argv and environment nor the placeholder's target hold a NUL.
    let c = |bytes: Vec<u8>| CString::new(bytes).unwrap_or_default();
    let path = c(target.as_bytes().to_vec());
    let argv: Vec<CString> = argv.map(|a| c(a.into_vec())).collect();
    let env: Vec<CString> = env
        .map(|(name, value)| {
            let mut pair = name.into_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            c(pair)
        })
        .collect();
    // SAFETY: SIG_DFL installs no handler, and this process runs nothing else before the exec.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    match nix::unistd::execve(&path, &argv, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}
