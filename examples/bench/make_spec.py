#!/usr/bin/env python3
"""Synthetic etcflip specs for the benchmark (examples/bench/bench.sh).

    make_spec.py --entries N --store DIR --out DIR

writes into --out:

  spec-base.json    N entries
  spec-chg.json     the same N targets; 10% of the entries (index i with
                    i % 10 == (i // 100) % 10: 10 of every 100, every kind in proportion) get a
                    NEW store file with new content at the same target (text: new text)
  spec-addrm.json   every 20th entry (index % 20 == 7) removed, and as many new targets added
                    (N entries in total: 5% removed, 5% new)
  spec-real.json    the "realistic update" of issue 7: 7% of the entries get new content (a new
                    store file; copies too), 1.5% are removed and as many new targets (1.5%) are
                    added in existing directories; which entries is decided by real_slot() (14
                    changed and 3 removed of every 200, every kind in proportion)

and the store files (real files, one per entry and version) into --store, named like Nix
store objects: <32-char hash>-<name>.

Shape of the base spec (deterministic, no randomness):
  * ~1 entry per 10 per leaf directory: N/10 leaf directories, nested 2 or 3 levels
    (t<a>/s<b> for even leaf numbers, t<a>/s<b>/u<c> for odd ones; 16 top-level dirs);
  * every 100th entry (index % 100 == 50) is a copy ("mode": "0644"): ~1%;
  * 8 text entries (index % (N/8) == 11), the rest are symlinks to store files.
"""

import argparse
import hashlib
import json
import os
import sys

TOP = 16
PER_DIR = 10


# Nix-like base32 alphabet: byte b of a sha256 becomes ALPHABET[b % 32].
ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz"
TABLE = bytes(ord(ALPHABET[b % 32]) for b in range(256))


def store_name(tag: str) -> str:
    return hashlib.sha256(tag.encode()).digest().translate(TABLE).decode()


def leaf_dir(leaf: int) -> str:
    half = leaf // 2
    a = half % TOP
    rest = half // TOP
    if leaf % 2 == 0:
        return f"t{a:02d}/s{rest:04d}"
    return f"t{a:02d}/s{rest // 10:04d}/u{rest % 10}"


def target_of(i: int) -> str:
    return f"{leaf_dir(i // PER_DIR)}/f{i % PER_DIR}.conf"


def is_changed(i: int) -> bool:
    # Exactly 10 of every 100 consecutive entries, rotating the residue so that every kind
    # (copies are i % 100 == 50) is hit in proportion: 10% of the copies change too.
    return i % 10 == (i // 100) % 10


def real_slot(i: int) -> int:
    # A permutation of 0..199 within every block of 200 consecutive entries (37 is coprime with
    # 200), rotated by the block number (29 is coprime with 200 too): over 200 blocks, every
    # residue of i % 200 meets every slot once, so copies (i % 100 == 50) and the other kinds
    # are hit in proportion, and the chosen entries are spread over the directories.
    return ((i % 200) * 37 + (i // 200) * 29) % 200


def real_kind(i: int) -> str:
    # spec-real.json: 14 of every 200 entries (7%) get new content, 3 of 200 (1.5%) are removed.
    s = real_slot(i)
    return "changed" if s < 14 else "removed" if s < 17 else "kept"


def new_target_of(j: int, n: int) -> str:
    # Added entries spread over the existing leaf dirs, with names no base entry has.
    leaves = max(1, n // PER_DIR)
    return f"{leaf_dir((j * 7) % leaves)}/new{j}.conf"


class Store:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        os.makedirs(root, exist_ok=True)

    def put(self, name: str, content: str) -> str:
        path = f"{self.root}/{store_name(name + content)}-{name}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, content.encode())
        finally:
            os.close(fd)
        return path


def entry(i: int, n: int, store: Store, version: int, target: str) -> dict:
    text_every = max(1, n // 8)
    content = f"# synthetic /etc/{target}, version {version}\nkey{i} = value{i}-{version}\n"
    if i % text_every == 11 % text_every:
        return {"target": target, "text": content}
    src = store.put(f"etc-{target.replace('/', '-')}", content)
    e = {"target": target, "source": src}
    if i % 100 == 50:
        e["mode"] = "0644"
    return e


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    n = a.entries
    store = Store(a.store)
    os.makedirs(a.out, exist_ok=True)

    base, chg, addrm, real = {}, {}, {}, {}
    changed = removed = 0
    real_n = {"changed": 0, "removed": 0, "kept": 0, "added": 0, "changed_copies": 0,
              "removed_copies": 0}
    for i in range(n):
        t = target_of(i)
        attr = f"e{i}"
        e0 = entry(i, n, store, 0, t)
        base[attr] = e0
        if is_changed(i):
            chg[attr] = entry(i, n, store, 1, t)
            changed += 1
        else:
            chg[attr] = e0
        if i % 20 == 7:
            removed += 1
        else:
            addrm[attr] = e0
        kind = real_kind(i)
        if kind == "changed":
            real[attr] = entry(i, n, store, 2, t)
        elif kind == "kept":
            real[attr] = e0
        real_n[kind] += 1
        if kind != "kept" and "mode" in e0:
            real_n[f"{kind}_copies"] += 1
    for j in range(removed):
        t = new_target_of(j, n)
        addrm[f"new{j}"] = entry(n + j, n, store, 0, t)
    # As many added as removed, named and placed like spec-addrm's (new targets, existing
    # directories), with content of their own (version 3).
    for j in range(real_n["removed"]):
        t = new_target_of(j, n)
        real[f"new{j}"] = entry(n + j, n, store, 3, t)
        real_n["added"] += 1
    del real_n["kept"]

    for name, etc in (("base", base), ("chg", chg), ("addrm", addrm), ("real", real)):
        with open(os.path.join(a.out, f"spec-{name}.json"), "w") as f:
            f.write(json.dumps({"etc": etc}, sort_keys=True))
    kinds = {"symlink": 0, "copy": 0, "text": 0}
    for e in base.values():
        kinds["text" if "text" in e else "copy" if "mode" in e else "symlink"] += 1
    print(
        json.dumps(
            {"entries": n, "changed": changed, "removed": removed, "added": removed, **kinds,
             "real": real_n}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
