//! What a switch did (or, with `--dry-run`, would do): the plan and each domain's report, as
//! `etcflip switch` prints it (text or `--json`).

use serde::Serialize;

use crate::errors::Refused;
use crate::etc::look::Looked;
use crate::etc::owners::Unresolved;
use crate::etc::plan::Plan;
use crate::etc::runtime;
use crate::{users, wrappers};

/// What a switch did.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The plan that was (or, with `--dry-run`, would be) carried out.
    pub plan: Plan,
    /// Whether anything was changed.
    pub changed: bool,
    /// Paths deliberately left alone after the flip.
    pub notes: Vec<String>,
    /// Copies installed owned by root because an owner name resolves nowhere yet.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<Unresolved>,
    /// Runtime copies left as they were because their source is missing: the switch is
    /// incomplete (exit 1), everything else was applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
    /// Whether this root was migrated from a NixOS `setup-etc.pl` `/etc`.
    pub migrated: bool,
    /// Set when SIGTERM/SIGINT arrived after the flip: the switch was finished anyway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    /// The users phase, when the generation declares users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<crate::users::Report>,
    /// The wrappers phase, when the generation or the applied one declares wrappers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrappers: Option<crate::wrappers::Report>,
}

impl Outcome {
    /// A planned switch, nothing done yet.
    pub(crate) fn planned(
        plan: Plan,
        looked: &Looked,
        migrated: bool,
        (users, wrappers): (Option<users::Report>, Option<wrappers::Report>),
    ) -> Outcome {
        // A wrapper left out for its owner makes a switch incomplete, as a runtime copy
        // without its source does.
        let mut incomplete = runtime::incomplete(&looked.sources);
        incomplete.extend(wrappers.iter().flat_map(|w| w.unresolved.iter().cloned()));
        Outcome {
            plan,
            changed: false,
            notes: Vec::new(),
            unresolved: looked.owners.unresolved.clone(),
            incomplete,
            migrated,
            interrupted: None,
            users,
            wrappers,
        }
    }

    /// The refusal, when the plan has conflicts (nothing was changed).
    pub fn refused(&self) -> Option<Refused> {
        let mut conflicts = self.plan.conflicts();
        conflicts.extend(self.users.iter().flat_map(|u| u.clashes.iter().cloned()));
        conflicts.extend(self.wrappers.iter().filter_map(|w| w.clash.clone()));
        (!conflicts.is_empty()).then_some(Refused { conflicts })
    }
}
