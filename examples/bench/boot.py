#!/usr/bin/env python3
"""The boot and image rows of the etcflip benchmark (examples/bench/bench.sh runs it).

    boot.py --bin-dir DIR --floor FLOOR --scratch DIR [--sizes 1000,10000] [--runs R]

For each size N, the base spec of make_spec.py with its overlay under /run (as an image's is):
  * boot from an empty /etc: `etcflip boot GEN --root R` on a fresh empty root, next to floor
    A, `systemd-tmpfiles --create` alone on the generation's snippet (the link farm);
  * boot on the image: a tree built by `etcflip image` (its applied state names GEN), its /etc
    bound read-only onto itself (in a private mount namespace: the script runs itself under
    `unshare -m`), its /run emptied before each run; `etcflip boot` makes only the overlay
    link under /run. Floor: the C floor's --flip (one symlink + rename). Target: the same
    time at both sizes, < 5 ms;
  * the same with a users part of USERS users kept in /var/lib/nixos (passwordFilesLocation,
    NixOS's image default): boot also plans them (and writes them, the first time). It reads
    the users part from the manifest's end, so it too should cost the same at both sizes;
  * image at the largest size: `etcflip image GEN --root DIR --squashfs FILE` next to
    `mksquashfs` alone on the same tree with the same options, and `--erofs FILE` (owners
    and modes given under fakeroot) next to `mkfs.erofs` alone on that tree.
Medians of R interleaved runs; prints a Markdown table.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(argv, env=None):
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def users_part(n):
    """NixOS-like: root, and n - 1 system users whose ids the machine allocates."""
    users = [{"name": "root", "uid": 0, "group": "root", "home": "/root",
              "isSystemUser": True, "hashedPassword": "!", "shell": "/bin/sh"}]
    users += [{"name": f"svc{i}", "group": "nogroup", "home": "/var/empty",
               "isSystemUser": True, "shell": "/bin/false"} for i in range(1, n)]
    return {"mutableUsers": True, "passwordFilesLocation": "/var/lib/nixos", "users": users,
            "groups": [{"name": "root", "gid": 0, "members": []},
                       {"name": "nogroup", "gid": 65534, "members": []}]}


def image_tree(etcflip, gen_bin, d, name, spec):
    """Builds GEN and its image tree under d; returns (gen, tree), the tree's etc read-only."""
    with open(os.path.join(d, f"spec-{name}.json"), "w") as f:
        json.dump(spec, f)
    gen = os.path.join(d, f"gen-{name}")
    subprocess.run([gen_bin, "build", "--spec", os.path.join(d, f"spec-{name}.json"),
                    "--out", gen], check=True, stdout=subprocess.DEVNULL)
    tree = os.path.join(d, f"tree-{name}")
    shutil.rmtree(tree, ignore_errors=True)
    subprocess.run([etcflip, "image", gen, "--root", tree, "--squashfs", tree + ".sqfs"],
                   check=True, stdout=subprocess.DEVNULL)
    read_only(os.path.join(tree, "etc"))
    return gen, tree


def boot_image(etcflip, gen, tree):
    """One boot on the image tree, /run emptied first; returns its time."""
    shutil.rmtree(os.path.join(tree, "run"), ignore_errors=True)
    t = time.perf_counter()
    out = subprocess.run([etcflip, "boot", gen, "--root", tree], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    took = time.perf_counter() - t
    assert "nothing written below it" in out, out
    assert os.readlink(os.path.join(tree, "run/etcflip/static")) == gen + "/etc"
    return took


def read_only(etc):
    """Binds `etc` read-only onto itself (this process is in its own mount namespace)."""
    subprocess.run(["mount", "--bind", etc, etc], check=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", etc], check=True)


def main():
    if os.environ.get("ETCFLIP_BENCH_NS") != "1":
        os.environ["ETCFLIP_BENCH_NS"] = "1"
        argv = ["unshare", "-m", "--propagation", "private", "python3"] + sys.argv
        os.execvp("unshare", argv)
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--users", type=int, default=50)
    a = ap.parse_args()
    etcflip = os.path.join(a.bin_dir, "etcflip")
    gen_bin = os.path.join(a.bin_dir, "etcflip-gen")
    base = os.path.join(a.scratch, "boot")
    sizes = [int(s) for s in a.sizes.split(",")]
    rows = []
    for n in sizes:
        d = os.path.join(base, str(n))
        fresh(d)
        subprocess.run(["python3", os.path.join(HERE, "make_spec.py"), "--entries", str(n),
                        "--store", os.path.join(d, "store"), "--out", d], check=True,
                       stdout=subprocess.DEVNULL)
        spec = json.load(open(os.path.join(d, "spec-base.json")))
        spec["overlay"] = "/run/etcflip/static"
        gen, tree = image_tree(etcflip, gen_bin, d, "plain", spec)
        spec["users"] = users_part(a.users)
        gen_u, tree_u = image_tree(etcflip, gen_bin, d, "users", spec)
        snippet = os.path.join(gen, "tmpfiles.d", "etcflip.conf")
        empty, froot = os.path.join(d, "empty"), os.path.join(d, "floor-root")
        samples = {"empty": [], "tmpfiles": [], "image": [], "users": [], "flip": [], "mk": [],
                   "img": [], "ero": [], "mkero": []}
        for _ in range(a.runs):
            fresh(empty)
            samples["empty"].append(timed([etcflip, "boot", gen, "--root", empty]))
            fresh(froot)
            samples["tmpfiles"].append(timed(["systemd-tmpfiles", "--create", "--root", froot,
                                              snippet]))
            samples["image"].append(boot_image(etcflip, gen, tree))
            samples["users"].append(boot_image(etcflip, gen_u, tree_u))
            fresh(froot)
            samples["flip"].append(timed([a.floor, froot, "--flip", "run/etcflip/static",
                                          gen + "/etc"]))
            if n == sizes[-1]:
                out = os.path.join(d, "again")
                shutil.rmtree(out, ignore_errors=True)
                samples["img"].append(timed([etcflip, "image", gen, "--root", out,
                                             "--squashfs", out + ".sqfs"]))
                samples["mk"].append(timed(["mksquashfs", tree, os.path.join(d, "mk.sqfs"),
                                            "-root-mode", "755", "-root-uid", "0",
                                            "-root-gid", "0",
                                            "-noappend", "-no-xattrs", "-mkfs-time", "0",
                                            "-all-time", "0", "-quiet", "-no-progress", "-pf",
                                            tree + ".squashfs-pseudo"]))
                os.remove(out + ".sqfs")
                os.remove(out + ".squashfs-pseudo")
                shutil.rmtree(out, ignore_errors=True)
                samples["ero"].append(timed([etcflip, "image", gen, "--root", out,
                                             "--erofs", out + ".erofs"]))
                samples["mkero"].append(timed(["mkfs.erofs", "-T0", "-x-1", "--quiet",
                                               os.path.join(d, "mk.erofs"), tree]))
                os.remove(out + ".erofs")
                os.remove(out + ".squashfs-pseudo")
        rows.append((n, {k: statistics.median(v) for k, v in samples.items() if v}))

    print(f"\n### Boot and images (medians of {a.runs} interleaved runs, tmpfs)\n")
    print("| row | n | etcflip | floor | × floor | target |")
    print("|---|---:|---:|---:|---:|---|")
    ms = lambda s: f"{s * 1e3:.1f} ms"
    for n, m in rows:
        print(f"| boot from an empty /etc | {n:,} | {ms(m['empty'])} | {ms(m['tmpfiles'])} "
              f"(tmpfiles alone) | {m['empty'] / m['tmpfiles']:.2f}× | |")
    for n, m in rows:
        ok = "met" if m["image"] < 0.005 else "**missed**"
        print(f"| boot on the read-only image | {n:,} | {ms(m['image'])} | {ms(m['flip'])} "
              f"(one link + rename) | {m['image'] / m['flip']:.2f}× | < 5 ms, same at every "
              f"size: {ok} |")
    for n, m in rows:
        print(f"| boot on the read-only image, {a.users} users in /var/lib/nixos | {n:,} | "
              f"{ms(m['users'])} | {ms(m['flip'])} (one link + rename) | "
              f"{m['users'] / m['flip']:.2f}× | same at every size |")
    n, m = rows[-1]
    print(f"| `image --squashfs` | {n:,} | {ms(m['img'])} | {ms(m['mk'])} (mksquashfs "
          f"alone) | {m['img'] / m['mk']:.2f}× | |")
    print(f"| `image --erofs` | {n:,} | {ms(m['ero'])} | {ms(m['mkero'])} (mkfs.erofs "
          f"alone) | {m['ero'] / m['mkero']:.2f}× | |")


if __name__ == "__main__":
    main()
