//! The environment a wrapper never passes on: what glibc's dynamic loader drops for a privileged
//! program (`sysdeps/generic/unsecvars.h`), its tunables (`GLIBC_TUNABLES`, which a loader
//! built with tunables scrubs on its own, and so is missing from that list), and every
//! `MALLOC_*` variable (the tunables' old aliases). A capability wrapper's target is not run
//! `AT_SECURE`, so its loader would honour all of them: the wrapper drops them itself, for
//! setuid and capability wrappers alike.

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
    UNSAFE.iter().any(|u| name == *u) || name.as_bytes().starts_with(b"MALLOC_")
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
            ("LD_PRELOADX", false),
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
