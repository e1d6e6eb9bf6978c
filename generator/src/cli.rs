//! The command line of `etcflip-gen` (clap derive). Exit codes: 0 done, 1 failed (I/O),
//! 2 invalid input or bad usage (clap's own usage errors also exit 2).

use clap::{Parser, Subcommand};

use crate::Options;

/// Build etcflip generations from NixOS-style declarations.
#[derive(Debug, Parser)]
#[command(name = "etcflip-gen", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Validate the inputs and write a new generation directory (payload, manifest.json,
    /// tmpfiles.d/etcflip.conf). Every problem is listed at once; nothing is written then.
    Build(Options),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(opts) => crate::build(&opts),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;
    use std::path::PathBuf;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("etcflip-gen").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn build_takes_spec_and_or_tree() {
        let Command::Build(a) = parse(&["build", "--spec", "s.json", "--out", "g"])
            .unwrap()
            .command;
        assert_eq!(a.spec, Some(PathBuf::from("s.json")));
        let Command::Build(a) = parse(&[
            "build",
            "--nixos-etc",
            "/e",
            "--spec",
            "s",
            "--out",
            "g",
            "--overlay",
            "/x",
        ])
        .unwrap()
        .command;
        assert_eq!(a.nixos_etc, Some(PathBuf::from("/e")));
        assert_eq!(a.overlay.as_deref(), Some("/x"));
    }

    #[test]
    fn bad_usage_is_exit_2() {
        for args in [
            &["build", "--out", "g"][..],
            &["build", "--spec", "s"],
            &["frobnicate"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
