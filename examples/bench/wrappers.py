#!/usr/bin/env python3
"""The wrappers rows of the etcflip benchmark (examples/bench/bench.sh runs it last).

    wrappers.py --bin-dir DIR --scratch DIR [--wrappers N] [--runs R] [--execs E]

N wrappers (default 100: half setuid root, a quarter setgid, a quarter with cap_net_raw) of one
static target program, in a generation built by etcflip-gen. Measured, interleaved:
  * from scratch: `etcflip wrappers GEN --root R` on a root with an empty /run/wrappers
    (plan, payload sha256 check, the directory built, flipped);
  * no-op: the same again (it must write nothing);
  * floor: wrappers_floor.c making the same directory with the same system calls (no plan, no
    checks, no hashing), on a fresh root;
  * for scale: sha256 of all N payload files (Python's hashlib): what checking each payload by
    its hash would add (etcflip hashes one and compares the others with it).
Then the exec overhead: the median wall time of fork + exec + wait of the target directly and
through a setuid and a capability wrapper (E runs each, interleaved, timed in C).
Prints a Markdown table. Target: under 1 ms of overhead per exec.
"""

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def sh(argv, **kw):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True, **kw).stdout


def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def fresh_root(root):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "etc"))
    os.makedirs(os.path.join(root, "run/wrappers"))
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write("root:x:0:0::/root:/bin/sh\n")
    with open(os.path.join(root, "etc/group"), "w") as f:
        f.write("root:x:0:\n")


def kind(i):
    """(NixOS fields, mode, gid, permitted) of the i-th wrapper."""
    if i % 4 == 2:
        return {"group": "root", "setgid": True}, 0o2511, 0, 0
    if i % 4 == 3:
        return {"capabilities": "cap_net_raw+ep"}, 0o511, 0, 1 << 13
    return {"setuid": True}, 0o4511, 0, 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--wrappers", type=int, default=100)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--execs", type=int, default=301)
    a = ap.parse_args()
    base = os.path.join(a.scratch, "wrappers")
    os.makedirs(base, exist_ok=True)
    floor = os.path.join(base, "wrappers_floor")
    sh(["gcc", "-O2", "-o", floor, os.path.join(HERE, "wrappers_floor.c")])
    target = os.path.join(base, "target")
    with open(target + ".c", "w") as f:
        f.write("int main(void) { return 0; }\n")
    sh(["gcc", "-O2", "-static", "-o", target, target + ".c"])
    os.chmod(base, 0o755)

    wrappers, lines = {}, []
    for i in range(a.wrappers):
        fields, mode, gid, permitted = kind(i)
        name = f"w{i:03d}"
        wrappers[name] = {"source": target, "owner": "root", "group": "root", **fields}
        lines.append(f"{name} {mode:o} 0 {gid} {permitted:x}\n")
    spec = os.path.join(base, "spec.json")
    with open(spec, "w") as f:
        json.dump({"wrappers": wrappers}, f)
    gen = os.path.join(base, "gen")
    shutil.rmtree(gen, ignore_errors=True)
    sh([os.path.join(a.bin_dir, "etcflip-gen"), "build", "--spec", spec, "--out", gen,
        "--wrapper", os.path.join(a.bin_dir, "etcflip-wrapper")])
    listing = os.path.join(base, "list")
    with open(listing, "w") as f:
        f.writelines(lines)

    etcflip = os.path.join(a.bin_dir, "etcflip")
    root, froot = os.path.join(base, "root"), os.path.join(base, "floor-root")
    first, noop, fl, hashing = [], [], [], []
    payload = os.path.join(gen, "wrappers")
    for _ in range(a.runs):
        fresh_root(root)
        fresh_root(froot)
        first.append(timed([etcflip, "wrappers", gen, "--root", root]))
        before = sh(["find", os.path.join(root, "run"), "-printf", "%p %i %C@\n"])
        noop.append(timed([etcflip, "wrappers", gen, "--root", root]))
        after = sh(["find", os.path.join(root, "run"), "-printf", "%p %i %C@\n"])
        assert before == after, "the no-op run changed /run/wrappers"
        fl.append(timed([floor, "build", froot, payload, listing]))
        t = time.perf_counter()
        for name in sorted(os.listdir(payload)):
            with open(os.path.join(payload, name), "rb") as f:
                hashlib.sha256(f.read()).hexdigest()
        hashing.append(time.perf_counter() - t)

    bin_dir = os.path.join(root, os.readlink(os.path.join(root, "run/wrappers/bin")).lstrip("/"))
    setuid, caps = os.path.join(bin_dir, "w000"), os.path.join(bin_dir, "w003")
    direct, via_setuid, via_caps = (int(x) for x in sh(
        [floor, "exec", str(a.execs), target, setuid, caps]).split())

    m = statistics.median
    size = os.path.getsize(os.path.join(payload, "w000"))
    print(f"\n### Wrappers ({a.wrappers} wrappers of {size / 1e6:.2f} MB each; "
          f"medians of {a.runs} interleaved runs, tmpfs)\n")
    print("| Row | etcflip | Floor | Ratio |")
    print("|---|---|---|---|")
    print(f"| {a.wrappers} wrappers from scratch (`etcflip wrappers`) | {m(first) * 1e3:.1f} ms "
          f"| {m(fl) * 1e3:.1f} ms (same syscalls) | {m(first) / m(fl):.2f}× |")
    print(f"| the same, no-op (writes nothing) | {m(noop) * 1e3:.1f} ms | — | — |")
    print(f"| for scale: sha256 of all {a.wrappers} payloads (not done) | "
          f"{m(hashing) * 1e3:.1f} ms | — | — |")
    print(f"\n### Exec overhead (fork + exec + wait, median of {a.execs} interleaved runs)\n")
    print("| Run | Median | Overhead | Target |")
    print("|---|---|---|---|")
    print(f"| the static target directly | {direct / 1e3:.0f} µs | — | — |")
    for what, t in (("through a setuid wrapper", via_setuid), ("through a capability wrapper", via_caps)):
        over = (t - direct) / 1e6
        ok = "met" if over < 1.0 else "**missed**"
        print(f"| {what} | {t / 1e3:.0f} µs | {over:.2f} ms | < 1 ms: {ok} |")


if __name__ == "__main__":
    main()
