//! The Nix side, for real, with Debian's nix-bin (Nix 2.8) and no network:
//! - every `.nix` file of the repository parses;
//! - the pure conversion (`nixos/spec.nix`) gives the expected spec on several option sets
//!   (`tests/nix/cases/*.nix` → `*.json`);
//! - the flake's outputs that need only builtins evaluate without nixpkgs;
//! - a generation built by `nix-build` from builtins alone (`tests/nix/generation.nix`) is a
//!   store path, the same for the same inputs and byte-identical across separate builds,
//!   another for another spec; `etcflip switch` applies it, and every link then resolves into
//!   `/nix/store`.
//!
//! The NixOS module, the package and the VM test need nixpkgs: they are parsed here, and
//! evaluated only where nixpkgs is available (README, "NixOS").
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use etcflip_e2e::{absent, bin, code, listing, repo_root, text_of, Scratch};
use serde_json::Value;

/// Runs a Nix command with the tests' own configuration, `tests/nix/conf/nix.conf`, and
/// nothing of the machine's (its `/etc/nix/nix.conf`, the user's, `NIX_CONFIG`): offline,
/// unsandboxed, and building as the calling user, so no `nixbld` group is needed. The store
/// stays the machine's `/nix/store`, used directly (no daemon).
fn nix(program: &str, args: &[&str]) -> Output {
    // One Nix command at a time: on a fresh machine the store's database is new, and the
    // tests' builds running together made Nix 2.8 fail with "database is busy".
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .env("NIX_CONF_DIR", repo_root().join("tests/nix/conf"))
        .env("NIX_USER_CONF_FILES", "")
        .env_remove("NIX_CONFIG")
        .env_remove("NIX_REMOTE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (Debian package nix-bin): {e}"))
}

fn ok(out: &Output, what: &str) -> String {
    assert_eq!(code(out), 0, "{what}: {}", text_of(out));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `nix-instantiate --eval --strict --json` of a file or (with `-E`) an expression.
fn eval_json(args: &[&str]) -> Value {
    let mut all = vec!["--eval", "--strict", "--json"];
    all.extend_from_slice(args);
    let out = ok(&nix("nix-instantiate", &all), &format!("eval {args:?}"));
    serde_json::from_str(&out).unwrap()
}

/// Every `.nix` file of the repository (not below `target/` or `.cache/`), sorted.
fn nix_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for ent in std::fs::read_dir(dir).unwrap() {
        let p = ent.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() && !matches!(name.as_str(), "target" | ".cache" | ".git") {
            nix_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "nix") {
            out.push(p);
        }
    }
    out.sort();
}

#[test]
fn every_nix_file_parses() {
    let mut files = Vec::new();
    nix_files(&repo_root(), &mut files);
    let names: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(repo_root()).unwrap().display().to_string())
        .collect();
    for want in [
        "flake.nix",
        "nixos/module.nix",
        "nixos/spec.nix",
        "nixos/package.nix",
        "nixos/generation.nix",
        "nixos/tests/vm.nix",
        "tests/nix/generation.nix",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} not found in {names:?}"
        );
    }
    for f in &files {
        ok(
            &nix("nix-instantiate", &["--parse", f.to_str().unwrap()]),
            &format!("parse {}", f.display()),
        );
    }
}

/// Nix reads the tests' configuration and nothing else, wherever the tests run.
#[test]
fn nix_reads_only_the_tests_configuration() {
    let out = ok(
        &nix("nix-build", &["--verbose", "--version"]),
        "nix-build --version",
    );
    let conf = repo_root().join("tests/nix/conf/nix.conf");
    assert!(
        out.lines()
            .any(|l| l == format!("System configuration file: {}", conf.display())),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.trim_end() == "User configuration files:"),
        "{out}"
    );
}

#[test]
fn the_conversion_gives_the_expected_specs() {
    let dir = repo_root().join("tests/nix/cases");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "nix"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "{cases:?}");
    for case in cases {
        let got = eval_json(&[case.to_str().unwrap()]);
        let want: Value =
            serde_json::from_str(&std::fs::read_to_string(case.with_extension("json")).unwrap())
                .unwrap();
        assert_eq!(got, want, "{}", case.display());
    }
    // NixOS's own users-groups.json, as the conversion gives it, is a users part the generator
    // takes: every field it carries is known.
    let s = Scratch::new("nix-users-case");
    let build = |case: &str, out: &str| {
        Command::new(bin("etcflip-gen"))
            .args(["build", "--spec"])
            .arg(dir.join(case))
            .arg("--out")
            .arg(s.dir.join(out))
            .output()
            .unwrap()
    };
    let out = build("users.json", "gen");
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let manifest = std::fs::read_to_string(s.dir.join("gen/manifest.json")).unwrap();
    assert!(
        manifest.contains("allocate the uid of user service-account"),
        "{manifest}"
    );
    // NixOS's security.wrappers, as the conversion gives it: every field is one the generator
    // knows; what it refuses is only that these store paths do not exist here.
    let out = build("wrappers.json", "gen-wrappers");
    let t = text_of(&out);
    assert_eq!(code(&out), 2, "{t}");
    assert!(t.contains("invalid (3 problems)"), "{t}");
    assert_eq!(t.matches("does not exist in the store").count(), 3, "{t}");
}

#[test]
fn a_path_source_goes_through_the_store() {
    let v = eval_json(&[
        "-E",
        "(import ./nixos/spec.nix).spec { etc.issue.source = ./tests/nix/fixtures/issue; }",
    ]);
    let source = v["etc"]["issue"]["source"].as_str().unwrap();
    assert!(
        source.starts_with("/nix/store/") && source.ends_with("-issue"),
        "{source}"
    );
}

#[test]
fn flake_outputs_that_need_only_builtins_evaluate_without_nixpkgs() {
    // `nixpkgs` is a value that fails when touched: what evaluates does not need it.
    let v = eval_json(&[
        "-E",
        r#"
        let
          flake = import ./flake.nix;
          out = flake.outputs { self = out; nixpkgs = throw "nixpkgs is not available here"; };
        in {
          inherit (flake) description;
          nixpkgs = flake.inputs.nixpkgs.url;
          module = map toString out.nixosModules.default.imports;
          same = out.lib.spec { etc.motd.text = "hi\n"; }
            == (import ./nixos/spec.nix).spec { etc.motd.text = "hi\n"; };
          outputs = builtins.attrNames out;
        }
        "#,
    ]);
    assert!(v["description"].as_str().unwrap().contains("etcflip"));
    assert!(v["nixpkgs"]
        .as_str()
        .unwrap()
        .starts_with("github:NixOS/nixpkgs/"));
    let module = v["module"].as_array().unwrap();
    assert_eq!(module.len(), 1, "{v:#}");
    assert!(
        module[0].as_str().unwrap().ends_with("/nixos/module.nix"),
        "{v:#}"
    );
    assert_eq!(v["same"], Value::Bool(true));
    assert_eq!(
        v["outputs"],
        serde_json::json!(["checks", "devShells", "lib", "nixosModules", "packages"])
    );
}

/// The package is static-pie on glibc (no dynamic loader at every activation) and a plain
/// build elsewhere. Evaluated with `buildRustPackage` returning its arguments and the few
/// `lib` functions the file calls; nothing of nixpkgs is built.
#[test]
fn the_package_links_statically_on_glibc_only() {
    let v = eval_json(&[
        "-E",
        r#"
        let
          lib = {
            importTOML = f: builtins.fromTOML (builtins.readFile f);
            optionals = c: l: if c then l else [ ];
            optionalAttrs = c: a: if c then a else { };
          };
          package = isGnu: import ./nixos/package.nix {
            inherit lib;
            stdenv.hostPlatform = { inherit isGnu; };
            rustPlatform.buildRustPackage = args: {
              buildInputs = args.buildInputs or [ ];
              inherit (args) env;
            };
            glibc.static = "glibc-static";
          };
        in { gnu = package true; musl = package false; }
        "#,
    ]);
    // libc.a is named to the target crates' link alone: in buildInputs its -L would come
    // first for build scripts too, which then crash (nixpkgs issue 59267).
    assert_eq!(v["gnu"]["buildInputs"], serde_json::json!([]), "{v:#}");
    assert_eq!(
        v["gnu"]["env"]["RUSTFLAGS"], "-C target-feature=+crt-static -L native=glibc-static/lib",
        "{v:#}"
    );
    assert_eq!(v["musl"]["buildInputs"], serde_json::json!([]), "{v:#}");
    assert_eq!(v["musl"]["env"], serde_json::json!({}), "{v:#}");
}

/// The module links the generation into the system through the builder option that its
/// nixpkgs declares: `system.systemBuilderCommands` on current nixpkgs (where the old name is
/// an alias that warns), `system.extraSystemBuilderCmds` on older ones. Evaluated with `options`
/// shaped like each nixpkgs and the stand-ins of `tests/nix/lib.nix`; nothing else of nixpkgs is touched.
#[test]
fn the_module_uses_the_builder_option_its_nixpkgs_declares() {
    let v = eval_json(&[
        "-E",
        r#"
        let
          lib = import ./tests/nix/lib.nix;
          defined = options:
            let
              module = import ./nixos/module.nix {
                inherit lib options;
                config = throw "config is not needed";
                pkgs = throw "nixpkgs is not available here";
                utils = throw "utils is not needed";
              };
            in
            builtins.concatMap (c: builtins.attrNames (c.system or { })) module.config.content.contents;
        in {
          current = defined { system = { systemBuilderCommands = { }; extraSystemBuilderCmds = { }; }; };
          older = defined { system.extraSystemBuilderCmds = { }; };
        }
        "#,
    ]);
    let has = |which: &str, name: &str| {
        v[which]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str() == Some(name))
    };
    assert!(has("current", "systemBuilderCommands"), "{v:#}");
    assert!(!has("current", "extraSystemBuilderCmds"), "{v:#}");
    assert!(has("older", "extraSystemBuilderCmds"), "{v:#}");
    assert!(!has("older", "systemBuilderCommands"), "{v:#}");
    assert!(has("current", "build"), "the other definitions stay: {v:#}");
}

/// With the users, the module runs the one switch as the `users` snippet (adding only its text
/// and `specialfs` to what other modules give `users`), empties `etc`, and sends `config.users`
/// as the spec's `users` part; with userborn or systemd-sysusers also on, an assertion says
/// which and what to do. Evaluated with the stand-ins of `tests/nix/lib.nix` and a `config`
/// holding only what these definitions read.
#[test]
fn the_module_switches_users_and_etc_at_the_users_snippet() {
    let v = eval_json(&[
        "-E",
        r"
        let
          lib = import ./tests/nix/lib.nix;
          module = userborn: lib.module {
            system.etcflip = { enable = true; users = true; image.enable = false; };
            services.userborn.enable = userborn;
            users = { mutableUsers = false; users = { }; groups = { }; };
          };
          contents = (module false).config.content.contents;
          users = builtins.head (builtins.filter (c: c ? condition) contents);
          clash = builtins.elemAt (builtins.head (module true).config.content.contents).assertions 2;
        in {
          etc = (builtins.head contents).system.build.etcActivationCommands;
          inherit (users) condition;
          deps = users.content.system.activationScripts.users.deps;
          dry = users.content.system.activationScripts.users.supportsDryActivation;
          part = users.content.system.etcflip.spec.users.mutableUsers;
          fine = (builtins.elemAt (builtins.head contents).assertions 2).assertion;
          clash = { inherit (clash) assertion message; };
        }
        ",
    ]);
    assert!(
        v["etc"]
            .as_str()
            .unwrap()
            .starts_with("# etcflip: /etc was switched"),
        "{v:#}"
    );
    assert_eq!(v["condition"], Value::Bool(true), "{v:#}");
    assert_eq!(v["deps"], serde_json::json!(["specialfs"]), "{v:#}");
    assert_eq!(v["dry"], Value::Bool(true), "{v:#}");
    assert_eq!(v["part"], Value::Bool(false), "{v:#}");
    assert_eq!(v["fine"], Value::Bool(true), "{v:#}");
    assert_eq!(v["clash"]["assertion"], Value::Bool(false), "{v:#}");
    let message = v["clash"]["message"].as_str().unwrap();
    assert!(
        message.contains("services.userborn.enable")
            && message.contains("system.etcflip.users = false"),
        "{message}"
    );
}

/// The wrappers: `security.wrappers` becomes the spec's `wrappers` part, and NixOS's
/// `suid-sgid-wrappers.service` runs `etcflip wrappers` on the generation (keeping its unit and
/// ordering); without `security.enableWrappers` there is no such part. A `security.wrapperDir`
/// other than `/run/wrappers/bin` is refused. Evaluated as the users wiring above is.
#[test]
fn the_module_hands_the_wrappers_to_their_service() {
    let v = eval_json(&[
        "-E",
        r#"
        let
          lib = import ./tests/nix/lib.nix;
          module = security: lib.module {
            system.etcflip = {
              enable = true; users = false; package = "/pkg"; onConflict = "backup";
              image.enable = false;
            };
            systemd.package = "/systemd";
            inherit security;
          };
          wrappers.ping = { source = "/nix/store/x-ping/bin/ping"; capabilities = "cap_net_raw+p"; };
          part = m: builtins.head (builtins.filter
            (c: c ? content && c.content ? systemd) m.config.content.contents);
          on = part (module { enableWrappers = true; inherit wrappers; });
          assertions = m: (builtins.head m.config.content.contents).assertions;
          moved = builtins.elemAt (assertions (module { wrapperDir = "/run/w/bin"; })) 3;
          kept = builtins.elemAt (assertions (module { })) 3;
        in {
          condition = on.condition;
          off = (part (module { enableWrappers = false; })).condition;
          spec = on.content.system.etcflip.spec.wrappers;
          script = on.content.systemd.services.suid-sgid-wrappers.script;
          moved = { inherit (moved) assertion message; };
          kept = kept.assertion;
          activation = (builtins.head (module { }).config.content.contents).system.build.etcActivationCommands;
        }
        "#,
    ]);
    assert_eq!(v["condition"], Value::Bool(true), "{v:#}");
    assert_eq!(v["off"], Value::Bool(false), "{v:#}");
    assert_eq!(v["spec"]["ping"]["capabilities"], "cap_net_raw+p", "{v:#}");
    let script = v["script"].as_str().unwrap();
    assert_eq!(
        script,
        "/pkg/bin/etcflip wrappers /nix/store/00000000000000000000000000000000-etcflip-generation\n"
    );
    assert_eq!(v["moved"]["assertion"], Value::Bool(false), "{v:#}");
    assert!(
        v["moved"]["message"]
            .as_str()
            .unwrap()
            .contains("security.wrapperDir"),
        "{v:#}"
    );
    assert_eq!(v["kept"], Value::Bool(true), "{v:#}");
    // Activation leaves /run/wrappers to the service, in the dry run and the switch alike.
    let activation = v["activation"].as_str().unwrap();
    assert_eq!(
        activation
            .matches("' --on-conflict 'backup' --no-wrappers")
            .count(),
        2,
        "{activation}"
    );
}

/// A package directory with the freshly built binaries in `bin/` (what `etcflip.package`
/// is to the NixOS module).
fn package(s: &Scratch) -> PathBuf {
    let pkg = s.dir.join("pkg");
    std::fs::create_dir_all(pkg.join("bin")).unwrap();
    for b in ["etcflip", "etcflip-gen", "etcflip-wrapper"] {
        std::fs::copy(bin(b), pkg.join("bin").join(b)).unwrap();
    }
    pkg
}

/// Builds `tests/nix/generation.nix`; returns the store path.
fn build(pkg: &Path, variant: &str, salt: &str) -> PathBuf {
    build_with(pkg, variant, salt, false)
}

/// [`build`], with the users part when `users` holds.
fn build_with(pkg: &Path, variant: &str, salt: &str, users: bool) -> PathBuf {
    let args = [
        "tests/nix/generation.nix",
        "--no-out-link",
        "--arg",
        "etcflipPackage",
        pkg.to_str().unwrap(),
        "--argstr",
        "variant",
        variant,
        "--argstr",
        "salt",
        salt,
        "--arg",
        "withUsers",
        if users { "true" } else { "false" },
    ];
    let out = ok(
        &nix("nix-build", &args),
        &format!("nix-build {variant} {salt} {users}"),
    );
    let path = PathBuf::from(out.trim());
    assert!(path.starts_with("/nix/store"), "{}", path.display());
    path
}

/// A generation with a wrapper, built by Nix: etcflip-gen finds etcflip-wrapper beside it in
/// the package's `bin/` (as `nixos/package.nix` installs them), Nix's reference scanner finds
/// the wrapped program in the patched copy itself, and a switch of the store path makes a
/// setuid wrapper that runs it for nobody with euid 0.
#[test]
fn a_nix_built_generation_carries_its_wrappers_and_their_targets() {
    let s = Scratch::new("nix-wrappers");
    s.file("root/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    s.file("root/etc/group", "root:x:0:\n");
    let pkg = package(&s);
    let args = [
        "tests/nix/generation.nix",
        "--no-out-link",
        "--arg",
        "etcflipPackage",
        pkg.to_str().unwrap(),
        "--arg",
        "withWrappers",
        "true",
    ];
    let gen = PathBuf::from(ok(&nix("nix-build", &args), "nix-build withWrappers").trim());
    let gen_arg = gen.to_str().unwrap();
    let refs = ok(
        &nix("nix-store", &["--query", "--references", gen_arg]),
        "references",
    );
    let id = refs
        .lines()
        .find(|l| l.ends_with("-id"))
        .unwrap_or_else(|| panic!("{refs}"));
    let copy = std::fs::read(gen.join("wrappers/etcflip-id")).unwrap();
    let named = copy.windows(id.len()).any(|w| w == id.as_bytes());
    assert!(named, "the patched copy names {id}");
    let out = s.switch(&gen, &[]);
    assert!(
        out.contains(
            "wrappers: add /run/wrappers/bin/etcflip-id (4511 root:root, runs /nix/store/"
        ),
        "{out}"
    );
    let link = std::fs::read_link(s.root.join("run/wrappers/bin")).unwrap();
    let wrapper = s
        .root
        .join(link.strip_prefix("/").unwrap())
        .join("etcflip-id");
    let run = etcflip_e2e::as_nobody(&wrapper, &["-u"], &[]);
    assert_eq!(text_of(&run).trim(), "0", "euid 0 through the wrapper");
}

/// The activation snippet (`nixos/activation.nix`) for a package and a generation.
fn snippet(pkg: &Path, gen: &Path, users: bool) -> String {
    let expr = format!(
        "import ./nixos/activation.nix {{ etcflip = {:?}; generation = {:?}; \
         tmpfiles = {:?}; onConflict = \"backup\"; users = {users}; }}",
        pkg.display().to_string(),
        gen.display().to_string(),
        etcflip_e2e::real_tmpfiles().display().to_string(),
    );
    eval_json(&["-E", &expr]).as_str().unwrap().to_owned()
}

/// Where each path resolves for a process rooted at `root` that sees `/nix/store`.
fn resolve_in_root(root: &Path, paths: &[String]) -> Vec<String> {
    let script = repo_root().join("tests/nix/resolve-in-root.sh");
    let propagation = etcflip_e2e::unshare_private()[2];
    let out = Command::new(script)
        .env("ETCFLIP_UNSHARE_PROPAGATION", propagation)
        .arg(root)
        .args(paths)
        .output()
        .unwrap();
    ok(&out, "resolve-in-root.sh")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_generation_built_by_nix_is_reproducible_and_applies() {
    let s = Scratch::new("nix-build");
    let pkg = package(&s);
    let one = build(&pkg, "one", "");
    assert_eq!(build(&pkg, "one", ""), one, "the same build, the same path");
    let apart = build(&pkg, "one", "built apart");
    assert_ne!(apart, one);
    assert_eq!(
        listing(&apart),
        listing(&one),
        "a separate build of the same spec differs"
    );
    let two = build(&pkg, "two", "");
    assert_ne!(two, one, "a changed spec, the same path");

    for gen in [&one, &two] {
        let out = s.switch(gen, &[]);
        assert!(out.contains("switched"), "{out}");
        // The overlay points at the store path itself: the generation is not inside the root.
        assert_eq!(
            std::fs::read_link(s.etc("static")).unwrap(),
            gen.join("etc")
        );
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(gen.join("manifest.json")).unwrap())
                .unwrap();
        let links: Vec<String> = manifest["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| matches!(e["kind"].as_str(), Some("symlink" | "direct-symlink")))
            .map(|e| format!("/etc/{}", e["target"].as_str().unwrap()))
            .collect();
        assert!(links.len() >= 6, "{links:?}");
        let resolved = resolve_in_root(&s.root, &links);
        assert_eq!(resolved.len(), links.len(), "{resolved:?}");
        for (link, to) in links.iter().zip(&resolved) {
            assert!(to.starts_with("/nix/store/"), "{link} resolves to {to}");
        }
        let out = s.etcflip(&["verify"]);
        assert_eq!(code(&out), 0, "verify: {}", text_of(&out));
    }
    // A path source went through the store, with its content.
    let issue = resolve_in_root(&s.root, &["/etc/issue".to_owned()]);
    assert_eq!(
        std::fs::read(&issue[0]).unwrap(),
        std::fs::read(repo_root().join("tests/nix/fixtures/issue")).unwrap()
    );
    // Generation two dropped sudoers (a copy) and changed motd behind the same link.
    assert!(absent(&s.etc("sudoers")));
    let motd = resolve_in_root(&s.root, &["/etc/motd".to_owned()]);
    assert_eq!(
        std::fs::read_to_string(&motd[0]).unwrap(),
        "Welcome to etcflip, again\n"
    );
}

/// `script` run by `shell -eu` with `args` as `$1`…, in a private mount namespace (whatever it
/// mounts vanishes with it: the host's `/etc`, `/run` and `/var` are never touched).
fn in_namespace(shell: &str, script: &str, args: &[&Path]) -> Output {
    etcflip_e2e::unshared()
        .args([shell, "-eu", "-c", script, shell])
        .args(args)
        .output()
        .unwrap()
}

/// What a script printed between its `== name` line and the next `== ` line.
fn section(text: &str, name: &str) -> String {
    let start = text.find(&format!("== {name}\n")).unwrap() + name.len() + 4;
    let end = text[start..].find("== ").map_or(text.len(), |e| start + e);
    text[start..end].to_owned()
}

/// The VM test cannot run here, but its Python can be produced and compiled: the testScript
/// is evaluated with store-path stand-ins for the machines' systems (it needs nothing else),
/// and `python3 -m py_compile` checks the result.
#[test]
fn the_vm_test_script_evaluates_to_valid_python() {
    let script = eval_json(&[
        "-E",
        r#"((import ./nixos/tests/vm.nix { module = null; }) { lib = throw "no lib"; }).testScript {
             nodes = {
               machine.system.build.toplevel = "/nix/store/machine";
               legacy.system.build.toplevel = "/nix/store/legacy";
             };
           }"#,
    ]);
    let script = script.as_str().unwrap();
    for want in [
        "/nix/store/machine/specialisation/next",
        "/nix/store/legacy/specialisation/etcflip",
        "-u etcflip-boot.service",
        "image_booted(image)",
        "start_all()",
    ] {
        assert!(script.contains(want), "{want:?} missing from:\n{script}");
    }
    let s = Scratch::new("vm-script");
    let path = s.dir.join("test_script.py");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("python3")
        .args(["-m", "py_compile"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "the VM test script: {}", text_of(&out));
}

/// The module's `etc` activation snippet (`nixos/activation.nix`), run by bash for real in a
/// private mount namespace whose `/etc` is an empty tmpfs (the host's `/etc` is never seen):
/// a first activation, a re-activation that changes nothing, and a dry activation to another
/// generation that changes nothing either, whether `NIXOS_ACTION` says so or the script that
/// runs the snippet is named `dry-activate`.
#[test]
fn the_activation_snippet_switches_etc() {
    let s = Scratch::new("nix-activation");
    let pkg = package(&s);
    let one = build(&pkg, "one", "");
    let two = build(&pkg, "two", "");
    let snippet = |gen: &Path, name: &str| {
        let path = s.dir.join(name);
        std::fs::write(&path, snippet(&pkg, gen, false)).unwrap();
        path
    };
    let (a, b) = (snippet(&one, "one.sh"), snippet(&two, "two.sh"));
    // The system's `dry-activate` script holds the snippet; run by hand, it has no NIXOS_ACTION.
    let by_name = s.dir.join("dry-activate");
    std::fs::write(
        &by_name,
        format!("#!/bin/bash\n{}", std::fs::read_to_string(&b).unwrap()),
    )
    .unwrap();
    std::fs::set_permissions(&by_name, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = r#"
        mount -t tmpfs tmpfs /etc
        echo "== activate"; bash "$1"
        echo "== again"; bash "$1"
        echo "== dry"; NIXOS_ACTION=dry-activate bash "$2"
        echo "== by-name"; env -u NIXOS_ACTION "$3"
        echo "== state"
        readlink /etc/static
        cat /etc/.clean
        test -e /etc/NIXOS && echo "NIXOS tag"
        readlink /etc/motd
    "#;
    let out = in_namespace("sh", script, &[&a, &b, &by_name]);
    let text = ok(&out, "the activation snippet");
    let part = |name: &str| section(&text, name);
    assert!(part("activate").contains("switched"), "{text}");
    assert!(part("again").contains("already up to date"), "{text}");
    let dry = part("dry");
    assert!(dry.contains("dry run: nothing was changed"), "{text}");
    assert!(
        dry.contains("/etc/sudoers"),
        "the plan removes sudoers: {text}"
    );
    assert_eq!(part("by-name"), dry, "dry-activate run by hand: {text}");
    let want = format!(
        "{}\nlocaltime\nsudoers\nNIXOS tag\n/etc/static/motd\n",
        one.join("etc").display()
    );
    assert_eq!(part("state"), want, "{text}");
    // The host's /etc was never touched.
    assert!(absent(Path::new("/etc/.etcflip")));
}

/// With users (`system.etcflip.users`), the snippet the module puts at `users` does the users
/// and /etc in one switch, for real, in a private mount namespace whose `/etc`, `/var/lib`,
/// `/root`, `/home` and `/run` are empty tmpfs (the host's are never seen): after it, the users
/// resolve through the real NSS (what NixOS orders after `users` needs) and /etc is there
/// (what it orders after `etc`, which follows `users`, needs). A re-activation writes nothing,
/// a dry activation changes nothing, and generation two adds, changes and removes users.
#[test]
fn the_users_snippet_switches_users_and_etc_in_one_switch() {
    let s = Scratch::new("nix-users-activation");
    let local = package(&s);
    let pkg = PathBuf::from(
        ok(
            &nix("nix-store", &["--add", local.to_str().unwrap()]),
            "nix-store --add",
        )
        .trim(),
    );
    let one = build_with(&local, "one", "", true);
    let two = build_with(&local, "two", "", true);
    let script = r#"
        one=$(cat "$1"); two=$(cat "$2")
        for d in /etc /var/lib /root /home /run /tmp; do mount -t tmpfs tmpfs "$d"; done
        # The shells the generation names, so that pwck finds them.
        mkdir -p /run/current-system/sw/bin
        ln -s /bin/bash /run/current-system/sw/bin/bash
        ln -s /usr/sbin/nologin /run/current-system/sw/bin/nologin
        printf '#!/bin/bash\n%s\n' "$two" > /tmp/dry-activate && chmod +x /tmp/dry-activate
        files() { sha256sum /etc/passwd /etc/group /etc/shadow /etc/subuid /etc/subgid /var/lib/nixos/*; }
        echo "== activate"; bash -c "$one"
        echo "== resolved"
        getent passwd alice etcflip-daemon; id alice; getent group wheel
        stat -c '%n %a %U:%G' /home/alice /root /home
        readlink /etc/static; cat /etc/motd /var/lib/nixos/uid-map; echo
        pwck -r -q && grpck -r && echo "pwck and grpck: clean"
        files > /tmp/files
        echo "== again"; bash -c "$one"; files | cmp - /tmp/files && echo "files unchanged"
        echo "== dry"; NIXOS_ACTION=dry-activate bash -c "$two"
        echo "== by-name"; env -u NIXOS_ACTION /tmp/dry-activate
        echo "== after-dry"; files | cmp - /tmp/files && echo "files unchanged"
        test ! -e /home/bob && readlink /etc/static
        echo "== two"; bash -c "$two"
        echo "== resolved-two"
        getent passwd bob etcflip-daemon; getent passwd alice || echo "no alice"; getent group wheel
        cat /var/lib/nixos/uid-map /etc/added; echo
        pwck -r -q && grpck -r && echo "pwck and grpck: clean"
    "#;
    let (a, b) = (s.dir.join("one.sh"), s.dir.join("two.sh"));
    std::fs::write(&a, snippet(&pkg, &one, true)).unwrap();
    std::fs::write(&b, snippet(&pkg, &two, true)).unwrap();
    let out = in_namespace("bash", script, &[&a, &b]);
    let text = ok(&out, "the users snippet");
    let part = |name: &str| section(&text, name);
    let activate = part("activate");
    for want in [
        "users: create user alice (allocate uid 1000)",
        "users: create user etcflip-daemon (allocate uid 999)",
        "create    symlink        /etc/motd",
        "switched",
    ] {
        assert!(activate.contains(want), "{want:?} in:\n{text}");
    }
    assert_eq!(
        part("resolved"),
        format!(
            "alice:x:1000:100::/home/alice:/run/current-system/sw/bin/bash\n\
             etcflip-daemon:x:999:999:one:/var/empty:/run/current-system/sw/bin/nologin\n\
             uid=1000(alice) gid=100(users) groups=100(users),1(wheel)\n\
             wheel:x:1:alice\n\
             /home/alice 700 alice:users\n/root 700 root:root\n/home 755 root:root\n\
             {}\nWelcome to etcflip\n\
             {{\"alice\":1000,\"etcflip-daemon\":999,\"root\":0}}\n\
             pwck and grpck: clean\n",
            one.join("etc").display()
        ),
        "{text}"
    );
    assert!(part("again").contains("already up to date"), "{text}");
    assert!(part("again").ends_with("files unchanged\n"), "{text}");
    let dry = part("dry");
    for want in [
        "users: would create user bob (allocate uid 1001)",
        "users: would remove user alice (its uid stays reserved)",
        "dry run: nothing was changed",
    ] {
        assert!(dry.contains(want), "{want:?} in:\n{text}");
    }
    assert_eq!(part("by-name"), dry, "dry-activate run by hand: {text}");
    assert_eq!(
        part("after-dry"),
        format!("files unchanged\n{}\n", one.join("etc").display()),
        "{text}"
    );
    assert!(part("two").contains("switched"), "{text}");
    assert_eq!(
        part("resolved-two"),
        "bob:x:1001:100::/home/bob:/run/current-system/sw/bin/nologin\n\
         etcflip-daemon:x:999:999:two:/var/empty:/run/current-system/sw/bin/nologin\n\
         no alice\nwheel:x:1:bob\n\
         {\"alice\":1000,\"bob\":1001,\"etcflip-daemon\":999,\"root\":0}added\n\n\
         pwck and grpck: clean\n",
        "{text}"
    );
    assert!(absent(Path::new("/etc/.etcflip")));
}

/// Builds `tests/nix/image.nix`'s `attr` (the generation, or its image) with `pkg`'s binaries.
fn image_built(pkg: &Path, attr: &str) -> PathBuf {
    let tmpfiles = etcflip_e2e::real_tmpfiles();
    let args = [
        "tests/nix/image.nix",
        "--no-out-link",
        "-A",
        attr,
        "--arg",
        "etcflipPackage",
        pkg.to_str().unwrap(),
        "--argstr",
        "tmpfiles",
        tmpfiles.to_str().unwrap(),
        "--argstr",
        "squashfsTools",
        "/usr",
    ];
    PathBuf::from(ok(&nix("nix-build", &args), attr).trim())
}

/// util-linux as the initrd holds it: a package directory with the three programs the initrd
/// script uses, this machine's.
fn util_linux(s: &Scratch) -> PathBuf {
    let util = s.dir.join("util-linux");
    std::fs::create_dir_all(util.join("bin")).unwrap();
    for b in ["mount", "mountpoint", "unshare"] {
        let host = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(b))
            .find(|p| p.exists())
            .unwrap();
        std::os::unix::fs::symlink(host, util.join("bin").join(b)).unwrap();
    }
    util
}

/// The module's initrd script (`nixos/initrd.nix`) with `image`, run for real on an image that
/// Nix built with the module's own image step (`nixos/image.nix`, through
/// `tests/nix/image.nix`): in a private mount namespace whose `/run` is an empty tmpfs, on a
/// scratch sysroot that sees the host's store, with the link initrd-find-nixos-closure.service
/// leaves. It mounts the image read-only on the sysroot's `/etc`, makes the overlay link in
/// `/run` and the users in `/var/lib/nixos`, and writes nothing below `/etc`; a second run (as
/// activation's boot) changes nothing.
#[test]
fn the_initrd_script_boots_a_nix_built_image_with_its_users_elsewhere() {
    let s = Scratch::new("nix-initrd-image");
    let pkg = package(&s);
    let tmpfiles = etcflip_e2e::real_tmpfiles();
    let (gen, image) = (image_built(&pkg, "generation"), image_built(&pkg, "image"));
    assert!(image.join("etc.squashfs").is_file(), "{}", image.display());
    // The system being booted: its generation and image links, as the module's builder makes.
    let sysroot = s.dir.join("sysroot");
    for d in ["system", "nix", "var", "etc"] {
        std::fs::create_dir_all(sysroot.join(d)).unwrap();
    }
    // The writable /etc the machine had before its first boot into the image, with a user
    // added at run time: kept, in the place the image links to.
    let before = [
        (
            "passwd",
            "root:x:0:0::/root:/bin/sh\nbob:x:1500:100::/var/empty:/bin/sh\n",
        ),
        ("group", "root:x:0:\nusers:x:100:\n"),
        ("shadow", "root:!:1::::::\nbob:!:1::::::\n"),
    ];
    for (name, text) in before {
        std::fs::write(sysroot.join("etc").join(name), text).unwrap();
    }
    std::os::unix::fs::symlink(&gen, sysroot.join("system/etcflip")).unwrap();
    std::os::unix::fs::symlink(&image, sysroot.join("system/etcflip-image")).unwrap();
    let closure = s.dir.join("nixos-closure");
    std::os::unix::fs::symlink("/system", &closure).unwrap();
    let util = util_linux(&s);
    let expr = format!(
        "import ./nixos/initrd.nix {{ etcflip = {pkg:?}; tmpfiles = {tmpfiles:?}; \
         utilLinux = {util:?}; image = true; passwordFilesLocation = \"/var/lib/nixos\"; }}"
    );
    let script = eval_json(&["-E", &expr]);
    let initrd = s.dir.join("initrd.sh");
    std::fs::write(&initrd, script.as_str().unwrap()).unwrap();
    let run = r#"
        mount -t tmpfs tmpfs /run
        mount --rbind /nix "$1/nix"
        export ETCFLIP_SYSROOT=$1 ETCFLIP_CLOSURE=$2 ETCFLIP_UNSHARE_PROPAGATION=$4
        echo "== boot"; sh -eu "$3"
        echo "== again"; sh -eu "$3"
        echo "== state"
        readlink /run/etcflip/static "$1/etc/motd" "$1/etc/passwd"
        grep -c '^alice:x:1000:\|^bob:x:1500:' "$1/var/lib/nixos/passwd"
        if touch "$1/etc/x" 2>/dev/null; then echo writable; else echo read-only; fi
        test -e /run/wrappers || echo "no wrappers"
        # A user added while the image runs.
        echo 'carol:x:1600:100::/var/empty:/bin/sh' >> "$1/var/lib/nixos/passwd"
    "#;
    // Inside, the script makes a namespace of its own, as the harness does (a bare chroot's
    // / is no mount point).
    let propagation = Path::new(etcflip_e2e::unshare_private()[2]);
    let out = in_namespace("sh", run, &[&sysroot, &closure, &initrd, propagation]);
    let text = ok(&out, "the initrd script");
    assert!(
        section(&text, "boot").contains("users: create user alice (allocate uid 1000)"),
        "{text}"
    );
    assert!(!section(&text, "again").contains("users:"), "{text}");
    let want = format!(
        "{}/etc\n/run/etcflip/static/motd\n/var/lib/nixos/passwd\n2\nread-only\nno wrappers\n",
        gen.display()
    );
    assert_eq!(section(&text, "state"), want, "{text}");
    // Under the image, the writable /etc a rollback sees again links to the place, marked: its
    // switch reads the users there, not the files of before.
    let link = std::fs::read_link(sysroot.join("etc/passwd")).unwrap();
    assert_eq!(link, Path::new("/var/lib/nixos/passwd"));
    assert!(sysroot.join("var/lib/nixos/.etcflip-linked").is_file());
    // A rollback to a generation without the image: its switch takes the users back into
    // /etc, those of before the image and those added while it ran alike.
    let rollback = build_with(&pkg, "one", "", true);
    let out = Command::new(bin("etcflip"))
        .arg("switch")
        .arg(&rollback)
        .arg("--root")
        .arg(&sysroot)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text_of(&out));
    let passwd = std::fs::read_to_string(sysroot.join("etc/passwd")).unwrap();
    assert!(!sysroot.join("etc/passwd").is_symlink(), "{passwd}");
    for want in ["alice:x:1000:", "bob:x:1500:", "carol:x:1600:"] {
        assert!(passwd.contains(want), "{want:?} not in:\n{passwd}");
    }
}

/// The initrd and image wiring of the module, evaluated with the stand-ins (see the test
/// below).
fn initrd_and_image_wiring() -> Value {
    eval_json(&[
        "-E",
        r#"
        let
          lib = import ./tests/nix/lib.nix;
          module = etcflip: nixosInit: lib.module {
            system.etcflip = {
              enable = true; users = true; package = "/pkg"; onConflict = "backup";
              image = { enable = true; passwordFilesLocation = "/var/lib/nixos"; };
            } // etcflip;
            system.nixos-init.enable = nixosInit;
            boot.initrd.systemd = { enable = true; package = "/isd"; };
            systemd.package = "/systemd";
            users = { mutableUsers = true; users = { }; groups = { }; };
          };
          on = module { initrd = true; } true;
          off = module { initrd = false; } true;
          contents = m: m.config.content.contents;
          having = key: m: builtins.head (builtins.filter
            (c: c ? content && c.content ? system && c.content.system ? ${key}) (contents m));
          initrd = builtins.head (builtins.filter
            (c: c ? content && c.content ? boot) (contents on));
          assertions = m: (builtins.head (contents m)).assertions;
          users = (having "etcflip" on).content.system.etcflip.spec.users;
        in {
          nixosInit = (builtins.elemAt (assertions on) 1).assertion;
          nixosInitOff = { inherit (builtins.elemAt (assertions off) 1) assertion message; };
          image = (builtins.elemAt (assertions off) 5).assertion;
          initrdCondition = initrd.condition;
          unit = initrd.content.boot.initrd.systemd.services.etcflip-boot;
          storePaths = initrd.content.boot.initrd.systemd.storePaths;
          location = users.passwordFilesLocation;
          overlay = (having "build" on).content.system.etcflip.spec.overlay or null;
          activation = (builtins.head (contents on)).system.build.etcActivationCommands;
          usersSnippet = (having "activationScripts" on).content.system.activationScripts.users.text;
          wrappers = (builtins.head (builtins.filter (c: c ? content && c.content ? systemd)
            (contents on))).content.systemd.services.suid-sgid-wrappers.script;
          modules = (having "build" on).content.boot.initrd.availableKernelModules;
        }
        "#,
    ])
}

/// The initrd and image wiring: with `system.etcflip.initrd`, an initrd unit runs the initrd
/// script (`nixos/initrd.nix`) between initrd-find-nixos-closure.service and
/// initrd-nixos-activation.service, with etcflip in the initrd; with the image, the overlay
/// moves to `/run`, the users part gets its writable place, the system links its image, and
/// activation runs `etcflip boot` (exit 3, another generation's image, is not a failure).
/// `system.nixos-init.enable` is accepted with the initrd step and refused without it, with a
/// message saying what to do. Evaluated as the users wiring above is.
#[test]
fn the_module_boots_in_the_initrd_and_from_an_image() {
    let v = initrd_and_image_wiring();
    assert_eq!(v["nixosInit"], Value::Bool(true), "{v:#}");
    assert_eq!(v["nixosInitOff"]["assertion"], Value::Bool(false), "{v:#}");
    assert!(
        v["nixosInitOff"]["message"]
            .as_str()
            .unwrap()
            .contains("system.etcflip.initrd"),
        "{v:#}"
    );
    assert_eq!(
        v["image"],
        Value::Bool(false),
        "the image needs the initrd: {v:#}"
    );
    assert_eq!(v["initrdCondition"], Value::Bool(true), "{v:#}");
    let unit = &v["unit"];
    assert_eq!(
        unit["requires"],
        serde_json::json!(["initrd-find-nixos-closure.service"])
    );
    assert!(
        unit["before"]
            .as_array()
            .unwrap()
            .contains(&Value::from("initrd-nixos-activation.service")),
        "{unit:#}"
    );
    let script = unit["script"].as_str().unwrap();
    for want in [
        "'/pkg/bin/etcflip'",
        "'/isd/bin/systemd-tmpfiles'",
        "'/util-linux/bin/unshare'",
        "etcflip-image",
    ] {
        assert!(script.contains(want), "{want:?} not in {script}");
    }
    assert!(
        v["storePaths"]
            .as_array()
            .unwrap()
            .contains(&Value::from("/pkg/bin/etcflip")),
        "{v:#}"
    );
    assert_eq!(v["location"], "/var/lib/nixos", "{v:#}");
    assert_eq!(v["overlay"], "/run/etcflip/static", "{v:#}");
    let users = v["usersSnippet"].as_str().unwrap();
    assert!(
        users.contains("'/pkg/bin/etcflip' boot "),
        "activation boots the image: {users}"
    );
    assert!(users.contains("--no-wrappers ||"), "{users}");
    assert!(!users.contains("etcflip' switch"), "{users}");
    assert!(v["activation"]
        .as_str()
        .unwrap()
        .starts_with("# etcflip: /etc was switched"));
    // The wrappers follow the booted system, as /etc does; the initrd can mount the image.
    assert_eq!(
        v["wrappers"], "/pkg/bin/etcflip wrappers /run/booted-system/etcflip\n",
        "{v:#}"
    );
    assert_eq!(
        v["modules"],
        serde_json::json!(["loop", "squashfs"]),
        "{v:#}"
    );
    assert!(
        unit["wantedBy"] == serde_json::json!(["initrd.target"])
            && unit.get("requiredBy").is_none(),
        "a failure here is no emergency: {unit:#}"
    );
}

/// The image's activation snippet (`nixos/activation.nix` with `image`), run by bash for real
/// the way NixOS's activation runs snippets (an ERR trap records a failure), with a stand-in
/// etcflip that exits as told: exit 3 passes only on a read-only `/etc` (another generation's
/// image); every other failure, and 3 on a writable `/etc`, is seen. `/etc` is made
/// read-only by a bind in a private mount namespace: the host's is never touched.
#[test]
fn the_image_activation_snippet_lets_only_another_image_pass() {
    let s = Scratch::new("nix-image-activation");
    let fake = s.dir.join("fake");
    std::fs::create_dir_all(fake.join("bin")).unwrap();
    let etcflip = fake.join("bin/etcflip");
    std::fs::write(&etcflip, "#!/bin/sh\nexit \"$FAKE_RC\"\n").unwrap();
    std::fs::set_permissions(&etcflip, std::fs::Permissions::from_mode(0o755)).unwrap();
    let expr = format!(
        "import ./nixos/activation.nix {{ etcflip = {fake:?}; generation = \"/nix/store/x\"; \
         tmpfiles = \"/bin/true\"; onConflict = \"backup\"; image = true; }}"
    );
    let snippet = s.dir.join("snippet.sh");
    std::fs::write(&snippet, eval_json(&["-E", &expr]).as_str().unwrap()).unwrap();
    let script = r#"
        if [ "$2" = ro ]; then mount --bind /etc /etc && mount -o remount,ro,bind /etc; fi
        _status=0
        trap '_status=1' ERR
        FAKE_RC=$3
        export FAKE_RC
        . "$1"
        echo "status=$_status"
    "#;
    let cases = [
        ("rw", "0", 0),
        ("rw", "1", 1),
        ("rw", "3", 1),
        ("ro", "3", 0),
        ("ro", "1", 1),
        ("ro", "2", 1),
    ];
    for (etc, rc, want) in cases {
        let run = etcflip_e2e::unshared()
            .args(["bash", "-c", script, "bash"])
            .arg(&snippet)
            .args([etc, rc])
            .output()
            .unwrap();
        let text = text_of(&run);
        assert!(
            text.contains(&format!("status={want}")),
            "/etc {etc}, exit {rc}: {text}"
        );
    }
}
