//! etcflip-gen: builds an etcflip generation (payload, manifest, tmpfiles snippet) from a spec
//! and/or an existing NixOS `etc` tree.
//!
//! Layout: what every part of a generation shares is at the top of the crate; each part has a
//! module of its own. `/etc` is the only part so far (`etc/`); the spec's `users` and
//! `wrappers` keys, refused for now by `spec.rs`, would be parts beside it.
//!
//! The pipeline, one module per step:
//! 1. `spec.rs` reads the spec, and `etc/nixos_etc.rs` an imported NixOS etc tree, into
//!    declarations (`decl.rs`, one form for both), checking only their structure;
//! 2. `assemble` (here) picks the overlay and has the `/etc` part assemble itself:
//!    `etc/resolve.rs` applies the per-entry rules (targets, modes, owners, sources, globs),
//!    then `etc/assemble.rs` the rules between entries, and implies directories, giving the
//!    manifest and the payload texts;
//! 3. `write.rs` writes the generation all at once, with the payload from `etc/payload.rs` and
//!    the tmpfiles lines from `etc/snippet.rs`.
//!
//! Every problem of steps 1–2 is collected and reported together as one
//! [`etcflip_format::errors::Invalid`] before anything is written. The manifest format and the
//! tmpfiles encoding belong to the format crate `etcflip-format` (`applier/format`), which the
//! applier owns; this crate only uses them.

pub mod cli;
pub(crate) mod decl;
pub(crate) mod etc;
pub(crate) mod spec;
pub(crate) mod users;
pub(crate) mod wrappers;
pub(crate) mod write;

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use etcflip_format::errors::Invalid;
use etcflip_format::manifest::DEFAULT_OVERLAY;
use etcflip_format::users::Users;
use etcflip_format::wrappers::Wrapper;

use crate::decl::Decl;
use crate::etc::Assembled;
use crate::wrappers::payload::Binary;

/// What `etcflip-gen build` was asked to do (its command line, too).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).multiple(true).args(["spec", "nixos_etc"])))]
pub struct Options {
    /// The spec: a JSON object with `etc` (NixOS's environment.etc), `overlay` and `store`.
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
    /// The unpatched etcflip-wrapper binary copied for each wrapper; default: the
    /// etcflip-wrapper beside this etcflip-gen.
    #[arg(long, value_name = "PATH")]
    pub wrapper: Option<PathBuf>,
}

/// Validates the inputs and writes the generation to `opts.out`.
pub fn build(opts: &Options) -> anyhow::Result<()> {
    // Cheap and independent of the inputs: say it before reading a large tree.
    write::check_out(&opts.out)?;
    let (assembled, binary) = assemble(opts)?;
    write::write(&assembled, binary.as_ref(), &opts.out)
}

/// Reads the inputs and assembles them into a generation, every rule checked; writes nothing.
/// With wrappers, also the unpatched wrapper binary their payload is made from.
fn assemble(opts: &Options) -> anyhow::Result<(Assembled, Option<Binary>)> {
    let mut problems = Vec::new();
    let mut inputs = read_inputs(opts, &mut problems)?;
    if inputs.names.is_empty() {
        return Err(Invalid::one("give --spec, --nixos-etc or both".into()).into());
    }
    let overlay = opts
        .overlay
        .clone()
        .or(inputs.overlay.take())
        .unwrap_or_else(|| DEFAULT_OVERLAY.to_owned());
    let mut assembled = etc::assemble(&inputs, &overlay, &mut problems);
    assembled.manifest.users = inputs.users.take();
    problems.extend(assembled.manifest.users_problems());
    if let Some(users) = assembled.manifest.users.as_mut() {
        users::settle(users);
    }
    let declared = inputs.wrappers.take();
    problems.extend(wrappers::missing_sources(
        declared.iter().flatten(),
        inputs.store.as_deref(),
    ));
    if !problems.is_empty() {
        return Err(Invalid::many(&inputs.names.join(" and "), problems).into());
    }
    assembled.manifest.wrappers = declared;
    let binary = wrappers::settle(assembled.manifest.wrappers.as_mut(), opts.wrapper.as_ref())?;
    let internal = assembled.manifest.problems();
    if !internal.is_empty() {
        bail!(
            "internal error: the generated manifest breaks the format's rules:\n  - {}",
            internal.join("\n  - ")
        );
    }
    Ok((assembled, binary))
}

/// What the inputs say, before the per-entry rules.
#[derive(Default)]
pub(crate) struct Inputs {
    /// How problems name the inputs, e.g. `spec s.json`; empty when none was given.
    pub(crate) names: Vec<String>,
    /// The declarations of the spec, then of the tree.
    pub(crate) decls: Vec<Decl>,
    /// The spec's `overlay`.
    pub(crate) overlay: Option<String>,
    /// The spec's `store`, not yet checked.
    pub(crate) store: Option<String>,
    /// The spec's directory, for relative sources.
    pub(crate) spec_dir: Option<String>,
    /// The store the imported tree lives in, if it lives in one.
    pub(crate) tree_store: Option<String>,
    /// The spec's `users` part.
    pub(crate) users: Option<Users<'static>>,
    /// The spec's `wrappers` part.
    pub(crate) wrappers: Option<Vec<Wrapper<'static>>>,
}

/// Reads the spec and the NixOS etc tree; problems with their content go to `problems`.
fn read_inputs(opts: &Options, problems: &mut Vec<String>) -> anyhow::Result<Inputs> {
    let mut inputs = Inputs::default();
    if let Some(path) = &opts.spec {
        inputs.names.push(format!("spec {}", path.display()));
        if let Some(text) = read_spec(path, problems)? {
            inputs.spec_dir = dir_of(path, problems)?;
            let spec = spec::parse(&text, problems);
            inputs.overlay = spec.overlay;
            inputs.store = spec.store;
            inputs.decls = spec.decls;
            inputs.users = spec.users;
            inputs.wrappers = spec.wrappers;
        }
    }
    if let Some(dir) = &opts.nixos_etc {
        inputs.names.push(format!("--nixos-etc {}", dir.display()));
        inputs.decls.extend(etc::nixos_etc::import(dir, problems)?);
        inputs.tree_store = etc::nixos_etc::store_of(dir);
    }
    Ok(inputs)
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
