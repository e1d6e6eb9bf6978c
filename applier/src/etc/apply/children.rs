//! The `systemd-tmpfiles` children of a switch, started early (see [`Children`]).

use anyhow::Result;

use super::made_by_tmpfiles;
use crate::etc::parts::Creation;
use crate::etc::plan::Plan;
use crate::etc::runner;
use crate::manifest::Manifest;

/// The tmpfiles children of a switch: started before their lines are known (they act only
/// when fed, see `runner`), so that their start-up (5–9 ms each) overlaps the switch's own
/// work.
#[derive(Default)]
pub(crate) struct Children {
    /// Phase 4's `--create` children (fed in `apply::prepare`).
    pub creation: Option<Creation>,
    /// Started before the manifests were parsed, to become the creation's first child;
    /// killed unused when nothing is to be created (it never acted: tmpfiles acts only once
    /// its input is complete).
    spare: Option<runner::Tmpfiles>,
}

impl Children {
    /// A switch to another generation (`engine`) starts one child before it parses the
    /// manifests, while the process is still small (a fork then costs a fraction of a
    /// millisecond, not one or two) and its start-up has the most to overlap.
    /// Best effort: a child that cannot be started now is started (and its error reported)
    /// when it is needed.
    pub(crate) fn speculative(engine: Option<&runner::Engine>) -> Children {
        Children {
            creation: None,
            spare: engine.and_then(|e| e.start().ok()),
        }
    }

    /// Starts the creation as soon as the manifests alone show that targets are added
    /// (`old`: the applied manifest; `None` on an empty root), before the switch looks and
    /// plans.
    pub(crate) fn early(
        mut self,
        engine: &runner::Engine,
        old: Option<&Manifest>,
        new: &Manifest,
    ) -> Result<Children> {
        let added = old.map_or(new.entries.len(), |old| added_targets(old, new));
        self.creation = Creation::start(engine, added, &mut self.spare)?;
        Ok(self)
    }

    /// Starts what the plan needs and was not started early (drift to repair, say); a spare
    /// child nothing needs is killed now.
    pub(crate) fn complete(mut self, engine: &runner::Engine, plan: &Plan) -> Result<Self> {
        if self.creation.is_none() {
            let lines = plan.steps.iter().filter(|s| made_by_tmpfiles(s)).count();
            self.creation = Creation::start(engine, lines, &mut self.spare)?;
        }
        self.spare = None;
        Ok(self)
    }
}

/// How many targets `new` adds to `old` (a merge of sorted lists).
fn added_targets(old: &Manifest, new: &Manifest) -> usize {
    let mut added = 0;
    let (mut o, mut n) = (old.entries.iter().peekable(), new.entries.iter().peekable());
    loop {
        match (o.peek(), n.peek()) {
            (_, None) => return added,
            (Some(a), Some(b)) if a.target == b.target => {
                o.next();
                n.next();
            }
            (Some(a), Some(b)) if a.target.as_str() < b.target.as_str() => {
                o.next();
            }
            _ => {
                added += 1;
                n.next();
            }
        }
    }
}
