//! The environment a wrapper never passes on: what glibc's dynamic loader drops for a privileged
//! program (`sysdeps/generic/unsecvars.h`; `GLIBC_TUNABLES` is on it in current glibc, and
//! missing from older lists built with tunables), every `MALLOC_*` variable (the tunables' old
//! aliases), and beyond that list every `LD_*` variable: the loader reads no others, and the
//! list has lagged behind what it reads (`LD_BIND_NOW`, `LD_VERBOSE`, x86-64's
//! `LD_PREFER_MAP_32BIT_EXEC`, which maps libraries below 2 GB). A capability wrapper's target
//! is not run `AT_SECURE`, so its loader would honour all of them: the wrapper drops them
//! itself, for setuid and capability wrappers alike.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;

const UNSAFE: [&str; 24] = [
    "GCONV_PATH",
    "GETCONF_DIR",
    "GLIBC_TUNABLES",
    "HOSTALIASES",
    "LD_AUDIT",
    "LD_DEBUG",
    "LD_DEBUG_OUTPUT",
    "LD_DYNAMIC_WEAK",
    "LD_HWCAP_MASK",
    "LD_LIBRARY_PATH",
    "LD_ORIGIN_PATH",
    "LD_PRELOAD",
    "LD_PROFILE",
    "LD_SHOW_AUXV",
    "LD_USE_LOAD_BIAS",
    "LOCALDOMAIN",
    "LOCPATH",
    "MALLOC_TRACE",
    "NIS_PATH",
    "NLSPATH",
    "RESOLV_HOST_CONF",
    "RES_OPTIONS",
    "TMPDIR",
    "TZDIR",
];

/// Whether the variable `name` is dropped.
pub(crate) fn is_unsafe(name: &OsStr) -> bool {
    let b = name.as_bytes();
    UNSAFE.iter().any(|u| name == *u) || b.starts_with(b"MALLOC_") || b.starts_with(b"LD_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loaders_list_and_malloc_variables_go_and_the_rest_stays() {
        let cases = [
            ("LD_PRELOAD", true),
            ("LD_LIBRARY_PATH", true),
            ("LD_AUDIT", true),
            ("GLIBC_TUNABLES", true),
            ("GCONV_PATH", true),
            ("TMPDIR", true),
            ("MALLOC_CHECK_", true),
            ("MALLOC_ARENA_MAX", true),
            ("MALLOC_", true),
            ("PATH", false),
            ("HOME", false),
            ("LD_BIND_NOW", true),
            ("LD_VERBOSE", true),
            ("LD_PREFER_MAP_32BIT_EXEC", true),
            ("LD_", true),
            ("LDX_PRELOAD", false),
            ("ld_preload", false),
            ("XMALLOC_CHECK_", false),
            ("LANG", false),
        ];
        for (name, dropped) in cases {
            assert_eq!(is_unsafe(OsStr::new(name)), dropped, "{name}");
        }
        assert!(UNSAFE.iter().all(|u| is_unsafe(OsStr::new(u))));
    }
}
