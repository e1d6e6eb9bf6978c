//! The users part through both binaries: `--dry-run` shows the users phase, a switch writes
//! it (checked by the real `pwck` and `grpck`), a re-switch writes nothing, and a clash with
//! an account on the root, or a password file that cannot be used, refuses the switch with
//! nothing written.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use etcflip_e2e::{code, text_of, Scratch};
use serde_json::{json, Value};

fn spec(users: &Value) -> Value {
    json!({
        "etc": {"hosts": {"text": "127.0.0.1 localhost\n"}},
        "users": {"mutableUsers": true, "users": users,
                  "groups": [{"name": "root", "gid": 0, "members": []},
                             {"name": "users", "gid": 100, "members": ["alice"]}]}
    })
}

fn user(name: &str, uid: &Value, system: bool) -> Value {
    json!({"name": name, "uid": uid, "group": if system { "root" } else { "users" },
           "home": format!("/home/{name}"), "isSystemUser": system,
           "shell": "/run/current-system/sw/bin/bash"})
}

/// Every file below `top`, with its content, for "nothing was written".
fn listing(top: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![top.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p.clone());
            }
            let content = if p.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            out.push((p.display().to_string(), content));
        }
    }
    out.sort();
    out
}

#[test]
fn a_switch_writes_the_users_phase_the_dry_run_showed() {
    let s = Scratch::new("users-dry-run");
    s.file(
        "root/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\n+@nis::::::\n",
    );
    s.file("root/etc/group", "root:x:0:\nusers:x:100:\n");
    s.file("root/var/lib/nixos/uid-map", r#"{"bob": 1001}"#);
    let users = json!([
        user("root", &json!(0), true),
        user("alice", &Value::Null, false),
        user("bob", &Value::Null, false)
    ]);
    let gen = s.gen("g", &spec(&users));
    let before = listing(&s.root);

    let out = s.switch_out(&gen, &["--dry-run"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "users: would create user alice (allocate uid 1000)",
        "users: would create user bob (revive uid 1001)",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    let out = s.switch_out(&gen, &["--dry-run", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["users"]["passwd"],
        "root:x:0:0::/home/root:/run/current-system/sw/bin/bash\n\
         alice:x:1000:100::/home/alice:/run/current-system/sw/bin/bash\n\
         bob:x:1001:100::/home/bob:/run/current-system/sw/bin/bash\n+@nis::::::\n"
    );
    assert_eq!(report["users"]["gid_map"], json!({"root": 0, "users": 100}));

    assert_eq!(before, listing(&s.root), "a dry run writes nothing");

    // The switch writes group, passwd and shadow, and the ledgers.
    let out = s.switch_out(&gen, &[]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let read = |rel: &str| std::fs::read_to_string(s.root.join(rel)).unwrap();
    assert_eq!(
        read("etc/passwd"),
        report["users"]["passwd"].as_str().unwrap()
    );
    assert_eq!(read("etc/group"), "root:x:0:\nusers:x:100:alice\n");
    let shadow = read("etc/shadow");
    assert!(shadow.starts_with("root:!:1:::::"), "{shadow}");
    assert!(shadow.contains("\nalice:!:1:::::"), "{shadow}");
    let mode = std::fs::metadata(s.root.join("etc/shadow"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640, "shadow is not readable by others");
    assert_eq!(
        read("var/lib/nixos/uid-map"),
        r#"{"alice":1000,"bob":1001,"root":0}"#
    );
    assert_eq!(read("var/lib/nixos/declarative-users"), "alice bob root");
    // pwck also checks that homes and shells exist: give the scratch root what a system has.
    for home in ["root", "alice", "bob"] {
        std::fs::create_dir_all(s.root.join("home").join(home)).unwrap();
    }
    let shell = s.file("root/run/current-system/sw/bin/bash", "#!/bin/sh\n");
    std::fs::set_permissions(shell, std::fs::Permissions::from_mode(0o755)).unwrap();
    for tool in ["pwck", "grpck"] {
        let out = std::process::Command::new(tool)
            .args(["-r", "-R"])
            .arg(&s.root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool}: {}", text_of(&out));
    }

    // Drift in the user database is what verify reports.
    let out = s.etcflip(&["verify"]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let passwd = s.root.join("etc/passwd");
    let edited = read("etc/passwd").replace("alice:x:1000:100:", "alice:x:1000:100:edited");
    std::fs::write(&passwd, edited).unwrap();
    let out = s.etcflip(&["verify"]);
    assert_eq!(code(&out), 1, "{}", text_of(&out));
    assert!(
        text_of(&out).contains("a switch would change user alice"),
        "{}",
        text_of(&out)
    );
    switch_until_done(&s, &gen);

    // Switching again changes nothing, in the user database either.
    let written = listing(&s.root);
    let out = s.switch_out(&gen, &[]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert!(!text_of(&out).contains("users:"), "{}", text_of(&out));
    assert_eq!(written, listing(&s.root), "a re-switch writes nothing");
}

#[test]
fn a_static_id_another_account_holds_is_refused_as_a_conflict() {
    let s = Scratch::new("users-clash");
    s.file(
        "root/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nmallory:x:1000:100::/:/bin/sh\n",
    );
    s.file("root/etc/group", "root:x:0:\nusers:x:100:\n");
    let users = json!([
        user("root", &json!(0), true),
        user("alice", &json!(1000), false)
    ]);
    let gen = s.gen("g", &spec(&users));
    let before = listing(&s.root);
    for extra in [&[][..], &["--dry-run"]] {
        let out = s.switch_out(&gen, extra);
        assert_eq!(code(&out), 3, "{extra:?}: {}", text_of(&out));
        assert!(
            text_of(&out).contains("user alice: uid 1000 belongs to user mallory on the root"),
            "{}",
            text_of(&out)
        );
    }
    assert_eq!(before, listing(&s.root), "nothing was written");
}

#[test]
fn password_files_are_read_under_the_root_and_checked() {
    let s = Scratch::with_root_account("users-password-files");
    let mut alice = user("alice", &json!(1000), false);
    alice["hashedPasswordFile"] = json!("/run/secrets/alice");
    let gen = s.gen("g", &spec(&json!([user("root", &json!(0), true), alice])));
    let cases = [
        (
            None,
            2,
            "user alice: hashedPasswordFile /run/secrets/alice is missing",
        ),
        (
            Some("$6$a$b\nroot::0:0::/:/bin/sh\n"),
            2,
            "holds ':' or more than one line",
        ),
        (
            Some("\n"),
            2,
            "hashedPasswordFile /run/secrets/alice is empty",
        ),
        (
            Some("$6$salt$hash\n"),
            0,
            "users: would set the password of user alice: the hash in",
        ),
    ];
    for (content, want_code, want) in cases {
        let secret = s.root.join("run/secrets/alice");
        match content {
            Some(c) => drop(s.file("root/run/secrets/alice", c)),
            None => drop(std::fs::remove_file(&secret)),
        }
        let before = listing(&s.root);
        let out = s.switch_out(&gen, &["--dry-run"]);
        assert_eq!(code(&out), want_code, "{want}: {}", text_of(&out));
        assert!(text_of(&out).contains(want), "{want}: {}", text_of(&out));
        assert_eq!(before, listing(&s.root), "nothing was written");
    }
}

/// Switches `gen` until it succeeds; a switch that finds the user database changed since it
/// planned (a concurrent `useradd`) stops with nothing visible changed, and the rerun goes on.
fn switch_until_done(s: &Scratch, gen: &Path) {
    for _ in 0..50 {
        let out = s.switch_out(gen, &[]);
        match code(&out) {
            0 => return,
            1 if text_of(&out).contains("run the switch again") => {}
            c => panic!("exit {c}: {}", text_of(&out)),
        }
    }
    panic!("the switch never got through");
}

#[test]
fn a_concurrent_useradd_loses_nothing_and_shadow_is_never_readable_by_others() {
    let s = Scratch::with_root_account("users-concurrent");
    s.file("root/etc/shadow", "root:!:1::::::\n");
    std::fs::set_permissions(
        s.root.join("etc/shadow"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let base = [
        user("root", &json!(0), true),
        user("alice", &Value::Null, false),
    ];
    let gen_a = s.gen("a", &spec(&json!(base)));
    let mut more = base.to_vec();
    more.push(user("carol", &Value::Null, false));
    let gen_b = s.gen("b", &spec(&json!(more)));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Never readable by others, at any instant: shadow, its temporary file, useradd's backup.
    let watcher = {
        let (etc, stop) = (s.root.join("etc"), stop.clone());
        std::thread::spawn(move || {
            let mut looks = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for e in std::fs::read_dir(&etc).unwrap().flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if let (true, Ok(m)) = (name.contains("shadow"), e.metadata()) {
                        assert_eq!(
                            m.permissions().mode() & 0o007,
                            0,
                            "{name} readable by others"
                        );
                        looks += 1;
                    }
                }
            }
            looks
        })
    };
    let adder = {
        let root = s.root.clone();
        std::thread::spawn(move || {
            for n in 0..15 {
                let out = std::process::Command::new("useradd")
                    .args(["-M", "-N", "-g", "users", "-d", "/", "-s", "/bin/sh"])
                    .arg("--root")
                    .arg(&root)
                    .arg(format!("ext{n}"))
                    .output()
                    .unwrap();
                assert!(out.status.success(), "useradd: {}", text_of(&out));
                std::thread::sleep(std::time::Duration::from_millis(3));
            }
        })
    };
    for i in 0..30 {
        switch_until_done(&s, if i % 2 == 0 { &gen_b } else { &gen_a });
    }
    adder.join().unwrap();
    switch_until_done(&s, &gen_b);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(watcher.join().unwrap() > 0, "the watcher looked");

    let passwd = std::fs::read_to_string(s.root.join("etc/passwd")).unwrap();
    let shadow = std::fs::read_to_string(s.root.join("etc/shadow")).unwrap();
    let names: Vec<String> = (0..15)
        .map(|n| format!("ext{n}"))
        .chain(["alice".into(), "carol".into()])
        .collect();
    for name in &names {
        assert!(
            passwd.contains(&format!("\n{name}:x:")),
            "{name} lost from passwd:\n{passwd}"
        );
        assert!(
            shadow.contains(&format!("\n{name}:")),
            "{name} lost from shadow"
        );
    }
    let mut uids: Vec<&str> = passwd
        .lines()
        .map(|l| l.split(':').nth(2).unwrap())
        .collect();
    let count = uids.len();
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(uids.len(), count, "every uid is unique:\n{passwd}");
    let out = std::process::Command::new("grpck")
        .args(["-r", "-R"])
        .arg(&s.root)
        .output()
        .unwrap();
    assert!(out.status.success(), "grpck: {}", text_of(&out));
}

/// The user database and ledgers of a root, for comparing two runs.
fn user_files(root: &Path) -> Vec<(String, String)> {
    [
        "etc/passwd",
        "etc/group",
        "etc/shadow",
        "var/lib/nixos/uid-map",
        "var/lib/nixos/gid-map",
        "var/lib/nixos/declarative-users",
        "var/lib/nixos/declarative-groups",
    ]
    .iter()
    .map(|rel| {
        (
            (*rel).to_owned(),
            std::fs::read_to_string(root.join(rel)).unwrap_or_default(),
        )
    })
    .collect()
}

/// Killed (SIGKILL, etcflip alone) at any rename of a switch that adds, changes and removes
/// users, the rerun converges to exactly what an uninterrupted switch writes.
#[test]
fn a_switch_killed_at_any_rename_of_the_users_phase_converges() {
    let setup = |name: &str| {
        let s = Scratch::new(name);
        s.file(
            "root/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nold:x:1000:100::/:/bin/sh\n",
        );
        s.file("root/etc/group", "root:x:0:\nusers:x:100:old\n");
        s.file("root/etc/shadow", "root:!:1::::::\nold:!:1::::::\n");
        s.file("root/var/lib/nixos/declarative-users", "old root");
        let mut alice = user("alice", &Value::Null, false);
        alice["hashedPassword"] = json!("$6$salt$hash");
        let users = json!([
            user("root", &json!(0), true),
            alice,
            user("svc", &Value::Null, true)
        ]);
        let gen = s.gen("g", &spec(&users));
        (s, gen)
    };
    let (reference, gen) = setup("users-kill-reference");
    switch_until_done(&reference, &gen);
    let want = user_files(&reference.root);
    assert!(want[0].1.contains("alice:x:1001:100:"), "{want:?}");
    let mut killed_in_phase_3 = 0;
    for n in 1..30 {
        let (s, gen) = setup("users-kill");
        if !etcflip_e2e::switch_killed_at(&s, &gen, &[], "renameat", n) {
            break; // the switch got through: every rename was tried
        }
        if std::fs::read_to_string(s.root.join("etc/passwd"))
            .unwrap()
            .contains("alice")
        {
            killed_in_phase_3 += 1;
        }
        switch_until_done(&s, &gen);
        assert_eq!(user_files(&s.root), want, "killed at rename {n}");
    }
    assert!(
        killed_in_phase_3 > 0,
        "some kills hit the users phase after passwd was written"
    );
}

#[test]
fn homes_are_made_owned_and_lingering_follows_the_declaration() {
    use std::os::unix::fs::MetadataExt as _;
    let s = Scratch::with_root_account("users-homes");
    let with = |linger: bool| {
        let mut alice = user("alice", &json!(1000), false);
        alice["createHome"] = json!(true);
        alice["homeMode"] = json!("750");
        alice["linger"] = json!(linger);
        json!([user("root", &json!(0), true), alice])
    };
    let on = s.gen("on", &spec(&with(true)));
    let off = s.gen("off", &spec(&with(false)));
    let out = s.switch_out(&on, &["--dry-run"]);
    assert!(
        text_of(&out).contains("users: would make the home /home/alice (1000:100, mode 0750)"),
        "{}",
        text_of(&out)
    );
    switch_until_done(&s, &on);
    let home = std::fs::metadata(s.root.join("home/alice")).unwrap();
    assert_eq!(
        (home.uid(), home.gid(), home.mode() & 0o7777),
        (1000, 100, 0o750)
    );
    let linger = s.root.join("var/lib/systemd/linger/alice");
    assert!(linger.exists());
    let before = listing(&s.root);
    switch_until_done(&s, &on);
    assert_eq!(before, listing(&s.root), "a re-switch writes nothing");
    // A home whose mode drifted is given its mode again.
    std::fs::set_permissions(
        s.root.join("home/alice"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    switch_until_done(&s, &off);
    let home = std::fs::metadata(s.root.join("home/alice")).unwrap();
    assert_eq!(home.mode() & 0o7777, 0o750);
    // With mutableUsers, lingering is set when the user is made, then left to the user.
    assert!(linger.exists(), "an existing user's lingering is its own");
    // A user the generation drops stops lingering.
    let gone = s.gen("gone", &spec(&json!([user("root", &json!(0), true)])));
    switch_until_done(&s, &gone);
    assert!(!linger.exists());
}

#[test]
fn a_user_file_that_is_a_link_refuses_the_switch_and_an_open_shadow_is_closed() {
    let s = Scratch::with_root_account("users-unwritable");
    s.file("root/persist/shadow", "root:!:1::::::\n");
    std::os::unix::fs::symlink("/persist/shadow", s.root.join("etc/shadow")).unwrap();
    let users = json!([
        user("root", &json!(0), true),
        user("alice", &json!(1000), false)
    ]);
    let gen = s.gen("g", &spec(&users));
    let before = listing(&s.root);
    let out = s.switch_out(&gen, &[]);
    assert_eq!(code(&out), 3, "{}", text_of(&out));
    assert!(text_of(&out).contains("etc/shadow is not a regular file etcflip can replace"));
    assert_eq!(
        before,
        listing(&s.root),
        "nothing was written, not even passwd"
    );

    // A shadow readable by others is closed, even when its lines are already right.
    std::fs::remove_file(s.root.join("etc/shadow")).unwrap();
    s.file("root/etc/shadow", "root:!:1::::::\n");
    std::fs::set_permissions(
        s.root.join("etc/shadow"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    switch_until_done(&s, &gen);
    let mode = std::fs::metadata(s.root.join("etc/shadow"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    std::fs::set_permissions(
        s.root.join("etc/shadow"),
        std::fs::Permissions::from_mode(0o604),
    )
    .unwrap();
    let out = s.switch_out(&gen, &[]);
    assert!(
        text_of(&out).contains("users: make /etc/shadow unreadable by others"),
        "{}",
        text_of(&out)
    );
    let mode = std::fs::metadata(s.root.join("etc/shadow"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Runs `etcflip switch GEN --root ROOT` in a private mount namespace while perl holds
/// `ROOT/etc/.pwd.lock` as `lckpwdf` takes it ([`etcflip_e2e::LCKPWDF`]); once the switch
/// waits for it (after phase 1), `meanwhile` runs (bash, with `$root` set), then the lock is
/// let go. Returns what the script printed: `exit N`, the switch's output, then what `after`
/// prints.
fn switch_while_locked(s: &Scratch, gen: &Path, meanwhile: &str, after: &str) -> String {
    s.file("root/etc/.pwd.lock", "");
    let script = format!(
        r#"
        root=$1 gen=$2 etcflip=$3 lckpwdf=$4
        perl -e "$lckpwdf" "$root/etc/.pwd.lock" < <(sleep 3) > lock.out &
        for _ in $(seq 100); do grep -q locked lock.out 2>/dev/null && break; sleep 0.05; done
        grep -q locked lock.out
        "$etcflip" switch "$gen" --root "$root" > switch.out 2>&1 &
        pid=$!
        sleep 1
        {meanwhile}
        wait "$pid" && echo "exit 0" || echo "exit $?"
        cat switch.out
        {after}
    "#
    );
    let out = std::process::Command::new("unshare")
        .args(etcflip_e2e::unshare_private())
        .args(["bash", "-eu", "-c", &script, "bash"])
        .arg(&s.root)
        .arg(gen)
        .arg(etcflip_e2e::bin("etcflip"))
        .arg(etcflip_e2e::LCKPWDF)
        .current_dir(&s.dir)
        .output()
        .unwrap();
    let text = text_of(&out);
    assert_eq!(code(&out), 0, "{text}");
    text
}

/// A root whose users are already what `users` declares (alice added by a first switch).
fn settled_root(name: &str) -> (Scratch, std::path::PathBuf) {
    let s = Scratch::with_root_account(name);
    s.file("root/etc/shadow", "root:!:1::::::\n");
    let users = json!([
        user("root", &json!(0), true),
        user("alice", &json!(1000), false)
    ]);
    let gen = s.gen("g", &spec(&users));
    (s, gen)
}

/// Phase 3 does not plan again when the root did not change since phase 1, but it still looks
/// at what reading cannot see: a `passwd` that became a mount point (with the same content)
/// while the switch waited for `/etc/.pwd.lock` refuses the switch, and nothing is written.
#[test]
fn a_user_file_mounted_over_while_the_lock_is_waited_for_refuses_the_switch() {
    let (s, gen) = settled_root("users-mounted-meanwhile");
    s.file("copy-of-passwd", "root:x:0:0:root:/root:/bin/sh\n");
    let text = switch_while_locked(
        &s,
        &gen,
        r#"mount --bind "$PWD/copy-of-passwd" "$root/etc/passwd""#,
        r#"umount "$root/etc/passwd"; grep -c alice "$root/etc/passwd" "$root/etc/group" || true"#,
    );
    assert!(!text.contains("exit 0"), "the switch went through: {text}");
    assert!(
        text.contains("etc/passwd is not a regular file etcflip can replace"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            "{root}/etc/passwd:0\n{root}/etc/group:0\n",
            root = s.root.display()
        )),
        "alice was written (over the mount, under it, or into group): {text}"
    );
}

/// Neither does phase 3 keep phase 1's verdict on what it looked at besides the files: a
/// `shadow` opened to others while the switch waited for the lock is closed by it, even
/// though the user database itself is already as declared.
#[test]
fn a_shadow_opened_while_the_lock_is_waited_for_is_closed() {
    let (s, gen) = settled_root("users-opened-meanwhile");
    let out = s.switch_out(&gen, &[]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    // Another generation: a writing switch whose users part is already current.
    let users = json!([
        user("root", &json!(0), true),
        user("alice", &json!(1000), false)
    ]);
    let mut next = spec(&users);
    next["etc"]["motd"] = json!({"text": "hello\n"});
    let gen2 = s.gen("g2", &next);
    let text = switch_while_locked(
        &s,
        &gen2,
        r#"chmod 0644 "$root/etc/shadow""#,
        r#"stat -c %a "$root/etc/shadow""#,
    );
    assert!(text.contains("exit 0"), "{text}");
    assert!(text.ends_with("\n640\n"), "shadow left open: {text}");
}

/// A root as NixOS's `update-users-groups.pl` leaves it: files sorted by id, ledgers in its
/// formats (`encode_json` without spaces, keys in hash order, an id that an older Perl JSON
/// wrote as a string; names space-separated).
fn nixos_root(s: &Scratch) {
    s.file(
        "root/etc/passwd",
        "root:x:0:0:System administrator:/root:/run/current-system/sw/bin/bash\n\
         messagebus:x:4:4:D-Bus system message bus daemon user:/run/dbus:/run/current-system/sw/bin/nologin\n\
         sshd:x:998:998:SSH privilege separation user:/var/empty:/run/current-system/sw/bin/nologin\n\
         alice:x:1000:100::/home/alice:/run/current-system/sw/bin/bash\n\
         nixbld1:x:30001:30000:Nix build user 1:/var/empty:/run/current-system/sw/bin/nologin\n",
    );
    s.file(
        "root/etc/group",
        "root:x:0:\nwheel:x:1:alice\nmessagebus:x:4:\nusers:x:100:\nsshd:x:998:\n\
         nixbld:x:30000:nixbld1\n",
    );
    s.file(
        "root/etc/shadow",
        "root:$6$r$hash:1::::::\nmessagebus:!:1::::::\nsshd:!:1::::::\nalice:$6$a$hash:19000::::::\n\
         nixbld1:!:1::::::\n",
    );
    let shadow = s.root.join("etc/shadow");
    std::fs::set_permissions(shadow, std::fs::Permissions::from_mode(0o640)).unwrap();
    s.file(
        "root/var/lib/nixos/uid-map",
        r#"{"nixbld1":30001,"sshd":"998","alice":1000,"root":0,"messagebus":4}"#,
    );
    s.file(
        "root/var/lib/nixos/gid-map",
        r#"{"sshd":998,"nixbld":30000,"users":100,"wheel":1,"root":0,"messagebus":4}"#,
    );
    s.file(
        "root/var/lib/nixos/declarative-users",
        "alice messagebus nixbld1 root sshd",
    );
    s.file(
        "root/var/lib/nixos/declarative-groups",
        "messagebus nixbld root sshd users wheel",
    );
}

#[test]
fn a_running_nixos_is_taken_over_with_the_same_ids() {
    let s = Scratch::new("users-takeover");
    nixos_root(&s);
    let sys = |name: &str, uid: &Value, group: &str, home: &str, desc: &str| {
        let mut u = user(name, uid, true);
        u["group"] = json!(group);
        u["home"] = json!(home);
        u["description"] = json!(desc);
        u["shell"] = json!("/run/current-system/sw/bin/nologin");
        u
    };
    let mut root = user("root", &json!(0), true);
    root["home"] = json!("/root");
    root["description"] = json!("System administrator");
    let users = json!([
        root,
        sys(
            "messagebus",
            &json!(4),
            "messagebus",
            "/run/dbus",
            "D-Bus system message bus daemon user"
        ),
        sys(
            "sshd",
            &Value::Null,
            "sshd",
            "/var/empty",
            "SSH privilege separation user"
        ),
        user("alice", &json!(1000), false),
        sys(
            "nixbld1",
            &json!(30001),
            "nixbld",
            "/var/empty",
            "Nix build user 1"
        ),
    ]);
    let groups = json!([
        {"name": "root", "gid": 0, "members": []}, {"name": "wheel", "gid": 1, "members": ["alice"]},
        {"name": "messagebus", "gid": 4, "members": []}, {"name": "users", "gid": 100, "members": []},
        {"name": "sshd", "gid": null, "members": []}, {"name": "nixbld", "gid": 30000, "members": ["nixbld1"]}
    ]);
    let spec = json!({"etc": {"hosts": {"text": "127.0.0.1 localhost\n"}},
                      "users": {"mutableUsers": true, "users": users, "groups": groups}});
    let gen = s.gen("g", &spec);
    let before: Vec<String> = ["etc/passwd", "etc/group", "etc/shadow"]
        .iter()
        .map(|r| std::fs::read_to_string(s.root.join(r)).unwrap())
        .collect();
    let out = s.switch_out(&gen, &["--dry-run"]);
    assert!(
        !text_of(&out).contains("users:"),
        "nothing to change:\n{}",
        text_of(&out)
    );
    switch_until_done(&s, &gen);
    for (i, rel) in ["etc/passwd", "etc/group", "etc/shadow"].iter().enumerate() {
        assert_eq!(
            std::fs::read_to_string(s.root.join(rel)).unwrap(),
            before[i],
            "{rel}"
        );
    }
    // The ledgers are left as update-users-groups.pl wrote them (nothing to change).
    let uid_map = std::fs::read_to_string(s.root.join("var/lib/nixos/uid-map")).unwrap();
    assert!(uid_map.contains(r#""sshd":"998""#), "{uid_map}");
}

/// What the generator precomputes when every id is static is what a switch writes on a root
/// with no user database yet (an image build may take it without switching).
#[test]
fn precomputed_passwd_and_group_are_what_a_first_switch_writes() {
    let s = Scratch::new("users-precomputed");
    std::fs::create_dir_all(s.root.join("etc")).unwrap();
    let mut alice = user("alice", &json!(1000), false);
    alice["description"] = json!("Alice Q. User");
    let mut svc = user("svc", &json!(900), true);
    svc["group"] = json!("100");
    let mut spec = spec(&json!([
        user("root", &json!(0), true),
        alice,
        svc,
        user("bob", &json!(1001), false)
    ]));
    spec["users"]["groups"] = json!([
        {"name": "root", "gid": 0, "members": []},
        {"name": "wheel", "gid": 1, "members": ["bob", "alice", "bob"]},
        {"name": "users", "gid": 100, "members": []}
    ]);
    let gen = s.gen("g", &spec);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(gen.join("manifest.json")).unwrap()).unwrap();
    let pre = &manifest["users"]["precomputed"];
    assert!(pre.is_object(), "{manifest:#}");
    let out = s.switch_out(&gen, &[]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    for file in ["passwd", "group"] {
        assert_eq!(
            std::fs::read_to_string(s.root.join("etc").join(file)).unwrap(),
            pre[file].as_str().unwrap(),
            "{file}"
        );
    }
}

/// The owner names of copies resolve against the user database the same switch writes: a
/// copy owned by a user this switch creates (its uid allocated here) gets that uid.
#[test]
fn a_copy_owned_by_a_user_this_switch_creates_gets_its_new_ids() {
    use std::os::unix::fs::MetadataExt as _;
    let s = Scratch::with_root_account("users-copy-owner");
    s.file("root/etc/shadow", "root:!:1::::::\n");
    let mut spec = spec(&json!([
        user("root", &json!(0), true),
        user("alice", &Value::Null, false)
    ]));
    spec["etc"]["alice.conf"] =
        json!({"text": "mine\n", "mode": "0640", "user": "alice", "group": "users"});
    let gen = s.gen("g", &spec);
    let out = s.switch_out(&gen, &[]);
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    assert!(
        !text_of(&out).contains("not in passwd/group yet"),
        "{}",
        text_of(&out)
    );
    let meta = std::fs::metadata(s.root.join("etc/alice.conf")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 100));
}
