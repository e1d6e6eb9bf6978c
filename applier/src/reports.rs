//! The reports of `etcflip wrappers`, `boot` and `image` (`main.rs` has the command line and
//! the reports of `switch`, `verify` and `status`).

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Result;
use etcflip::wrappers;

use super::{emit, emit_with, json, report};

/// A wrappers report's lines: what changes (or would, in a dry run), then the notes. (A
/// switch lists the wrappers left out with its own incomplete parts.)
pub(crate) fn wrapper_lines(w: &wrappers::Report, dry_run: bool) -> String {
    let would = if dry_run { "would " } else { "" };
    let mut text = String::new();
    for c in &w.changes {
        let _ = writeln!(text, "wrappers: {would}{c}");
    }
    for n in &w.notes {
        let _ = writeln!(text, "note: {n}");
    }
    text
}

/// [`wrapper_lines`], then the wrappers left out because an owner resolves nowhere: the
/// report of the wrappers phase run on its own (`etcflip wrappers`, `boot` on an image).
fn wrapper_lines_alone(w: &wrappers::Report, dry_run: bool) -> String {
    let mut text = wrapper_lines(w, dry_run);
    for u in &w.unresolved {
        let _ = writeln!(text, "incomplete: {u}");
    }
    text
}

/// The exit code a wrappers report gives (`etcflip wrappers`, and `boot` on an image): 3 for a
/// refusal (said on stderr), 1 when a wrapper was left out, else 0.
fn wrappers_code(w: &wrappers::Report, dry_run: bool) -> u8 {
    if let Some(c) = &w.clash {
        let _ = writeln!(std::io::stderr(), "etcflip: refused: {c}");
        return 3;
    }
    u8::from(!w.unresolved.is_empty() && !dry_run)
}

pub(crate) fn run_wrappers(opts: &wrappers::command::Options, as_json: bool) -> Result<u8> {
    let report = wrappers::command::apply(opts)?;
    if as_json {
        emit(&json(&report)?);
    } else {
        let mut text = String::new();
        if let Some(r) = &report {
            text.push_str(&wrapper_lines_alone(r, opts.dry_run));
        }
        let summary = match &report {
            None => "the generation declares no wrappers: nothing to do",
            Some(r) if r.clash.is_some() => "refused: nothing was changed",
            Some(_) if opts.dry_run => "dry run: nothing was changed",
            Some(r) if r.current() => "already up to date: nothing to do",
            Some(_) => "switched",
        };
        let _ = writeln!(text, "{summary}");
        emit(&text);
    }
    Ok(report.map_or(0, |r| wrappers_code(&r, opts.dry_run)))
}

pub(crate) fn run_boot(opts: &etcflip::boot::Options, as_json: bool) -> Result<u8> {
    use etcflip::boot::Booted;
    let booted = etcflip::boot::boot(opts)?;
    if as_json {
        emit(&json(&booted)?);
    }
    match booted {
        Booted::Switch(outcome) => {
            if !as_json {
                emit_with(|out| report(out, &outcome, false));
            }
            Ok(super::switch_code(&outcome, false))
        }
        Booted::Refused(why) => {
            let _ = writeln!(std::io::stderr(), "etcflip: refused: {why}");
            Ok(3)
        }
        Booted::Image {
            overlay,
            users,
            wrappers,
        } => {
            if !as_json {
                let mut text = String::new();
                let _ = match &overlay {
                    Some(o) => writeln!(text, "overlay: {o}"),
                    None => writeln!(text, "overlay: already in place"),
                };
                for c in users.iter().flat_map(|u| u.changes.iter()) {
                    let _ = writeln!(text, "users: {c}");
                }
                if let Some(w) = &wrappers {
                    text.push_str(&wrapper_lines_alone(w, false));
                }
                text.push_str(
                    "booted: /etc already holds this generation; nothing written below it\n",
                );
                emit(&text);
            }
            Ok(wrappers.map_or(0, |w| wrappers_code(&w, false)))
        }
    }
}

pub(crate) fn run_image(opts: &etcflip::boot::image::Options, as_json: bool) -> Result<u8> {
    let built = etcflip::boot::image::image(opts)?;
    if as_json {
        emit(&json(&built)?);
    } else {
        emit_with(|out| {
            report(out, &built.outcome, false)?;
            writeln!(out, "pseudo file: {}", built.pseudo.display())?;
            if let Some(image) = &built.squashfs {
                writeln!(out, "squashfs image: {}", image.display())?;
            }
            if let Some(image) = &built.erofs {
                writeln!(out, "erofs image: {}", image.display())?;
            }
            Ok(())
        });
    }
    let code = super::switch_code(&built.outcome, false);
    if code == 0 && !built.outcome.unresolved.is_empty() {
        // A read-only image is never switched again: an owner left to a later switch never
        // comes.
        let _ = writeln!(
            std::io::stderr(),
            "etcflip: incomplete: owners above resolve nowhere in the image's passwd/group; \
             those files are root's in it"
        );
        return Ok(1);
    }
    Ok(code)
}
