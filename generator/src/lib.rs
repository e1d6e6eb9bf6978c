//! etcflip-gen: builds an etcflip generation (payload, manifest, tmpfiles snippet) from a spec
//! and/or an existing NixOS `etc` tree.
//!
//! The pipeline, one module per step:
//! 1. [`spec`] and [`nixos_etc`] read the inputs into [`decl::Decl`]s (structural checks);
//! 2. [`resolve`] applies the per-entry rules (targets, modes, owners, sources, [`glob`]s);
//! 3. [`plan`] applies the rules between entries and implies directories, giving the manifest;
//! 4. [`write`] writes the generation all at once ([`snippet`] renders the tmpfiles lines).
//!
//! Every problem of steps 1–3 is collected and reported together as one
//! [`etcflip::errors::Invalid`] before anything is written. The manifest format and the tmpfiles
//! encoding belong to the applier crate `etcflip`; this crate only uses them.

pub mod cli;
pub mod decl;
pub mod glob;
pub mod nixos_etc;
pub mod plan;
pub mod resolve;
pub mod snippet;
pub mod source;
pub mod spec;
pub mod write;

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use etcflip::errors::Invalid;
use etcflip::manifest::{check_overlay, DEFAULT_OVERLAY};

use crate::decl::Decl;
use crate::plan::Plan;
use crate::resolve::{resolve, Context};

/// What `etcflip-gen build` was asked to do (its command line, too).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).multiple(true).args(["spec", "nixos_etc"])))]
pub struct Options {
    /// The spec: a JSON object with `etc` (NixOS's environment.etc) and `overlay`.
    #[arg(long, value_name = "SPEC.json")]
    pub spec: Option<PathBuf>,
    /// Import an existing NixOS etc derivation output (DIR, or DIR/etc if it exists); merged
    /// with the spec when both are given.
    #[arg(long, value_name = "DIR")]
    pub nixos_etc: Option<PathBuf>,
    /// The generation directory to create; it must not exist (missing parents are created).
    #[arg(long, value_name = "GEN")]
    pub out: PathBuf,
    /// The flip point (absolute), overriding the spec's `overlay`; default /etc/static.
    #[arg(long, value_name = "PATH")]
    pub overlay: Option<String>,
}

/// Validates the inputs and writes the generation to `opts.out`.
pub fn build(opts: &Options) -> anyhow::Result<()> {
    // Cheap and independent of the inputs: say it before reading a large tree.
    write::check_out(&opts.out)?;
    let plan = prepare(opts)?;
    write::write(&plan, &opts.out)
}

/// Reads and validates the inputs into a plan; writes nothing.
pub fn prepare(opts: &Options) -> anyhow::Result<Plan> {
    let mut problems = Vec::new();
    let mut decls: Vec<Decl> = Vec::new();
    let mut spec_overlay = None;
    let mut spec_dir = None;
    let mut inputs = Vec::new();
    if let Some(path) = &opts.spec {
        inputs.push(format!("spec {}", path.display()));
        if let Some(text) = read_spec(path, &mut problems)? {
            spec_dir = dir_of(path, &mut problems)?;
            let spec = spec::parse(&text, &mut problems);
            spec_overlay = spec.overlay;
            decls = spec.decls;
        }
    }
    if let Some(dir) = &opts.nixos_etc {
        inputs.push(format!("--nixos-etc {}", dir.display()));
        decls.extend(nixos_etc::import(dir, &mut problems)?);
    }
    if inputs.is_empty() {
        return Err(Invalid::one("give --spec, --nixos-etc or both".into()).into());
    }
    let overlay = opts
        .overlay
        .clone()
        .or(spec_overlay)
        .unwrap_or_else(|| DEFAULT_OVERLAY.to_owned());
    let overlay_ok = check_overlay(&overlay)
        .map_err(|m| problems.push(m))
        .is_ok();
    let ctx = Context {
        overlay_rel: overlay.strip_prefix("/etc/").filter(|_| overlay_ok),
        overlay: &overlay,
        spec_dir: spec_dir.as_deref(),
    };
    let mut leaves = Vec::with_capacity(decls.len());
    for (i, d) in decls.iter().enumerate() {
        resolve(d, i, &ctx, &mut leaves, &mut problems);
    }
    let plan = plan::plan(&decls, leaves, &overlay, &mut problems);
    if !problems.is_empty() {
        return Err(Invalid::many(&inputs.join(" and "), problems).into());
    }
    let internal = plan.manifest.problems();
    if !internal.is_empty() {
        bail!(
            "internal error: the generated manifest breaks the format's rules:\n  - {}",
            internal.join("\n  - ")
        );
    }
    Ok(plan)
}

/// The spec's text; a missing file is an input problem (exit 2), other read errors are failures.
fn read_spec(path: &Path, problems: &mut Vec<String>) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            problems.push(format!("--spec {}: does not exist", path.display()));
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the spec {}", path.display())),
    }
}

/// The spec's directory as an absolute path, for relative sources. The directory itself is
/// canonicalised (it is where the files really are); the sources below it are not.
fn dir_of(path: &Path, problems: &mut Vec<String>) -> anyhow::Result<Option<String>> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(parent)
        .with_context(|| format!("cannot resolve the spec's directory {}", parent.display()))?;
    match dir.into_os_string().into_string() {
        Ok(s) => Ok(Some(s)),
        Err(s) => {
            problems.push(format!(
                "the spec's directory {} is not UTF-8, so relative sources cannot be recorded",
                s.to_string_lossy()
            ));
            Ok(None)
        }
    }
}
