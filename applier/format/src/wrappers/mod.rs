//! The generation's `wrappers` part: one record per program of NixOS's `security.wrappers`,
//! as the generator settled it. Each names its patched `etcflip-wrapper` copy in the payload
//! (`GEN/wrappers/<program>`, by its sha256) and what the applier makes of it under the
//! root's `/run/wrappers/bin`: the final mode (set-id bits included), the owner and group
//! (numbers, or names resolved at switch time) and the file capabilities.

use serde::{Deserialize, Serialize};

use crate::borrowed::Str;
use crate::manifest::{check_id_name, Id, Mode};

/// Where the wrappers' payload lies inside a generation directory.
pub const PAYLOAD_DIR: &str = "wrappers";

/// One wrapper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wrapper<'a> {
    /// The file name in `/run/wrappers/bin` (and in the payload).
    #[serde(borrow)]
    pub program: Str<'a>,
    /// The wrapped program, written into the wrapper's placeholder.
    #[serde(borrow)]
    pub source: Str<'a>,
    /// The owner: a number, or a name resolved against the root's `passwd`.
    pub owner: Id,
    /// The group: a number, or a name resolved against the root's `group`.
    pub group: Id,
    /// The final mode, set-user-id and set-group-id bits included.
    pub mode: Mode,
    /// File capabilities, in `cap_from_text` form as declared; absent when none.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Str<'a>>,
    /// Hex sha256 of the patched wrapper in the payload.
    #[serde(borrow)]
    pub sha256: Str<'a>,
}

impl Wrapper<'_> {
    /// An owned copy, independent of the text it was parsed from.
    pub fn into_owned(self) -> Wrapper<'static> {
        Wrapper {
            program: self.program.into_owned(),
            source: self.source.into_owned(),
            owner: self.owner,
            group: self.group,
            mode: self.mode,
            capabilities: self.capabilities.map(Str::into_owned),
            sha256: self.sha256.into_owned(),
        }
    }

    /// The capability sets its file gets (empty without capabilities).
    pub fn sets(&self) -> crate::caps::Sets {
        self.capabilities
            .as_deref()
            .and_then(|c| crate::caps::parse(c).ok())
            .unwrap_or_default()
    }

    /// Every way this record breaks the rules, each message naming the field.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(why) = check_program(&self.program) {
            out.push(format!("program: {why}"));
        }
        if !self.source.starts_with('/') || self.source.contains(['\0', '\n']) {
            out.push(format!(
                "source {:?}: must be an absolute path without NUL or newline",
                self.source.as_str()
            ));
        }
        if self.source.len() >= crate::wrapper::TARGET_BYTES {
            out.push(format!(
                "source: {} bytes, longer than a wrapper holds (fewer than {})",
                self.source.len(),
                crate::wrapper::TARGET_BYTES
            ));
        }
        for (field, id) in [("owner", &self.owner), ("group", &self.group)] {
            if let Id::Name(name) = id {
                if let Err(why) = check_id_name(name) {
                    out.push(format!("{field}: {why}"));
                }
            }
        }
        out.extend(mode_problems(self.mode.0, self.capabilities.is_some()));
        if let Some(caps) = &self.capabilities {
            match crate::caps::parse(caps) {
                Ok(sets) if sets == crate::caps::Sets::default() => out.push(format!(
                    "capabilities {:?}: grant nothing (leave the field out instead)",
                    caps.as_str()
                )),
                Ok(_) => {}
                Err(p) => out.extend(p.into_iter().map(|m| format!("capabilities: {m}"))),
            }
        }
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if self.sha256.len() != 64 || !self.sha256.bytes().all(hex) {
            out.push("sha256: not 64 lowercase hex digits".into());
        }
        out
    }
}

/// A program name: a plain file name for `/run/wrappers/bin`.
fn check_program(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("{name:?} is not a file name"));
    }
    if let Some(c) = name.chars().find(|&c| c == '/' || c.is_control()) {
        return Err(format!(
            "{name:?} holds {c:?}: a program is one file name without '/' or control characters"
        ));
    }
    if name.len() > crate::manifest::MAX_NAME {
        return Err(format!("{name:?} is longer than 255 bytes"));
    }
    Ok(())
}

/// What is wrong with a wrapper's final `mode`, `caps` telling whether it has capabilities.
fn mode_problems(mode: u32, caps: bool) -> Vec<String> {
    let mut out = Vec::new();
    let shown = format!("{mode:04o}");
    if mode & 0o022 != 0 {
        out.push(format!(
            "mode {shown}: group- or world-writable (anyone could replace what a privileged \
             wrapper runs)"
        ));
    }
    if mode & 0o4000 != 0 && mode & 0o100 == 0 {
        out.push(format!(
            "mode {shown}: setuid without owner execute (the bit would do nothing)"
        ));
    }
    if mode & 0o2000 != 0 && mode & 0o010 == 0 {
        out.push(format!(
            "mode {shown}: setgid without group execute (the kernel does not honour it then)"
        ));
    }
    if caps && mode & 0o6000 != 0 {
        out.push(format!(
            "mode {shown}: setuid or setgid together with capabilities (NixOS forbids both on \
             one wrapper: choose one)"
        ));
    }
    out
}

/// Every problem of a whole `wrappers` part: each record's, and their order (sorted by
/// program, each once).
pub fn problems(wrappers: &[Wrapper]) -> Vec<String> {
    let mut out = Vec::new();
    let mut prev: Option<&str> = None;
    for w in wrappers {
        let p = w.program.as_str();
        if prev.is_some_and(|q| q >= p) {
            out.push(format!(
                "wrapper {p:?}: wrappers are not sorted by program or repeat"
            ));
        }
        prev = Some(p);
        out.extend(
            w.problems()
                .into_iter()
                .map(|m| format!("wrapper {p:?}: {m}")),
        );
    }
    out
}

/// A capability wrapper of `ping`, as NixOS declares it: the manifests of the format's tests
/// carry it.
#[cfg(test)]
pub(crate) fn ping() -> Wrapper<'static> {
    Wrapper {
        program: "ping".into(),
        source: "/nix/store/x-iputils/bin/ping".into(),
        owner: crate::manifest::Id::Name("root".into()),
        group: crate::manifest::Id::Num(0),
        mode: crate::manifest::Mode(0o511),
        capabilities: Some("cap_net_raw+p".into()),
        sha256: "b".repeat(64).into(),
    }
}

#[cfg(test)]
mod tests;
