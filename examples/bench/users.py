#!/usr/bin/env python3
"""The users row of the etcflip benchmark (examples/bench/bench.sh runs it after the main table).

    users.py --bin-dir DIR --floor FLOOR --scratch DIR [--users N] [--runs R]

N declared users (default 1,000), half with a static uid and half allocated (a quarter of
those system users), in 50 groups with members; a root that starts with only root in its user
database. Measured, interleaved in the same run:
  * from scratch: `etcflip switch` of a fresh copy of that root (the whole users phase:
    plan, lock, group/passwd/shadow/subuid/subgid, ledgers);
  * no-op: the same switch again (it must write nothing);
  * floor: the C floor writing the same five files once, atomically (temp file, fsync,
    rename, fsync of the directory), into a fresh copy of the root;
  * for reference, etcflip's fixed cost: a no-op switch of a generation with no users part
    (process start, lock, state, mount table), which both rows pay whatever the users.
Prints a Markdown table with the ratios to the floor and the targets (no-op <= 2x, from
scratch <= 3x).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time

FILES = ["etc/group", "etc/passwd", "etc/shadow", "etc/subuid", "etc/subgid"]


def spec(n):
    groups = [{"name": "root", "gid": 0, "members": []},
              {"name": "users", "gid": 100, "members": []}]
    for g in range(50):
        members = [f"u{i}" for i in range(g, n, 50)][:5]
        groups.append({"name": f"g{g}", "gid": 3000 + g if g % 2 else None, "members": members})
    users = [{"name": "root", "uid": 0, "group": "root", "home": "/root", "isSystemUser": True,
              "hashedPassword": "!", "shell": "/bin/sh"}]
    for i in range(n):
        users.append({
            "name": f"u{i}", "uid": 10000 + i if i % 2 == 0 else None, "group": "users",
            "home": f"/home/u{i}", "isSystemUser": i % 4 == 1, "shell": "/bin/sh",
            "hashedPassword": "$6$salt$" + "x" * 86,
        })
    return {"users": {"mutableUsers": True, "users": users, "groups": groups}}


def fresh_root(template, root):
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(template, root, symlinks=True)


def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def tree(root):
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            st = os.lstat(p)
            out.append((p, st.st_ino, st.st_mtime_ns))
    return sorted(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args()
    etcflip = os.path.join(a.bin_dir, "etcflip")
    base = os.path.join(a.scratch, "users")
    os.makedirs(base, exist_ok=True)
    spec_path = os.path.join(base, "spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec(a.users), f)
    gen = os.path.join(base, "gen")
    shutil.rmtree(gen, ignore_errors=True)
    subprocess.run([os.path.join(a.bin_dir, "etcflip-gen"), "build", "--spec", spec_path,
                    "--out", gen], check=True, stdout=subprocess.DEVNULL)
    bare = os.path.join(base, "bare-gen")
    shutil.rmtree(bare, ignore_errors=True)
    bare_spec = os.path.join(base, "bare.json")
    with open(bare_spec, "w") as f:
        json.dump({"etc": {}}, f)
    subprocess.run([os.path.join(a.bin_dir, "etcflip-gen"), "build", "--spec", bare_spec,
                    "--out", bare], check=True, stdout=subprocess.DEVNULL)
    template = os.path.join(base, "template")
    os.makedirs(os.path.join(template, "etc"), exist_ok=True)
    for rel, text in [("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
                      ("etc/group", "root:x:0:\nusers:x:100:\n"),
                      ("etc/shadow", "root:!:1::::::\n")]:
        with open(os.path.join(template, rel), "w") as f:
            f.write(text)
    os.chmod(os.path.join(template, "etc/shadow"), 0o640)
    root, floor_root = os.path.join(base, "root"), os.path.join(base, "floor-root")
    # The files the switch writes, as the floor's input.
    fresh_root(template, root)
    subprocess.run([etcflip, "switch", gen, "--root", root], check=True, stdout=subprocess.DEVNULL)
    srcs = []
    for rel in FILES:
        src = os.path.join(base, rel.replace("/", "_"))
        shutil.copyfile(os.path.join(root, rel), src)
        srcs += ["--write", rel, src]
    bare_root = os.path.join(base, "bare-root")
    fresh_root(template, bare_root)
    subprocess.run([etcflip, "switch", bare, "--root", bare_root], check=True,
                   stdout=subprocess.DEVNULL)
    scratch, noop, floor, fixed = [], [], [], []
    writes_nothing = True
    for _ in range(a.runs):
        fresh_root(template, root)
        scratch.append(timed([etcflip, "switch", gen, "--root", root]))
        before = tree(root)
        noop.append(timed([etcflip, "switch", gen, "--root", root]))
        writes_nothing &= before == tree(root)
        fresh_root(template, floor_root)
        floor.append(timed([a.floor, floor_root] + srcs))
        fixed.append(timed([etcflip, "switch", bare, "--root", bare_root]))
    med = statistics.median
    f = med(floor)
    ms = lambda s: f"{s * 1000:.1f} ms"
    rows = [("users phase from scratch", scratch, 3.0), ("users phase no-op", noop, 2.0)]
    print(f"\n{a.users:,} declared users (half allocated), {a.runs} runs each, interleaved; "
          f"floor: the five files written once, atomically, by the C floor: {ms(f)} median.\n")
    print("| row | n | median | min | floor | × floor | target | result |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for name, times, target in rows:
        ratio = med(times) / f
        extra = " and writes nothing" if "no-op" in name else ""
        ok = ratio <= target and (writes_nothing or "no-op" not in name)
        print(f"| {name} | {a.users:,} | {ms(med(times))} | {ms(min(times))} | {ms(f)} | "
              f"{ratio:.2f}× | ≤ {target:.0f}× floor{extra} | {'**met**' if ok else '**MISSED**'} |")
    print(f"| fixed cost: no-op switch, no users part | 0 | {ms(med(fixed))} | {ms(min(fixed))} | "
          f"{ms(f)} | {med(fixed) / f:.2f}× | (reference) |  |")


if __name__ == "__main__":
    main()
