//! `etcflip-wrapper`: the binary behind every setuid, setgid and capability wrapper in
//! `/run/wrappers/bin`. The generator writes each wrapper's target into a copy of it
//! (`etcflip_format::wrapper`); at run time it
//! 1. reads that target, and refuses to run a copy that names none;
//! 2. raises its file capabilities into the inheritable and ambient sets (`caps.rs`);
//! 3. drops the environment the dynamic loader must not see (`env.rs`), itself: a capability
//!    wrapper's target is not run `AT_SECURE`;
//! 4. execs the target with its own argv, `argv[0]` included (`exec.rs`); if that fails, says
//!    so, naming the target, and exits 1.
//!
//! A setuid or setgid wrapper needs nothing more: the kernel passes the effective ids on, and
//! the target runs `AT_SECURE`. The wrapper depends on no path of its own: it reads its file's
//! capabilities through `/proc/self/exe` (without `/proc` it raises none), and it also runs
//! under `no_new_privs` or from a `nosuid` mount, with what the kernel granted.

mod caps;
mod env;
mod exec;

use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

use etcflip_format::wrapper::{placeholder, target_of, PLACEHOLDER_BYTES};

/// The placeholder the generator fills in each copy. Atomic bytes: read from memory at run
/// time, never folded in at compile time (where they say "no target").
static TARGET: [AtomicU8; PLACEHOLDER_BYTES] = atomic(&placeholder());

const fn atomic(bytes: &[u8; PLACEHOLDER_BYTES]) -> [AtomicU8; PLACEHOLDER_BYTES] {
    let mut out = [const { AtomicU8::new(0) }; PLACEHOLDER_BYTES];
    let mut i = 0;
    while i < PLACEHOLDER_BYTES {
        out[i] = AtomicU8::new(bytes[i]);
        i += 1;
    }
    out
}

fn main() -> ExitCode {
    let bytes: Vec<u8> = TARGET.iter().map(|b| b.load(Ordering::Relaxed)).collect();
    let Some(target) = target_of(&bytes).map(OsStr::from_bytes) else {
        return fail(format_args!(
            "this copy names no target (etcflip-gen writes one into each wrapper it makes); \
             refusing to run"
        ));
    };
    if let Err(e) = caps::raise() {
        return fail(format_args!(
            "cannot raise the capabilities of the wrapper of {}: {e}",
            target.display()
        ));
    }
    let env = std::env::vars_os().filter(|(name, _)| !env::is_unsafe(name));
    let e = exec::exec(target, std::env::args_os(), env);
    fail(format_args!("cannot run {}: {e}", target.display()))
}

fn fail(why: std::fmt::Arguments) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "etcflip-wrapper: {why}");
    ExitCode::from(1)
}
