//! Loading a generation directory and checking it against its manifest (phase 0).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::errors::Invalid;
use crate::manifest::{Kind, Manifest};
use crate::rootfs::sha256_bytes;

/// A loaded, validated generation.
pub struct Generation {
    /// Canonical host path of the generation directory.
    pub host: PathBuf,
    /// `manifest.json` as read, without trailing white space (the form the state records).
    pub text: String,
    /// The parsed manifest.
    pub manifest: Manifest,
}

impl Generation {
    /// Loads `path`: the manifest must be valid and the payload must match it (copies and text
    /// files by sha256, direct links by their text). Every problem is reported at once.
    pub fn load(path: &Path) -> Result<Generation> {
        let host = path.canonicalize().map_err(|e| {
            Invalid::one(format!(
                "{}: not a generation directory ({e})",
                path.display()
            ))
        })?;
        let mpath = host.join("manifest.json");
        let text = std::fs::read_to_string(&mpath).map_err(|e| {
            Invalid::one(format!(
                "{}: cannot read the manifest ({e}); is this a generation built by etcflip-gen?",
                mpath.display()
            ))
        })?;
        let manifest = Manifest::from_json(&text, &mpath.display().to_string())?;
        let problems = payload_problems(&host, &manifest);
        if !problems.is_empty() {
            return Err(Invalid::many(&host.display().to_string(), problems).into());
        }
        let mut text = text;
        text.truncate(text.trim_end().len());
        Ok(Generation {
            host,
            text,
            manifest,
        })
    }

    /// The generation as the root sees it: its path inside the root when it lies there (an
    /// image, a test root), else its host path (the Nix store is the same path everywhere).
    pub fn path_in_root(&self, root: &Path) -> Result<String> {
        let root = root
            .canonicalize()
            .with_context(|| format!("cannot resolve the root {}", root.display()))?;
        let shown = match self.host.strip_prefix(&root) {
            Ok(rest) if root != Path::new("/") => format!("/{}", rest.display()),
            _ => self.host.display().to_string(),
        };
        Ok(shown)
    }
}

fn payload_problems(host: &Path, m: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    let etc = host.join("etc");
    for e in &m.entries {
        if e.sha256.is_none() && e.kind != Kind::DirectSymlink {
            continue; // nothing recorded to check (links to sources, directories)
        }
        let p = etc.join(&e.target);
        match (e.kind, &e.sha256) {
            (Kind::Copy | Kind::Symlink, Some(want)) => match std::fs::read(&p) {
                Ok(bytes) if sha256_bytes(&bytes) == *want => {}
                Ok(_) => out.push(format!(
                    "{}: content does not match its sha256",
                    p.display()
                )),
                Err(err) => out.push(format!("{}: cannot read the payload ({err})", p.display())),
            },
            (Kind::DirectSymlink, _) => match std::fs::read_link(&p) {
                Ok(t) if Some(t.to_string_lossy().as_ref()) == e.source.as_deref() => {}
                Ok(t) => out.push(format!(
                    "{}: links to {}, the manifest says {}",
                    p.display(),
                    t.display(),
                    e.source.as_deref().unwrap_or("")
                )),
                Err(err) => out.push(format!("{}: not a link ({err})", p.display())),
            },
            _ => {}
        }
    }
    out
}
