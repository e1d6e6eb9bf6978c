//! The `etcflip` command line.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use etcflip::errors::exit_code;
use etcflip::etc::{self, OnConflict, Options};
use etcflip::wrappers;

mod reports;
use reports::{run_boot, run_image, run_wrappers};

/// Switch /etc between generations atomically.
#[derive(Parser, Debug)]
#[command(name = "etcflip", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Make the root match GEN: create, flip, then remove what is stale and ours.
    Switch {
        #[command(flatten)]
        to: Target,
        /// What to do with paths etcflip did not make.
        #[arg(long, value_enum, default_value_t = OnConflict::Abort)]
        on_conflict: OnConflict,
        /// Leave /run/wrappers alone (`etcflip wrappers GEN` makes them later).
        #[arg(long)]
        no_wrappers: bool,
    },
    /// Make /run/wrappers hold GEN's setuid and capability wrappers, and nothing else of it.
    Wrappers {
        #[command(flatten)]
        to: Target,
    },
    /// Activation at boot: an empty /etc and /run are fine, and an image that already holds GEN
    /// gets only what lies outside it (the overlay link, the wrappers, users kept elsewhere).
    Boot {
        /// The generation directory built by etcflip-gen.
        generation: PathBuf,
        /// Operate on this root instead of / (/sysroot in an initrd).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Leave /run/wrappers alone (an initrd's writes there would be hidden by the tmpfs
        /// NixOS mounts on it; `etcflip wrappers GEN` makes them later).
        #[arg(long)]
        no_wrappers: bool,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build a read-only image's tree from GEN into DIR (new or empty), without privileges,
    /// with a pseudo file of modes and owners beside it (and a reproducible squashfs image).
    Image {
        #[command(flatten)]
        opts: etcflip::boot::image::Options,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Report every path that differs from the applied generation (exit 1 on drift).
    Verify {
        /// Operate on this root instead of /.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the applied generation and any interrupted switch.
    Status {
        /// Operate on this root instead of /.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A generation to switch a root to, and how.
#[derive(clap::Args, Debug)]
struct Target {
    /// The generation directory built by etcflip-gen.
    generation: PathBuf,
    /// Operate on this root instead of /.
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    raise_open_file_limit();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "etcflip: {err:#}");
            ExitCode::from(u8::try_from(exit_code(&err)).unwrap_or(1))
        }
    }
}

/// Raises the soft open-file limit to the hard one, as systemd advises programs that need
/// many descriptors to do (the soft limit of 1,024 exists for `select(2)`, which etcflip does
/// not use). Best effort: directory descriptors are bounded anyway (applier/src/fs/root.rs).
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Writes the report. It comes after the work, and the exit code says what happened to the
/// root: an output that cannot be written (a closed pipe, `| true`) is noted on stderr and
/// never changes that code (nor panics, as `print!` does).
fn emit(text: &str) {
    emit_with(|out| out.write_all(text.as_bytes()));
}

/// Writes a report to stdout through one buffer (a first switch of a thousand users prints
/// two thousand lines: written as they come, not gathered into one string first).
fn emit_with(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) {
    let mut out = std::io::BufWriter::with_capacity(1 << 14, std::io::stdout().lock());
    if let Err(e) = write(&mut out).and_then(|()| out.flush()) {
        let _ = writeln!(
            std::io::stderr(),
            "etcflip: the report was not written: {e}"
        );
    }
}

/// A switch's report, as text.
fn report(
    out: &mut dyn std::io::Write,
    outcome: &etc::Outcome,
    dry_run: bool,
) -> std::io::Result<()> {
    out.write_all(outcome.plan.render().as_bytes())?;
    let would = if dry_run { "would " } else { "" };
    for c in outcome.users.iter().flat_map(|u| u.changes.iter()) {
        for part in ["users: ", would, c, "\n"] {
            out.write_all(part.as_bytes())?;
        }
    }
    if let Some(w) = &outcome.wrappers {
        out.write_all(reports::wrapper_lines(w, dry_run).as_bytes())?;
    }
    if outcome.migrated {
        writeln!(
            out,
            "migrated from a setup-etc.pl /etc (/etc/static + /etc/.clean)"
        )?;
    }
    for n in &outcome.notes {
        writeln!(out, "note: {n}")?;
    }
    for u in &outcome.unresolved {
        writeln!(out, "warning: {u}")?;
    }
    for i in &outcome.incomplete {
        writeln!(out, "incomplete: {i}")?;
    }
    let refused = outcome.refused().is_some();
    writeln!(out, "{}", summary(dry_run, refused, outcome.changed))
}

fn json(v: &impl serde::Serialize) -> Result<String> {
    let mut text = serde_json::to_string_pretty(v)?;
    text.push('\n');
    Ok(text)
}

fn run(cli: Cli) -> Result<u8> {
    match cli.cmd {
        Cmd::Switch {
            to,
            on_conflict,
            no_wrappers,
        } => run_switch(
            &Options {
                generation: to.generation,
                root: to.root,
                dry_run: to.dry_run,
                on_conflict,
                no_wrappers,
                reproducible: false,
            },
            to.json,
        ),
        Cmd::Wrappers { to } => run_wrappers(
            &wrappers::command::Options {
                generation: to.generation,
                root: to.root,
                dry_run: to.dry_run,
            },
            to.json,
        ),
        Cmd::Image { opts, json } => run_image(&opts, json),
        Cmd::Boot {
            generation,
            root,
            no_wrappers,
            json,
        } => run_boot(
            &etcflip::boot::Options {
                generation,
                root,
                no_wrappers,
            },
            json,
        ),
        Cmd::Verify { root, json } => run_verify(&root, json),
        Cmd::Status { root, json } => run_status(&root, json),
    }
}

fn run_switch(opts: &Options, as_json: bool) -> Result<u8> {
    let outcome = etc::switch(opts)?;
    if as_json {
        emit(&json(&outcome)?);
    } else {
        emit_with(|out| report(out, &outcome, opts.dry_run));
    }
    let code = switch_code(&outcome, opts.dry_run);
    // The process ends now: no need to free the plan entry by entry.
    std::mem::forget(outcome);
    Ok(code)
}

/// A switch's exit code (0 done, 1 interrupted or incomplete, 3 refused), saying why on stderr.
fn switch_code(outcome: &etc::Outcome, dry_run: bool) -> u8 {
    if let Some(r) = outcome.refused() {
        let _ = writeln!(std::io::stderr(), "etcflip: {r}");
        return 3;
    }
    if let Some(i) = &outcome.interrupted {
        let _ = writeln!(std::io::stderr(), "etcflip: {i}");
        return 1;
    }
    if !outcome.incomplete.is_empty() && !dry_run {
        let _ = writeln!(
            std::io::stderr(),
            "etcflip: incomplete: what is listed above could not be applied (a runtime copy's \
             source missing, a wrapper's owner unknown); everything else was applied"
        );
        return 1;
    }
    0
}

fn run_verify(root: &std::path::Path, as_json: bool) -> Result<u8> {
    let report = etc::verify(root)?;
    if as_json {
        emit(&json(&report)?);
    } else {
        let mut text = String::new();
        for d in &report.drift {
            let _ = writeln!(
                text,
                "{}: expected {}, found {}",
                d.path, d.expected, d.found
            );
        }
        for u in &report.unresolved {
            let _ = writeln!(text, "warning: {u}");
        }
        let _ = writeln!(
            text,
            "{} difference(s) from {} (checked the overlay and {} entries)",
            report.drift.len(),
            report.generation,
            report.checked
        );
        emit(&text);
    }
    Ok(u8::from(!report.drift.is_empty()))
}

fn run_status(root: &std::path::Path, as_json: bool) -> Result<u8> {
    let st = etc::status(root)?;
    if as_json {
        emit(&json(&st)?);
        return Ok(0);
    }
    let mut text = String::new();
    match &st.generation {
        Some(g) => {
            let _ = writeln!(text, "applied: {g}");
        }
        None => text.push_str("applied: nothing\n"),
    }
    if let Some(o) = &st.overlay {
        let _ = writeln!(text, "overlay: {o}");
    }
    for (k, n) in &st.entries {
        let _ = writeln!(text, "  {n:>6} {k}");
    }
    for u in &st.unresolved {
        let _ = writeln!(text, "warning: {u}");
    }
    for h in &st.held {
        let _ = writeln!(
            text,
            "held: {h}: left for a mount point; the first switch after it is gone finishes it"
        );
    }
    for p in &st.pending {
        let _ = writeln!(
            text,
            "pending: an interrupted switch to {p}; run the switch again to finish"
        );
    }
    emit(&text);
    Ok(0)
}

fn summary(dry_run: bool, refused: bool, changed: bool) -> &'static str {
    match (dry_run, refused, changed) {
        (true, true, _) => "dry run: the switch would be refused (conflicts above)",
        (true, false, _) => "dry run: nothing was changed",
        (false, true, _) => "refused: nothing was changed",
        (false, _, true) => "switched",
        (false, _, false) => "already up to date: nothing to do",
    }
}
