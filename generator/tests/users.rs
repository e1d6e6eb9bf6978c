//! The `users` part of a generation: NixOS's own users-groups.json taken as it is, passwd and
//! group precomputed when every id is static, and what is left for the switch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{build_spec, TempDir};
use serde_json::{json, Value};

/// A user object as NixOS's `builtins.toJSON` writes it: every field, nulls included.
fn nixos_user(name: &str, uid: &Value, group: &str, system: bool) -> Value {
    json!({
        "autoSubUidGidRange": false, "createHome": !system, "description": "",
        "expires": null, "group": group, "hashedPassword": null, "hashedPasswordFile": null,
        "home": if system { "/var/empty".to_owned() } else { format!("/home/{name}") },
        "homeMode": "700", "initialHashedPassword": null, "initialPassword": null,
        "isSystemUser": system, "linger": null, "name": name, "password": null,
        "shell": "/run/current-system/sw/bin/bash", "subGidRanges": [], "subUidRanges": [],
        "uid": uid
    })
}

fn users_part(dir: &TempDir, users: &[Value], groups: &Value, name: &str) -> Value {
    let spec = json!({"users": {"mutableUsers": true, "users": users, "groups": groups}});
    let out = dir.join(name);
    build_spec(dir, &spec.to_string(), &out).unwrap();
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    m["users"].clone()
}

#[test]
fn static_ids_are_precomputed_into_passwd_and_group() {
    let dir = TempDir::new("users-static");
    let users = [
        nixos_user("root", &json!(0), "root", true),
        nixos_user("alice", &json!(1000), "users", false),
        nixos_user("nscd", &json!(999), "998", true),
    ];
    let groups = json!([
        {"name": "root", "gid": 0, "members": []},
        {"name": "users", "gid": 100, "members": []},
        {"name": "wheel", "gid": 1, "members": ["alice", "root", "alice"]}
    ]);
    let part = users_part(&dir, &users, &groups, "gen");
    let pre = &part["precomputed"];
    assert_eq!(
        pre["passwd"],
        "root:x:0:0::/var/empty:/run/current-system/sw/bin/bash\n\
         nscd:x:999:998::/var/empty:/run/current-system/sw/bin/bash\n\
         alice:x:1000:100::/home/alice:/run/current-system/sw/bin/bash\n"
    );
    assert_eq!(
        pre["group"],
        "root:x:0:\nwheel:x:1:alice,root\nusers:x:100:\n"
    );
    assert_eq!(
        part["runTime"],
        json!([
            "create the home of user alice",
            "keep the users and members added at run time",
            "write shadow"
        ])
    );
    // The declaration is kept whole; a field whose value is what its absence means
    // (homeMode "700", null, false, []) is left out.
    assert_eq!(part["users"][1]["name"], "alice");
    assert_eq!(part["users"][1]["home"], "/home/alice");
    assert_eq!(part["users"][1].get("homeMode"), None, "{part:#}");
    assert_eq!(part["users"][1].get("password"), None, "{part:#}");
    // Same spec, same bytes.
    let again = users_part(&dir, &users, &groups, "gen2");
    assert_eq!(part, again);
}

#[test]
fn dynamic_ids_leave_passwd_and_group_to_the_switch() {
    let dir = TempDir::new("users-dynamic");
    let mut bob = nixos_user("bob", &Value::Null, "users", false);
    bob["hashedPasswordFile"] = json!("/run/secrets/bob");
    bob["autoSubUidGidRange"] = json!(true);
    let mut svc = nixos_user("svc", &Value::Null, "svc", true);
    svc["password"] = json!("plain");
    let groups = json!([
        {"name": "svc", "gid": null, "members": []},
        {"name": "users", "gid": 100, "members": ["bob"]}
    ]);
    let part = users_part(&dir, &[bob, svc], &groups, "gen");
    assert!(part.get("precomputed").is_none(), "{part:#}");
    assert_eq!(
        part["runTime"],
        json!([
            "allocate subordinate ids for user bob",
            "allocate the gid of group svc",
            "allocate the uid of user bob",
            "allocate the uid of user svc",
            "create the home of user bob",
            "hash the password of user svc",
            "keep the users and members added at run time",
            "read the password hash of user bob from /run/secrets/bob",
            "write shadow"
        ])
    );
}

#[test]
fn a_password_files_location_is_kept_unless_it_is_etc_and_checked() {
    let dir = TempDir::new("users-location");
    let root = [nixos_user("root", &json!(0), "root", true)];
    let groups = json!([{"name": "root", "gid": 0, "members": []}]);
    let build = |location: Value, name: &str| {
        let spec = json!({"users": {"mutableUsers": true, "users": root, "groups": groups,
                                    "passwordFilesLocation": location}});
        let out = dir.join(name);
        build_spec(&dir, &spec.to_string(), &out).map(|()| {
            let text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
            serde_json::from_str::<Value>(&text).unwrap()["users"].clone()
        })
    };
    let kept = build(json!("/var/lib/nixos"), "kept").unwrap();
    assert_eq!(kept["passwordFilesLocation"], json!("/var/lib/nixos"));
    // userborn's default is where the files are anyway.
    for (location, name) in [(json!("/etc"), "etc"), (Value::Null, "null")] {
        let part = build(location, name).unwrap();
        assert!(part.get("passwordFilesLocation").is_none(), "{part:#}");
    }
    for (location, want) in [
        (
            json!(7),
            "users: passwordFilesLocation: expected a directory's path, not 7",
        ),
        (
            json!("/etc/users"),
            "passwordFilesLocation \"/etc/users\" is in /etc",
        ),
        (
            json!("relative"),
            "passwordFilesLocation \"relative\" is not an absolute path",
        ),
    ] {
        let err = format!("{:#}", build(location, "bad").unwrap_err());
        assert!(err.contains(want), "{want:?} not in {err}");
    }
}
