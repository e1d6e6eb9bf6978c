//! End to end on temporary roots: every transition between entry kinds, in both directions,
//! ends exactly where a fresh apply of the target generation ends, and a second switch to the
//! same generation changes nothing.

use etcflip_e2e::{absent, read_in_root, source, spec, text, Scratch};
use serde_json::{json, Value};

/// Generation A of a small system with every kind of entry.
fn spec_a(s: &Scratch) -> Value {
    let units = s.root.join("store/units-a");
    s.store("units-a/a.service", "[Service]\nExecStart=/bin/a\n");
    s.store("units-a/b.service", "[Service]\nExecStart=/bin/b\n");
    s.store("units-a/wants/b.service", "wanted b\n");
    let fonts = s.store("fonts/conf.d/10-a.conf", "<a/>\n");
    s.store("fonts/conf.d/20-b.conf", "<b/>\n");
    s.store("fonts/conf.d/README", "not matched\n");
    spec(&[
        ("units", source("systemd/system", &units)),
        ("hosts", text("hosts", "127.0.0.1 localhost\n")),
        ("login.defs", json!({"text": "UMASK 022\n", "mode": "0644"})),
        (
            "sudoers",
            json!({"text": "root ALL=(ALL) ALL\n", "mode": "0440"}),
        ),
        (
            "localtime",
            json!({"source": "/etc/zoneinfo/Europe/Berlin", "mode": "direct-symlink"}),
        ),
        (
            "fonts",
            json!({"target": "fonts/conf.d", "source": fonts.parent().unwrap().join("*.conf")}),
        ),
        (
            "old/nested/deep",
            text("old/nested/deep/file", "going away\n"),
        ),
        ("ssh", text("ssh/ssh_config", "Host *\n")),
    ])
}

/// Generation B: the directory link becomes per-file links, symlink↔copy swap, a nested
/// directory disappears, a new one appears, direct-symlink and copies change.
fn spec_b(s: &Scratch) -> Value {
    let a = s.store("units-b/a.service", "[Service]\nExecStart=/bin/a2\n");
    let c = s.store("units-b/c.service", "[Service]\nExecStart=/bin/c\n");
    let fonts = s.store("fonts-b/conf.d/30-c.conf", "<c/>\n");
    spec(&[
        ("units-a", source("systemd/system/a.service", &a)),
        ("units-c", source("systemd/system/c.service", &c)),
        ("units-w", source("systemd/system/wants/c.service", &c)),
        (
            "hosts",
            json!({"text": "127.0.0.1 localhost b\n", "mode": "0644"}),
        ),
        ("login.defs", text("login.defs", "UMASK 022\n")),
        (
            "sudoers",
            json!({"text": "root ALL=(ALL) ALL\n%wheel ALL=(ALL) ALL\n", "mode": "0440"}),
        ),
        (
            "localtime",
            json!({"source": "/etc/zoneinfo/America/New_York", "mode": "direct-symlink"}),
        ),
        (
            "fonts",
            json!({"target": "fonts/conf.d", "source": fonts.parent().unwrap().join("*.conf")}),
        ),
        ("new", text("new/dir/file", "new\n")),
        ("ssh", text("ssh", "ssh is a file now\n")),
    ])
}

/// Switching to `to` ends where a fresh apply of `to` ends.
fn assert_same_as_fresh(s: &Scratch, name: &str, to: &Value) {
    assert_eq!(
        s.listing(),
        etcflip_e2e::fresh_listing(name, to),
        "switch result differs from a fresh apply"
    );
}

#[test]
fn a_to_b_to_a_equals_fresh_applies() {
    let s = Scratch::new("a-b-a");
    let (a, b) = (spec_a(&s), spec_b(&s));
    let ga = s.gen("a", &a);
    let gb = s.gen("b", &b);
    s.switch(&ga, &[]);
    assert_same_as_fresh(&s, "a", &a);
    // Files inside the directory link resolve through the overlay.
    assert_eq!(
        read_in_root(&s.root, "/etc/systemd/system/wants/b.service").as_deref(),
        Some(&b"wanted b\n"[..])
    );
    s.switch(&gb, &[]);
    assert_same_as_fresh(&s, "b", &b);
    assert!(s.etc("systemd/system").symlink_metadata().unwrap().is_dir());
    assert!(
        absent(&s.etc("old")),
        "the removed nested directory is gone"
    );
    assert!(absent(&s.etc("systemd/system/b.service")));
    assert_eq!(
        read_in_root(&s.root, "/etc/systemd/system/a.service").as_deref(),
        Some(&b"[Service]\nExecStart=/bin/a2\n"[..])
    );
    assert_eq!(
        std::fs::read_link(s.etc("localtime")).unwrap().to_str(),
        Some("/etc/zoneinfo/America/New_York")
    );
    // And back: per-file links become one directory link again.
    s.switch(&ga, &[]);
    assert_same_as_fresh(&s, "a", &a);
    assert!(s
        .etc("systemd/system")
        .symlink_metadata()
        .unwrap()
        .is_symlink());
}

#[test]
fn second_switch_changes_nothing() {
    let s = Scratch::new("noop");
    let a = spec_a(&s);
    let ga = s.gen("a", &a);
    s.switch(&ga, &[]);
    let state = s.etc(".etcflip/applied.json");
    let before = (
        s.listing(),
        std::fs::metadata(&state).unwrap().modified().unwrap(),
    );
    let out = s.switch(&ga, &[]);
    assert!(out.contains("already up to date"), "{out}");
    let after = (
        s.listing(),
        std::fs::metadata(&state).unwrap().modified().unwrap(),
    );
    assert_eq!(before, after);
}
