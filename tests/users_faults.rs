//! The users phase against kills and odd roots: a switch killed at any rename after a new
//! account reached `passwd` has already recorded it in NixOS's ledgers (so that a rollback
//! removes it and its id stays reserved), and a linger directory that is a link or a file
//! does not stop a switch.

use std::path::Path;

use etcflip_e2e::{code, text_of, Scratch};
use serde_json::{json, Value};

fn spec(users: &Value) -> Value {
    json!({
        "etc": {"hosts": {"text": "127.0.0.1 localhost\n"}},
        "users": {"mutableUsers": true, "users": users,
                  "groups": [{"name": "root", "gid": 0}, {"name": "users", "gid": 100}]}
    })
}

fn root_user() -> Value {
    json!({"name": "root", "uid": 0, "group": "root", "home": "/root", "isSystemUser": true})
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_default()
}

/// A root switched to a generation with root alone, and a generation that adds carol.
fn with_carol_next(name: &str) -> (Scratch, std::path::PathBuf, std::path::PathBuf) {
    let s = Scratch::with_root_account(name);
    let before = s.gen("before", &spec(&json!([root_user()])));
    s.switch(&before, &[]);
    let carol = json!({"name": "carol", "group": "users", "home": "/home/carol"});
    let after = s.gen("after", &spec(&json!([root_user(), carol])));
    (s, before, after)
}

#[test]
fn a_new_account_is_in_the_ledgers_before_it_is_in_passwd_and_a_rollback_removes_it() {
    let mut in_passwd = 0;
    for n in 1..40 {
        let (s, before, after) = with_carol_next("users-early-ledgers");
        if !etcflip_e2e::switch_killed_at(&s, &after, &[], "renameat", n) {
            break; // the switch got through: every rename was tried
        }
        if !read(&s.root, "etc/passwd").contains("carol") {
            continue;
        }
        in_passwd += 1;
        let uids = read(&s.root, "var/lib/nixos/uid-map");
        let declared = read(&s.root, "var/lib/nixos/declarative-users");
        assert!(
            uids.contains("\"carol\"") && declared.split(' ').any(|n| n == "carol"),
            "killed at rename {n}: carol in passwd, not in uid-map {uids:?} or \
             declarative-users {declared:?}"
        );
        // With mutableUsers, only a declared account goes when the declaration drops it.
        s.switch(&before, &[]);
        let passwd = read(&s.root, "etc/passwd");
        assert!(
            !passwd.contains("carol"),
            "killed at rename {n}, rolled back: {passwd}"
        );
        assert!(read(&s.root, "var/lib/nixos/uid-map").contains("\"carol\""));
    }
    assert!(in_passwd > 0, "some kills came after passwd was written");
}

/// A switch killed at any rename of the users phase leaves a temporary file beside the one it
/// was writing; the next switch sweeps it, also when it goes to a generation without users
/// (which writes none of those files again): in `/etc`, in `/var/lib/nixos`, and in a place of
/// the user database elsewhere (`passwordFilesLocation`), its mark included.
#[test]
fn a_killed_users_phase_leaves_nothing_behind_a_switch_without_users() {
    for place in [None, Some("/var/lib/nixos"), Some("/persist/users")] {
        let mut killed = 0;
        for n in 1..60 {
            let s = Scratch::with_root_account("users-killed-temps");
            let carol = json!({"name": "carol", "group": "users", "home": "/home/carol"});
            let mut sp = spec(&json!([root_user(), carol]));
            if let Some(p) = place {
                sp["users"]["passwordFilesLocation"] = json!(p);
            }
            let after = s.gen("after", &sp);
            if !etcflip_e2e::switch_killed_at(&s, &after, &[], "renameat", n) {
                break; // the switch got through: every rename was tried
            }
            killed += 1;
            let plain = s.gen("plain", &json!({"etc": {"hosts": {"text": "x\n"}}}));
            s.switch(&plain, &[]);
            let listing = etcflip_e2e::listing(&s.root);
            assert!(
                !listing.contains(".etcflip-tmp"),
                "{place:?}, killed at rename {n}: {listing}"
            );
        }
        assert!(
            killed > 5,
            "{place:?}: the users phase's renames were reached"
        );
    }
}

#[test]
fn a_linger_directory_that_is_a_link_or_a_file_does_not_stop_a_switch() {
    for kind in ["link", "file"] {
        let s = Scratch::with_root_account("users-linger-odd");
        std::fs::create_dir_all(s.root.join("var/lib/systemd")).unwrap();
        std::fs::create_dir_all(s.root.join("persist/linger")).unwrap();
        std::fs::write(s.root.join("persist/linger/gone"), "").unwrap();
        let linger = s.root.join("var/lib/systemd/linger");
        match kind {
            "link" => std::os::unix::fs::symlink("../../../persist/linger", &linger).unwrap(),
            _ => std::fs::write(&linger, "").unwrap(),
        }
        let alice = json!({"name": "alice", "uid": 1000, "group": "users",
                           "home": "/home/alice", "linger": true});
        let gen = s.gen("g", &spec(&json!([root_user(), alice])));
        let out = s.switch_out(&gen, &[]);
        assert_eq!(code(&out), 0, "{kind}: {}", text_of(&out));
        assert!(read(&s.root, "etc/passwd").contains("alice:"), "{kind}");
        // etcflip follows no link: what is behind it is left alone.
        assert!(s.root.join("persist/linger/gone").exists(), "{kind}");
        assert!(!s.root.join("persist/linger/alice").exists(), "{kind}");
    }
}
