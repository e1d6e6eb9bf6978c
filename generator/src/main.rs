//! `etcflip-gen`: thin entry point; everything else is in the library.

use std::process::ExitCode;

use clap::Parser as _;
use etcflip_format::errors::exit_code;
use etcflip_gen::cli::{run, Cli};

fn main() -> ExitCode {
    // clap prints usage errors itself and exits 2.
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole chain, once; an `Invalid` anywhere in it means exit 2.
            eprintln!("etcflip-gen: {err:#}");
            ExitCode::from(u8::try_from(exit_code(&err)).unwrap_or(1))
        }
    }
}
