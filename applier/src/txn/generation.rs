//! Loading a generation directory and checking it against its manifest (phase 0).

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::errors::Invalid;
use crate::fs::mapped::Mapped;
use crate::manifest::Manifest;

/// A generation directory with its manifest file mapped, not yet parsed: see
/// [`Generation::parse`].
pub(crate) struct GenerationFile {
    /// Canonical host path of the generation directory.
    pub host: PathBuf,
    manifest: Mapped,
}

/// A loaded, validated generation. Its manifest borrows from the [`GenerationFile`].
pub(crate) struct Generation<'a> {
    /// Canonical host path of the generation directory.
    pub host: &'a Path,
    /// `manifest.json` as read, without trailing white space (the form the state records).
    pub text: &'a str,
    /// The parsed manifest.
    pub manifest: Manifest<'a>,
    /// The manifest's `users` part as text while its parsing is deferred (see
    /// [`Generation::parse_with`]); `manifest.users` is `None` meanwhile.
    pub users_text: Option<&'a str>,
}

impl GenerationFile {
    /// Opens `path` and maps its manifest (parse it with [`Generation::parse`]).
    pub(crate) fn open(path: &Path) -> Result<GenerationFile> {
        let (host, file) = open_manifest(path)?;
        let mpath = host.join("manifest.json");
        // SAFETY: a generation is immutable once built (a Nix store path, an image): no one
        // writes its manifest in place while a switch reads it (README, "The generation").
        #[allow(unsafe_code)]
        let mapped = unsafe { Mapped::of(&file.into(), &mpath.display().to_string()) };
        let manifest = mapped.map_err(|e| not_a_manifest(&mpath, &e))?;
        Ok(GenerationFile { host, manifest })
    }

    /// The manifest's text, for [`Generation::parse`] (which another thread may run: the
    /// text is a plain `&str`).
    pub(crate) fn text(&self) -> Result<&str> {
        self.manifest.text().ok_or_else(|| {
            Invalid::one(format!(
                "{}: the manifest is not UTF-8",
                self.host.join("manifest.json").display()
            ))
            .into()
        })
    }

    /// The generation as `root` sees it: its path inside the root when it lies there (an
    /// image, a test root), else its host path (the Nix store is the same path everywhere).
    /// It becomes the overlay link's text and is recorded in JSON, so it must be UTF-8: any
    /// other path is refused (exit 2) rather than written under a lossy, wrong name.
    pub(crate) fn path_in_root(&self, root: &crate::fs::Root) -> Result<String> {
        path_in_root(&self.host, root)
    }
}

/// The generation directory `path`, canonical, and its manifest opened: a regular file (a
/// FIFO in its place must not hang the open, hence `O_NONBLOCK`). What a switch maps and a
/// boot on an image reads only the ends of.
pub(crate) fn open_manifest(path: &Path) -> Result<(PathBuf, std::fs::File)> {
    let host = path.canonicalize().map_err(|e| {
        Invalid::one(format!(
            "{}: not a generation directory ({e})",
            path.display()
        ))
    })?;
    let mpath = host.join("manifest.json");
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(&mpath)
        .map_err(anyhow::Error::from)
        .and_then(|f| {
            if f.metadata()?.is_file() {
                Ok(f)
            } else {
                anyhow::bail!("not a regular file")
            }
        });
    let file = opened.map_err(|e| not_a_manifest(&mpath, &e))?;
    Ok((host, file))
}

/// The error of a manifest that cannot be read.
fn not_a_manifest(mpath: &Path, e: &anyhow::Error) -> anyhow::Error {
    Invalid::one(format!(
        "{}: cannot read the manifest ({e:#}); is this a generation built by etcflip-gen?",
        mpath.display()
    ))
    .into()
}

/// [`GenerationFile::path_in_root`] for a generation at `host` (canonical), not opened.
pub(crate) fn path_in_root(host: &Path, root: &crate::fs::Root) -> Result<String> {
    let base = root.host_path();
    let shown = match host.strip_prefix(base) {
        Ok(rest) if base != Path::new("/") => Path::new("/").join(rest),
        _ => host.to_path_buf(),
    };
    match shown.to_str() {
        Some(s) => Ok(s.to_owned()),
        None => Err(Invalid::one(format!(
            "{}: the generation's path is not UTF-8, so no link can name it",
            shown.display()
        ))
        .into()),
    }
}

/// What the domains find wrong with a generation's payload (at its host path) against its
/// manifest, one line per problem.
pub(crate) type Payload = fn(&Path, &Manifest) -> Vec<String>;

impl<'a> Generation<'a> {
    /// Parses and checks the generation at `host` whose manifest reads `text`: the manifest
    /// must be valid, and the payload as each domain (`payload`) finds it must match it.
    /// Every problem is reported at once.
    pub(crate) fn parse(host: &'a Path, text: &'a str, payload: Payload) -> Result<Generation<'a>> {
        Self::parse_with(host, text, payload, false)
    }

    /// Like [`Generation::parse`]; with `defer_users`, the manifest's `users` part is left as
    /// text ([`Generation::users_text`]) for [`Generation::parse_users`], if it is wanted.
    pub(crate) fn parse_with(
        host: &'a Path,
        text: &'a str,
        payload: Payload,
        defer_users: bool,
    ) -> Result<Generation<'a>> {
        let origin = host.join("manifest.json").display().to_string();
        let (manifest, users_text) = if defer_users {
            Manifest::from_json_deferring_users(text, &origin)?
        } else {
            (Manifest::from_json(text, &origin)?, None)
        };
        let problems = payload(host, &manifest);
        if !problems.is_empty() {
            return Err(Invalid::many(&host.display().to_string(), problems).into());
        }
        Ok(Generation {
            host,
            text: text.trim_end(),
            manifest,
            users_text,
        })
    }

    /// Whether the generation declares users (parsed or not yet).
    pub(crate) fn declares_users(&self) -> bool {
        self.manifest.users.is_some() || self.users_text.is_some()
    }

    /// Parses and checks the `users` part [`Generation::parse_with`] deferred, if any.
    pub(crate) fn parse_users(&mut self) -> Result<()> {
        if let Some(text) = self.users_text.take() {
            let origin = self.host.join("manifest.json").display().to_string();
            self.manifest.parse_users(text, &origin)?;
        }
        Ok(())
    }
}
