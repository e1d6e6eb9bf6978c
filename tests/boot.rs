//! What a first boot, nixos-install or a machine whose users come later meets: owner names
//! that resolve nowhere yet (never fail closed: the copy goes in owned by root, named in the
//! output, `status` and `verify`, and gets its owner at the next switch where the name
//! resolves), and copies of files outside the store, read at switch time under the root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use etcflip_e2e::{code, text_of, Scratch};
use serde_json::json;

fn owner_mode(p: &Path) -> (u32, u32, u32) {
    let md = std::fs::symlink_metadata(p).unwrap();
    (md.uid(), md.gid(), md.mode() & 0o7777)
}

#[test]
fn an_unknown_owner_name_never_stops_a_switch_and_is_fixed_when_it_resolves() {
    let s = Scratch::new("boot-owner");
    let entry =
        |content: &str| json!({"text": content, "mode": "0640", "user": "svc", "group": "svc"});
    let a = s.gen(
        "a",
        &json!({"etc": {"svc.conf": entry("secret\n"), "motd": {"text": "hi\n"}}}),
    );
    let b = s.gen(
        "b",
        &json!({"etc": {"svc.conf": entry("secret\n"), "motd": {"text": "hello\n"}}}),
    );
    // A root without the user (a first boot before userborn or sysusers made it).
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    std::fs::write(s.etc("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(s.etc("group"), "root:x:0:\n").unwrap();
    let out = s.switch_out(&a, &["--on-conflict", "backup"]);
    let said = text_of(&out);
    assert_eq!(code(&out), 0, "{said}");
    assert!(
        said.contains("warning: /etc/svc.conf: user \"svc\" and group \"svc\" not in"),
        "{said}"
    );
    assert_eq!(owner_mode(&s.etc("svc.conf")), (0, 0, 0o640));
    assert_eq!(std::fs::read(s.etc("svc.conf")).unwrap(), b"secret\n");
    assert!(std::fs::symlink_metadata(s.etc("motd"))
        .unwrap()
        .is_symlink());
    for cmd in ["status", "verify"] {
        let out = s.etcflip(&[cmd]);
        let said = text_of(&out);
        assert_eq!(code(&out), 0, "{cmd}: {said}");
        assert!(
            said.contains("/etc/svc.conf: user \"svc\""),
            "{cmd}: {said}"
        );
        let out = s.etcflip(&[cmd, "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            report["unresolved"],
            json!([{"path": "/etc/svc.conf", "user": "svc", "group": "svc"}]),
            "{cmd}"
        );
    }
    // The user appears (a service made it); verify now sees the owner as drift, and the next
    // switch, a transition, gives the copy its owner.
    std::fs::write(
        s.etc("passwd"),
        "root:x:0:0::/root:/bin/sh\nsvc:x:990:991::/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(s.etc("group"), "root:x:0:\nsvc:x:991:\n").unwrap();
    let drift = s.etcflip(&["verify"]);
    assert_eq!(code(&drift), 1, "{}", text_of(&drift));
    assert!(
        text_of(&drift).contains("owner 990:991"),
        "{}",
        text_of(&drift)
    );
    s.switch(&b, &[]);
    assert_eq!(owner_mode(&s.etc("svc.conf")), (990, 991, 0o640));
    let clean = s.etcflip(&["verify"]);
    assert_eq!(code(&clean), 0, "{}", text_of(&clean));
    assert!(!text_of(&clean).contains("warning"), "{}", text_of(&clean));
}

#[test]
fn a_re_switch_gives_the_owner_once_the_name_resolves() {
    let s = Scratch::new("boot-owner-again");
    let a = s.gen(
        "a",
        &json!({"etc": {"x.conf": {"text": "x\n", "mode": "0600", "user": "late"}}}),
    );
    s.switch(&a, &[]);
    assert_eq!(owner_mode(&s.etc("x.conf")), (0, 0, 0o600));
    std::fs::write(s.etc("passwd"), "late:x:1234:100::/:/bin/false\n").unwrap();
    s.switch(&a, &[]);
    assert_eq!(owner_mode(&s.etc("x.conf")), (1234, 0, 0o600));
    let again = s.switch(&a, &[]);
    assert!(again.contains("already up to date"), "{again}");
}
