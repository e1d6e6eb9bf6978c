#!/usr/bin/env bash
# The etcflip demo: builds etcflip, generates both generations of the bundled desktop example,
# switches a scratch root from the first to the second (printing the plan), then verifies it;
# as root, it also makes a setuid and a capability wrapper and runs them as nobody.
# Works as root or as an ordinary user; touches nothing outside its scratch directory.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
source tests/tools/deps.sh
ensure_deps

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "build etcflip (release)"
cargo build --release --workspace --locked -q
bin="${CARGO_TARGET_DIR:-target}/release"
gen=$bin/etcflip-gen
flip=$bin/etcflip

demo=${ETCFLIP_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/etcflip-demo.XXXXXX")}
root=$demo/root
rm -rf "$root"
mkdir -p "$root/gens"
echo "scratch root: $root"

say "generate both generations of examples/desktop (the generations live inside the root, as they would in an image)"
"$gen" build --spec examples/desktop/gen1.json --out "$root/gens/gen1"
"$gen" build --spec examples/desktop/gen2.json --out "$root/gens/gen2"
for g in gen1 gen2; do
  printf '%s: %s entries, %s lines of tmpfiles snippet\n' "$g" \
    "$(grep -c '"target"' "$root/gens/$g/manifest.json")" \
    "$(grep -vc '^#' "$root/gens/$g/tmpfiles.d/etcflip.conf")"
done

say "switch the empty root to gen1"
"$flip" switch "$root/gens/gen1" --root "$root" | tail -n 3

say "what switching to gen2 would do (--dry-run)"
"$flip" switch "$root/gens/gen2" --root "$root" --dry-run

say "switch to gen2"
"$flip" switch "$root/gens/gen2" --root "$root" | tail -n 2

say "verify: the root matches gen2"
"$flip" verify --root "$root"

say "a look at the result"
ls -l "$root/etc/static" "$root/etc/sudoers" "$root/etc/localtime" "$root/etc/ssh/sshd_config"
echo "/etc/systemd/system is now a real directory of per-file links:"
ls -l "$root/etc/systemd/system" | head -n 6
"$flip" status --root "$root"

say "switching to gen2 again changes nothing"
"$flip" switch "$root/gens/gen2" --root "$root" | tail -n 1

say "tamper with the root; verify names what changed"
echo "# edited" >> "$root/etc/sudoers"
rm "$root/etc/hostname"
"$flip" verify --root "$root" || echo "(verify exited $? because of the drift above)"

say "setuid and capability wrappers (security.wrappers) from a generation"
if [ "$(id -u)" = 0 ]; then
  cat > "$demo/wrappers.json" <<'SPEC'
{"etc": {"motd": {"text": "wrapped\n"}},
 "wrappers": {"whoami-root": {"source": "/usr/bin/id", "owner": "root", "group": "root", "setuid": true},
              "status-raw": {"source": "/usr/bin/cat", "owner": "root", "group": "root",
                             "capabilities": "cap_net_raw+ep"}}}
SPEC
  "$gen" build --spec "$demo/wrappers.json" --out "$root/gens/wrapped"
  "$flip" switch "$root/gens/wrapped" --root "$root" --on-conflict backup | grep -E '^wrappers:|^switched'
  wdir="$root$(readlink "$root/run/wrappers/bin")"
  ls -l "$wdir"
  chmod 755 "$demo" "$root" "$root/run"
  echo "run as nobody: $(setpriv --reuid=65534 --regid=65534 --clear-groups -- "$wdir/whoami-root")"
  setpriv --reuid=65534 --regid=65534 --clear-groups -- "$wdir/status-raw" /proc/self/status | grep CapAmb
else
  echo "skipped: making setuid and capability wrappers needs root"
fi

echo
echo "done; the scratch root is $root (remove it with: rm -rf $demo)"
