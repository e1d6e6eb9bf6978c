//! `etcflip verify` for the wrappers: what a switch to the applied generation would change in
//! `/run/wrappers`, and every live wrapper whose content is not its payload's (read and hashed
//! here, which a switch does not do: see `plan.rs`).

use std::path::Path;

use anyhow::Result;
use etcflip_format::manifest::Manifest;

use super::plan::{Bin, Live};
use super::{BIN_SHOWN, DIR};
use crate::drift::Drift;
use crate::fs::{join, sha256_bytes, Root};

/// The wrappers' drift against `m`, the applied manifest (its generation at `gen_host`).
pub(crate) fn drift(root: &mut Root, m: &Manifest, gen_host: &Path) -> Result<Vec<Drift>> {
    let refuse = (None, crate::conflict::OnConflict::Abort);
    let Some(report) = super::plan(root, (m, gen_host), Some(m), refuse)? else {
        return Ok(Vec::new());
    };
    let expected = "the applied generation's wrappers";
    let would = report.changes.iter().map(|c| format!("a switch would {c}"));
    let as_is = (report.clash.iter())
        .chain(&report.unresolved)
        .chain(&report.notes)
        .cloned();
    let mut out: Vec<Drift> = (would.chain(as_is))
        .map(|found| Drift {
            path: BIN_SHOWN.to_owned(),
            expected: expected.to_owned(),
            found,
        })
        .collect();
    if let Some(Live {
        bin: Bin::Dir(name),
        files,
        ..
    }) = &report.live
    {
        let rel = join(DIR, name);
        for w in m.wrappers.iter().flatten() {
            if !files.get(w.program.as_str()).is_some_and(|s| s.regular) {
                continue; // already reported above
            }
            let bytes = root.read(&join(&rel, &w.program))?;
            if sha256_bytes(&bytes) != w.sha256.as_str() {
                out.push(Drift {
                    path: format!("{BIN_SHOWN}/{}", w.program.as_str()),
                    expected: format!(
                        "the wrapper of {} (sha256 {})",
                        w.source.as_str(),
                        w.sha256.as_str()
                    ),
                    found: "other content".into(),
                });
            }
        }
    }
    Ok(out)
}
