#!/usr/bin/env bash
# Obtains systemd-tmpfiles 254.x (bookworm-backports) and 257.x (trixie) for the golden tests,
# WITHOUT installing them and without touching the machine's apt configuration or state.
#
# A private apt setup under $CACHE/tmpfiles/apt (own apt.conf, sources list, state, cache; the
# host's /etc/apt is only read to find the Debian mirror) downloads the .debs, `dpkg-deb -x`
# unpacks them into $CACHE/tmpfiles/{254,257,libc-trixie}, and two wrappers are written:
#   $CACHE/tmpfiles/bin/systemd-tmpfiles-254   runs the bookworm-backports binary directly
#   $CACHE/tmpfiles/bin/systemd-tmpfiles-257   runs the trixie binary through trixie's ld-linux
#                                              and libc (it needs GLIBC_2.38)
#
# CACHE = ${ETCFLIP_CACHE:-<repo>/.cache} (a relative ETCFLIP_CACHE is taken from the repo root).
# ETCFLIP_DEBIAN_MIRROR overrides the mirror found in /etc/apt.
# Idempotent: when both wrappers already report the expected major version, nothing is fetched.
# Output: one line per version, "<major>: <first line of --version>". Non-zero exit on failure.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${ETCFLIP_CACHE:-$REPO/.cache}
case $CACHE in
/*) ;;
*) CACHE=$REPO/$CACHE ;;
esac
T=$CACHE/tmpfiles
BIN=$T/bin

die() {
    echo "fetch-tmpfiles: error: $*" >&2
    exit 1
}

# Prints the first line of `<wrapper> --version` if it reports major $2, else fails.
check_wrapper() {
    local wrapper=$1 major=$2 line
    [[ -x $wrapper ]] || return 1
    line=$("$wrapper" --version 2>/dev/null) || return 1
    line=${line%%$'\n'*}
    [[ $line =~ ^systemd\ $major([^0-9]|$) ]] || return 1
    printf '%s\n' "$line"
}

report_all() {
    local major line
    for major in 254 257; do
        line=$(check_wrapper "$BIN/systemd-tmpfiles-$major" "$major") || return 1
        printf '%s: %s\n' "$major" "$line"
    done
}

# Fast path: everything already there and working.
if out=$(report_all 2>/dev/null); then
    printf '%s\n' "$out"
    exit 0
fi

for tool in apt-get dpkg-deb dpkg flock; do
    command -v "$tool" >/dev/null || die "'$tool' not found (this script expects a Debian host)"
done

mkdir -p "$T"
exec 9>"$T/.lock"
flock 9
# Another run may have finished while we waited for the lock.
if out=$(report_all 2>/dev/null); then
    printf '%s\n' "$out"
    exit 0
fi

ARCH=$(dpkg --print-architecture)

# The Debian mirror the machine already uses for bookworm (read-only look at /etc/apt).
find_mirror() {
    local f
    shopt -s nullglob
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        # deb [options] URI SUITE COMPONENTS...
        awk '$1 == "deb" {
                 i = 2
                 if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                 if ($(i + 1) == "bookworm") { print $i; exit }
             }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        # deb822 stanzas separated by blank lines; want Types: deb and Suites: bookworm.
        awk 'BEGIN { RS = ""; FS = "\n" }
             {
                 uri = ""; deb = 0; bw = 0; on = 1
                 for (j = 1; j <= NF; j++) {
                     if ($j ~ /^[ \t]*#/) continue
                     split($j, kv, ":[ \t]*")
                     key = tolower(kv[1]); val = substr($j, length(kv[1]) + 2)
                     if (key == "types" && val ~ /(^|[ \t])deb([ \t]|$)/) deb = 1
                     if (key == "suites" && val ~ /(^|[ \t])bookworm([ \t]|$)/) bw = 1
                     if (key == "enabled" && val ~ /no/) on = 0
                     if (key == "uris") { sub(/^[ \t]+/, "", val); split(val, u, /[ \t]+/); uri = u[1] }
                 }
                 if (deb && bw && on && uri != "") { print uri; exit }
             }' "$f"
    done
}
MIRROR=${ETCFLIP_DEBIAN_MIRROR:-$(find_mirror)}
MIRROR=${MIRROR%%$'\n'*}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
MIRROR=${MIRROR%/}

KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r $KEYRING ]] || die "$KEYRING missing (package debian-archive-keyring)"

# Private apt: APT_CONFIG is read before anything else and points every directory apt would use
# (config parts, sources parts, preferences, trusted keys, state, cache, logs) at $APTD, so the
# host's apt.conf.d hooks, pins and lists are neither read nor run.
APTD=$T/apt
mkdir -p "$APTD"/{etc/apt.conf.d,etc/sources.list.d,etc/preferences.d,etc/trusted.gpg.d} \
    "$APTD"/{state/lists/partial,cache/archives/partial,log,debs}
: >"$APTD/state/status"
cat >"$APTD/etc/sources.list" <<EOF
deb [signed-by=$KEYRING] $MIRROR bookworm-backports main
deb [signed-by=$KEYRING] $MIRROR trixie main
EOF
cat >"$APTD/etc/apt.conf" <<EOF
Dir::Etc::Main "$APTD/etc/apt.conf";
Dir::Etc::Parts "$APTD/etc/apt.conf.d";
Dir::Etc::SourceList "$APTD/etc/sources.list";
Dir::Etc::SourceParts "$APTD/etc/sources.list.d";
Dir::Etc::Preferences "$APTD/etc/preferences";
Dir::Etc::PreferencesParts "$APTD/etc/preferences.d";
Dir::Etc::Trusted "$APTD/etc/trusted.gpg";
Dir::Etc::TrustedParts "$APTD/etc/trusted.gpg.d";
Dir::State "$APTD/state";
Dir::State::status "$APTD/state/status";
Dir::Cache "$APTD/cache";
Dir::Log "$APTD/log";
APT::Architecture "$ARCH";
APT::Architectures { "$ARCH"; };
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
export APT_CONFIG=$APTD/etc/apt.conf
APT=(apt-get -q
    -o "Dir::Etc::SourceList=$APTD/etc/sources.list"
    -o "Dir::Etc::SourceParts=$APTD/etc/sources.list.d"
    -o "Dir::State=$APTD/state"
    -o "Dir::Cache=$APTD/cache")

LOG=$APTD/log/fetch.log
: >"$LOG"
run_logged() {
    if ! "$@" >>"$LOG" 2>&1; then
        echo "fetch-tmpfiles: error: failed: $*" >&2
        echo "--- $LOG:" >&2
        tail -n 30 "$LOG" >&2
        exit 1
    fi
}

# Lists are refreshed at most once per run, and only when a package is actually missing.
UPDATED=
apt_update() {
    [[ -z $UPDATED ]] || return 0
    run_logged "${APT[@]}" update
    if grep -q -E '^(W|E):' "$LOG"; then
        echo "fetch-tmpfiles: error: apt-get update against $MIRROR reported problems:" >&2
        grep -E '^(W|E):' "$LOG" >&2
        exit 1
    fi
    UPDATED=1
}

# Downloads package $1 from release $2 and unpacks it into $T/$3 (atomically: temp dir + rename).
# $4 is a regex the Debian version must match.
fetch_unpack() {
    local pkg=$1 release=$2 dest=$3 want=$4 dl deb version
    if [[ -f $T/$dest/.deb-version ]] && [[ $(<"$T/$dest/.deb-version") =~ $want ]]; then
        return 0
    fi
    apt_update
    dl=$(mktemp -d "$APTD/debs/dl.XXXXXX")
    # apt drops privileges to _apt for downloads; let it write here instead of warning.
    if [[ $(id -u) == 0 ]] && id _apt >/dev/null 2>&1; then
        chown _apt "$dl"
    fi
    (cd "$dl" && "${APT[@]}" download "$pkg/$release") >>"$LOG" 2>&1 || {
        echo "fetch-tmpfiles: error: could not download $pkg from $release ($MIRROR)" >&2
        tail -n 15 "$LOG" >&2
        rm -rf "$dl"
        exit 1
    }
    local debs
    debs=("$dl/${pkg}"_*.deb)
    deb=${debs[0]}
    [[ -f $deb ]] || die "apt-get download $pkg/$release produced no .deb (see $LOG)"
    version=$(dpkg-deb -f "$deb" Version)
    [[ $version =~ $want ]] ||
        die "$pkg in $release is $version, expected a version matching $want; the mirror has moved on"
    rm -rf "$T/$dest.new"
    dpkg-deb -x "$deb" "$T/$dest.new"
    printf '%s\n' "$version" >"$T/$dest.new/.deb-version"
    rm -rf "$T/$dest"
    mv "$T/$dest.new" "$T/$dest"
    rm -rf "$dl"
}

fetch_unpack systemd-standalone-tmpfiles bookworm-backports 254 '^254\.'
fetch_unpack systemd-standalone-tmpfiles trixie 257 '^257\.'
fetch_unpack libc6 trixie libc-trixie '^2\.'

# Path of the tmpfiles binary inside an unpacked package, relative to that package dir.
tmpfiles_in() {
    local dir=$1 rel
    for rel in usr/bin/systemd-tmpfiles bin/systemd-tmpfiles; do
        if [[ -f $dir/$rel && ! -L $dir/$rel ]]; then
            printf '%s\n' "$rel"
            return 0
        fi
    done
    die "no systemd-tmpfiles binary in $dir"
}
B254=$(tmpfiles_in "$T/254")
B257=$(tmpfiles_in "$T/257")

# Trixie's dynamic loader (the real file, not a compat symlink) and the directory holding its
# libc.so.6, both relative to libc-trixie.
first_file() {
    local f
    for f in "$@"; do
        if [[ -f $T/libc-trixie/$f && ! -L $T/libc-trixie/$f ]]; then
            printf '%s\n' "$f"
            return 0
        fi
    done
    return 1
}
LDSO=$(cd "$T/libc-trixie" && shopt -s nullglob && first_file usr/lib/*/ld-linux*.so.* \
    usr/lib*/ld-linux*.so.* lib*/ld-linux*.so.* lib/*/ld-linux*.so.*) ||
    die "no ld-linux in trixie's libc6 ($T/libc-trixie)"
LIBDIR=$(cd "$T/libc-trixie" && shopt -s nullglob && first_file usr/lib/*/libc.so.6 lib/*/libc.so.6) ||
    die "no libc.so.6 in trixie's libc6 ($T/libc-trixie)"
LIBDIR=$(dirname "$LIBDIR")

# The wrappers locate the cache from their own path, so the cache dir can be moved.
mkdir -p "$BIN"
write_wrapper() {
    local major=$1 body=$2 file=$BIN/systemd-tmpfiles-$1
    {
        echo '#!/bin/sh'
        echo "# systemd-tmpfiles $major, unpacked by tests/tools/fetch-tmpfiles.sh; not installed."
        echo 'T=$(cd "$(dirname "$0")/.." && pwd)'
        echo "$body"
    } >"$file.new"
    chmod 0755 "$file.new"
    mv "$file.new" "$file"
}
write_wrapper 254 "exec \"\$T/254/$B254\" \"\$@\""
write_wrapper 257 "exec \"\$T/libc-trixie/$LDSO\" --library-path \"\$T/libc-trixie/$LIBDIR\" \"\$T/257/$B257\" \"\$@\""

# The lists are only needed to download; the next download refreshes them anyway.
rm -rf "$APTD/state" "$APTD/cache" "$APTD/debs"

report_all || {
    for major in 254 257; do
        echo "--- $BIN/systemd-tmpfiles-$major --version:" >&2
        "$BIN/systemd-tmpfiles-$major" --version >&2 || true
    done
    die "a wrapper does not report its expected major version"
}
