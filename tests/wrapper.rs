//! The wrapper binary, run for real as an unprivileged user (`setpriv --reuid=65534
//! --regid=65534 --clear-groups`): copies of `etcflip-wrapper` patched with a target, made
//! setuid, setgid or given file capabilities (`setcap`), run a small C program that prints its
//! argv, ids, capability sets and environment.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use etcflip_e2e::{ambient, as_nobody, bin, code, field, text_of, Scratch};

/// A directory others may enter, with the target program compiled in it.
fn setup(name: &str) -> (Scratch, PathBuf, PathBuf) {
    let s = Scratch::new(name);
    let dir = s.dir.join("bin");
    let show = etcflip_e2e::show_program(&s.dir, &dir);
    (s, dir, show)
}

/// A copy of the wrapper binary in `dir`, named `name`, patched to run `target` (or left
/// unpatched), owned by root with `mode`.
fn wrapper(dir: &Path, name: &str, target: Option<&str>, mode: u32) -> PathBuf {
    let mut bytes = std::fs::read(bin("etcflip-wrapper")).unwrap();
    if let Some(t) = target {
        etcflip_format::wrapper::patch(&mut bytes, t).unwrap();
    }
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
    // After the chown, which would clear them.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn setcap(caps: &str, path: &Path) {
    let out = Command::new("setcap")
        .arg(caps)
        .arg(path)
        .output()
        .expect("setcap (libcap2-bin)");
    assert!(out.status.success(), "setcap {caps}: {}", text_of(&out));
}

#[test]
fn setuid_and_setgid_wrappers_run_their_target_with_the_owners_ids() {
    let (_s, dir, show) = setup("wrapper-setid");
    let target = show.to_str().unwrap();
    // (mode, the ids the target sees: real uid, effective uid, real gid, effective gid);
    // execute-only too, NixOS's default (u+rx,g+x,o+x): the caller cannot read the wrapper.
    let cases = [
        (0o4755, "65534 0 65534 65534"),
        (0o2755, "65534 65534 65534 0"),
        (0o0755, "65534 65534 65534 65534"),
        (0o4511, "65534 0 65534 65534"),
        (0o2511, "65534 65534 65534 0"),
        (0o0511, "65534 65534 65534 65534"),
    ];
    for (mode, ids) in cases {
        let w = wrapper(&dir, &format!("w{mode:o}"), Some(target), mode);
        let out = as_nobody(&w, &[], &[]);
        let t = text_of(&out);
        assert_eq!(code(&out), 0, "{mode:o}: {t}");
        assert_eq!(field(&t, "ids="), [ids], "{mode:o}: {t}");
        assert_eq!(ambient(&t), 0, "{mode:o}: no capabilities raised: {t}");
    }
}

#[test]
fn a_capability_wrapper_raises_its_capabilities_into_the_ambient_set_but_setpcap() {
    let (_s, dir, show) = setup("wrapper-caps");
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // (the file's capabilities, its mode, the ambient set the target sees)
    let cases = [
        ("cap_net_raw+ep".to_owned(), 0o755, 1u64 << 13),
        // Execute-only, NixOS's default mode: the attribute is read without reading the file.
        ("cap_net_raw+ep".to_owned(), 0o511, 1 << 13),
        (
            "cap_setpcap,cap_net_raw,cap_sys_time+ep".to_owned(),
            0o755,
            1 << 13 | 1 << 25,
        ),
        // The last capability the kernel knows, which NixOS's wrapper never raises.
        (format!("cap_net_raw,{last}+ep"), 0o755, 1 << 13 | 1 << last),
    ];
    for (caps, mode, want) in cases {
        let w = wrapper(&dir, "wcap", Some(show.to_str().unwrap()), mode);
        setcap(&caps, &w);
        let out = as_nobody(&w, &[], &[]);
        let t = text_of(&out);
        assert_eq!(code(&out), 0, "{caps}: {t}");
        assert_eq!(ambient(&t), want, "{caps}: {t}");
        assert_eq!(
            field(&t, "ids="),
            ["65534 65534 65534 65534"],
            "{caps}: {t}"
        );
        std::fs::remove_file(&w).unwrap();
    }
}

#[test]
fn the_loaders_environment_is_dropped_and_argv_is_passed_on_intact() {
    let (_s, dir, show) = setup("wrapper-env");
    let target = show.to_str().unwrap();
    let env = [
        ("LD_PRELOAD", "/nonexistent/preload.so"),
        ("LD_LIBRARY_PATH", "/nonexistent"),
        ("GLIBC_TUNABLES", "glibc.malloc.check=3"),
        ("MALLOC_CHECK_", "3"),
        ("MALLOC_ARENA_MAX", "1"),
        ("TMPDIR", "/nonexistent"),
        // Read by the loader, missing from older lists of unsafe variables.
        ("LD_BIND_NOW", "1"),
        ("LD_VERBOSE", "1"),
        ("LD_PREFER_MAP_32BIT_EXEC", "1"),
        ("KEEP_ME", "yes"),
    ];
    let caps = wrapper(&dir, "wcap", Some(target), 0o755);
    setcap("cap_net_raw+ep", &caps);
    let setuid = wrapper(&dir, "wsuid", Some(target), 0o4755);
    let plain = wrapper(&dir, "wplain", Some(target), 0o755);
    for w in [&caps, &setuid, &plain] {
        // Called by another name, with arguments: the target gets exactly that argv.
        let named = dir.join("other-name");
        let _ = std::fs::remove_file(&named);
        std::os::unix::fs::symlink(w, &named).unwrap();
        let out = as_nobody(&named, &["one", "two words", ""], &env);
        let t = text_of(&out);
        assert_eq!(code(&out), 0, "{}: {t}", w.display());
        assert_eq!(field(&t, "argv0="), [named.to_str().unwrap()], "{t}");
        assert_eq!(field(&t, "arg="), ["one", "two words", ""], "{t}");
        let vars = field(&t, "env=");
        assert!(vars.contains(&"KEEP_ME=yes"), "{}: {t}", w.display());
        for (name, _) in &env[..env.len() - 1] {
            let gone = !vars.iter().any(|v| v.starts_with(&format!("{name}=")));
            assert!(gone, "{} passed on {name}: {t}", w.display());
        }
    }
}

#[test]
fn a_wrapper_without_a_target_or_with_a_missing_one_says_so_and_exits_1() {
    let (_s, dir, _show) = setup("wrapper-refuse");
    // A file the kernel will not run: no `/bin/sh` may run it instead, with privileges.
    let script = dir.join("no-shebang");
    std::fs::write(&script, "id > /dev/null\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let no_shebang = format!("cannot run {}: ENOEXEC", script.display());
    // (target written into the copy, what it says)
    let cases = [
        (None, "this copy names no target"),
        (Some(script.to_str().unwrap()), no_shebang.as_str()),
        (
            Some("/nonexistent/program"),
            "cannot run /nonexistent/program",
        ),
    ];
    for (target, want) in cases {
        let w = wrapper(&dir, "w", target, 0o4755);
        let out = as_nobody(&w, &["x"], &[]);
        let t = text_of(&out);
        assert_eq!(code(&out), 1, "{target:?}: {t}");
        assert!(t.contains(&format!("etcflip-wrapper: {want}")), "{t}");
    }
}
