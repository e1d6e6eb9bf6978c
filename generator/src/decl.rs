//! The one internal form of an `/etc` declaration, whatever it was read from.
//!
//! Both inputs (a spec's `etc` object and an imported NixOS `etc` tree) are turned into a list of
//! [`Decl`]s carrying the raw NixOS field values, so that every later rule (targets, sources,
//! modes, owners, globs, duplicates) is written once and applies to both the same way.

/// Where a declaration came from; decides how problems name it and how relative sources resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// An entry of the spec's `etc` object; relative sources resolve against the spec's directory.
    Spec,
    /// A link of an imported NixOS `etc` tree; relative link texts are refused.
    NixosEtc,
}

/// One enabled `environment.etc` entry, fields as NixOS spells them, not yet validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decl {
    /// The attribute name (for `--nixos-etc`: the target), used in every problem message.
    pub(crate) attr: String,
    /// Which input it came from.
    pub(crate) origin: Origin,
    /// Path relative to `/etc`, exactly as given (checked later, never repaired).
    pub(crate) target: String,
    /// `source` as given: a path, possibly relative or a glob.
    pub(crate) source: Option<String>,
    /// `text` as given.
    pub(crate) text: Option<String>,
    /// `mode` as given: `symlink`, `direct-symlink` or octal digits.
    pub(crate) mode: String,
    /// Owner as NixOS's `user` spells it: `+N` for numeric, otherwise a name.
    pub(crate) user: String,
    /// Group as NixOS's `group` spells it.
    pub(crate) group: String,
}

impl Decl {
    /// A declaration with NixOS's defaults: target = the attribute name, no source or text,
    /// mode `symlink`, owned by `+0:+0`.
    pub(crate) fn new(attr: &str, origin: Origin) -> Decl {
        Decl {
            attr: attr.to_owned(),
            origin,
            target: attr.to_owned(),
            source: None,
            text: None,
            mode: "symlink".to_owned(),
            user: "+0".to_owned(),
            group: "+0".to_owned(),
        }
    }

    /// How problems refer to this declaration, e.g. `etc."ssh/sshd_config"`.
    pub(crate) fn label(&self) -> String {
        match self.origin {
            Origin::Spec => format!("etc.{:?}", self.attr),
            Origin::NixosEtc => format!("--nixos-etc {:?}", self.attr),
        }
    }

    /// A problem about one field of this declaration, naming the attribute and the field.
    pub(crate) fn problem(&self, field: &str, msg: &str) -> String {
        format!("{}.{field}: {msg}", self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_attribute_and_field() {
        let mut d = Decl {
            attr: "ssh/sshd_config".into(),
            origin: Origin::Spec,
            target: "ssh/sshd_config".into(),
            source: None,
            text: None,
            mode: "symlink".into(),
            user: "+0".into(),
            group: "+0".into(),
        };
        assert_eq!(
            d.problem("mode", "bad"),
            "etc.\"ssh/sshd_config\".mode: bad"
        );
        d.origin = Origin::NixosEtc;
        assert_eq!(
            d.problem("source", "bad"),
            "--nixos-etc \"ssh/sshd_config\".source: bad"
        );
    }
}
