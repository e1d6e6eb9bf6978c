//! The wrappers' payload, `GEN/wrappers/<program>`: one copy of the unpatched
//! `etcflip-wrapper` per program, with its source written into the placeholder
//! (`applier/format/src/wrapper.rs`). No compiler is involved, and the source's path lies in
//! each copy as plain bytes, where Nix's reference scanner finds it.

use std::path::Path;

use anyhow::Context as _;
use etcflip_format::errors::Invalid;
use etcflip_format::hash::sha256_bytes;
use etcflip_format::wrappers::Wrapper;

/// The unpatched wrapper binary, read once.
pub(crate) struct Binary {
    bytes: Vec<u8>,
}

impl Binary {
    /// Reads the binary at `path`; a missing file or one that is not an unpatched wrapper is
    /// a problem of the input (exit 2), named with the path.
    pub(crate) fn read(path: &Path) -> anyhow::Result<Binary> {
        let bytes = std::fs::read(path).map_err(|e| {
            Invalid::one(format!(
                "cannot read the etcflip-wrapper binary {} ({e}); give --wrapper PATH",
                path.display()
            ))
        })?;
        let binary = Binary { bytes };
        binary.patched("/").map_err(|why| {
            Invalid::one(format!(
                "{} is not an unpatched etcflip-wrapper: {why}",
                path.display()
            ))
        })?;
        Ok(binary)
    }

    /// A copy with `target` written into its placeholder.
    pub(crate) fn patched(&self, target: &str) -> Result<Vec<u8>, String> {
        let mut copy = self.bytes.clone();
        etcflip_format::wrapper::patch(&mut copy, target)?;
        Ok(copy)
    }

    /// Fills in each record's sha256: that of its patched copy.
    pub(crate) fn settle(&self, wrappers: &mut [Wrapper]) -> Result<(), String> {
        for w in wrappers {
            w.sha256 = sha256_bytes(&self.patched(&w.source)?).into();
        }
        Ok(())
    }

    /// Writes every patched copy into `dir` (`GEN/wrappers`), read-only.
    pub(crate) fn write(&self, wrappers: &[Wrapper], dir: &Path) -> anyhow::Result<()> {
        for w in wrappers {
            let bytes = self.patched(&w.source).map_err(anyhow::Error::msg)?;
            let path = dir.join(w.program.as_str());
            crate::write::write_file(&path, &bytes)
                .with_context(|| format!("the wrapper for {}", w.program.as_str()))?;
        }
        Ok(())
    }
}
