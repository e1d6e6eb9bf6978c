//! Phase 1 of a switch: look at the root, then plan (pure).

use std::collections::BTreeMap;

use anyhow::Result;

use crate::etc::evidence::Evidence;
use crate::etc::gather::Gathered;
use crate::etc::legacy;
use crate::etc::observe::{self, World};
use crate::etc::overlay::overlay_is_ours;
use crate::etc::owners::{self, Owners};
use crate::etc::plan::{self, Action, Inputs, OnConflict, Plan};
use crate::etc::runtime::{self, Key};
use crate::fs::{Node, Root};
use crate::txn::generation::Generation;

/// Phase 1: looks at the root (a transition only at what changes, see `observe`; a re-switch,
/// a rerun after an interruption or a migration at everything) and plans, purely.
pub(crate) fn look_and_plan(
    root: &mut Root,
    (gen, users): (&Generation, Option<&crate::users::Report>),
    gathered: &Gathered,
    (target_text, on_conflict, gens): (&str, OnConflict, &[&str]),
) -> Result<(Plan, Looked)> {
    let evidence = &gathered.evidence;
    let recorded = gathered.recorded.as_deref();
    // Owner names resolve against the user database this switch writes, when it writes one.
    let tables = crate::users::names::Tables {
        planned: users,
        gen_host: Some(gen.host),
    };
    let owners = owners::resolve(root, &gen.manifest, tables)?;
    let sources = runtime::read(root, &gen.manifest);
    let world = observe::observe(root, &gen.manifest, evidence, gen.host, recorded)?;
    let overlay_rel = gen.manifest.overlay.trim_start_matches('/');
    let overlay_node = root.node_with(overlay_rel, false)?;
    let legacy_path = gen.manifest.overlay == legacy::LEGACY_OVERLAY;
    let as_root = nix::unistd::geteuid().is_root();
    let plan = plan::plan(&Inputs {
        new: &gen.manifest,
        evidence,
        world: &world,
        overlay: (
            &overlay_node,
            target_text.to_owned(),
            overlay_is_ours(&overlay_node, gens, gathered.migrated && legacy_path),
        ),
        on_conflict,
        owners: as_root.then_some(&owners.ids),
        runtime: &sources,
        mounts: &crate::fs::mounts::below_etc(root),
        recorded,
    });
    let looked = Looked {
        world,
        owners,
        sources,
    };
    Ok((plan, looked))
}

/// What phase 1 found (the plan goes to the switch's `Outcome`).
pub(crate) struct Looked {
    /// Observations.
    pub(crate) world: World,
    pub(crate) owners: Owners,
    pub(crate) sources: runtime::Sources,
}

impl Looked {
    /// What to record for the target generation's runtime copies: the keyed digest of what this
    /// switch installs (or finds right), else of what is there and stays ours; nothing for what
    /// is neither (it is not ours any more).
    pub(crate) fn runtime_record(
        &self,
        (plan, evidence): (&Plan, &Evidence),
        key: Option<&Key>,
    ) -> BTreeMap<String, String> {
        let (sources, world) = (&self.sources, &self.world);
        let Some(key) = key else {
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for (t, source) in sources {
            let step = plan
                .steps
                .binary_search_by(|s| s.target.as_str().cmp(t))
                .ok()
                .map(|i| &plan.steps[i]);
            // Right already, staged in place, or made inside a directory built aside.
            let installs = step.is_some_and(|s| {
                matches!(s.action, Action::Keep | Action::Build) || s.action.replaces()
            });
            let sha = if installs {
                source.sha256()
            } else {
                match world.get(t).map(|seen| &seen.node) {
                    Some(node @ Node::File(f)) if evidence.is_ours(t, node) => {
                        Some(f.sha256.as_str())
                    }
                    _ => None,
                }
            };
            if let Some(sha) = sha {
                out.insert(t.clone(), key.digest(sha));
            }
        }
        out
    }
}
