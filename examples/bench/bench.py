#!/usr/bin/env python3
"""The etcflip benchmark driver; run it through bench.sh (which builds the binaries first).

Every timed command is one process started with posix_spawn and reaped with wait4: the time
is time.perf_counter() around spawn..reap, the peak RSS is wait4's ru_maxrss (the process and
its reaped children, as /usr/bin/time reports it). stdout goes to /dev/null. Everything lives
in a scratch directory on tmpfs; floors are measured in the same run, interleaved with the
measured command, on roots in the same starting state.
"""

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ARGS = None
LOG = None  # stderr of every spawned process goes here


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(1)


RSS_MODE = False  # set during the one RSS-measuring iteration of a series


def spawn(argv, env=None):
    """Runs argv; returns (seconds, peak RSS in kB or None). Fails the benchmark on a non-zero
    exit. In RSS mode the command runs under `/usr/bin/time -f '%e %M'`: wait4's ru_maxrss of a
    process spawned straight from Python would include Python's own RSS (posix_spawn's vfork
    shares Python's address space until the exec, and the kernel keeps that high-water mark)."""
    tfile = None
    if RSS_MODE:
        tfile = os.path.join(ARGS.scratch, "time.txt")
        argv = ["/usr/bin/time", "-f", "%e %M", "-o", tfile, *argv]
    exe = argv[0] if "/" in argv[0] else shutil.which(argv[0])
    LOG.seek(0)
    LOG.truncate()
    actions = [
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_DUP2, LOG.fileno(), 2),
    ]
    t0 = time.perf_counter()
    pid = os.posix_spawn(exe, argv, env if env is not None else os.environ, file_actions=actions)
    _, status, _ = os.wait4(pid, 0)
    t1 = time.perf_counter()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        LOG.seek(0)
        die(f"{' '.join(argv)} exited with {code}:\n{LOG.read()[-3000:]}")
    peak = None
    if tfile:
        with open(tfile) as f:
            peak = int(f.read().split()[-1])
    return t1 - t0, peak


def rmtree(p):
    if os.path.lexists(p):
        shutil.rmtree(p)


def listing(top):
    """A hash of a tree's names, types, modes, link texts and file contents (scandir: one
    readlink per link, one open per file, no stat of links)."""
    h = hashlib.sha256()

    def walk(d, rel):
        for e in sorted(os.scandir(d), key=lambda e: e.name):
            r = f"{rel}{e.name}"
            if e.is_symlink():
                h.update(f"L {r} {os.readlink(e.path)}\n".encode())
            elif e.is_dir(follow_symlinks=False):
                h.update(f"D {r} {e.stat(follow_symlinks=False).st_mode:o}\n".encode())
                walk(e.path, r + "/")
            else:
                with open(e.path, "rb") as f:
                    h.update(f"F {r} {e.stat(follow_symlinks=False).st_mode:o} ".encode()
                             + hashlib.sha256(f.read()).digest())

    walk(top, "")
    return h.hexdigest()


def flip_to(root, text):
    tmp = os.path.join(root, "etc/.bench-flip")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(text, tmp)
    os.rename(tmp, os.path.join(root, "etc/static"))


def write_list(path, pairs):
    with open(path, "w") as f:
        for p, t in pairs:
            f.write(f"{p}\t{t}\n")


class Series:
    """Repeats one iteration (a dict of name -> (seconds, rss)) at least min_runs times and
    until the budget is spent, at most max_runs times. One extra iteration runs in RSS mode
    first (untimed) for n <= 10,000; for larger n the first timed iteration is the RSS one
    (/usr/bin/time adds about a millisecond to runs of hundreds of milliseconds)."""

    def __init__(self, n):
        self.n = n

    def run(self, iteration):
        global RSS_MODE
        rss = {}
        samples = {}

        def once(timed):
            global RSS_MODE
            RSS_MODE = not rss
            try:
                res = iteration()
            finally:
                RSS_MODE = False
            for k, (t, peak) in res.items():
                if peak is not None:
                    rss[k] = peak
                if timed:
                    samples.setdefault(k, []).append(t)

        if self.n <= 10_000:
            once(False)
        start = time.perf_counter()
        runs = 0
        while runs < ARGS.min_runs or (
            time.perf_counter() - start < ARGS.budget and runs < ARGS.max_runs
        ):
            once(True)
            runs += 1
        return runs, {k: [(t, rss.get(k, 0)) for t in v] for k, v in samples.items()}


def med(samples, k):
    if k not in samples:
        return None
    return statistics.median(s[0] for s in samples[k])


def mn(samples, k):
    return min(s[0] for s in samples[k])


def rss(samples, k):
    return max(s[1] for s in samples[k])


def fmt_t(s):
    if s is None:
        return "—"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 0.01:
        return f"{s * 1e3:.0f} ms"
    return f"{s * 1e3:.1f} ms"


def fmt_mb(kb):
    return f"{kb / 1024:.1f} MB"


ROWS = []


ROW_CLOCK = [None]


def row(**kw):
    ROWS.append(kw)
    now = time.perf_counter()
    took = "" if ROW_CLOCK[0] is None else f" [{now - ROW_CLOCK[0]:.0f} s]"
    ROW_CLOCK[0] = now
    t = kw.get("median")
    print(
        f"  {kw['row']} n={kw['n']}: median {fmt_t(t)} min {fmt_t(kw.get('min'))}"
        f" A {fmt_t(kw.get('fa'))} B {fmt_t(kw.get('fb'))} {kw.get('status', '')}{took}",
        file=sys.stderr,
        flush=True,
    )


def status(ok):
    return "**met**" if ok else "**MISSED**"


def count_execs(root, gen, bins):
    """Runs one switch under strace -f; returns the programs it executed (besides itself)."""
    if not shutil.which("strace"):
        return None
    out = os.path.join(ARGS.scratch, "strace.txt")
    # --seccomp-bpf: only execve stops the tracee, so tmpfiles' 100,000 lines run at speed.
    spawn(["strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=execve", "-o", out,
           bins["etcflip"], "switch", gen, "--root", root])
    progs = []
    with open(out) as f:
        for line in f:
            if "execve(" in line and line.rstrip().endswith("= 0"):
                progs.append(line.split('execve("', 1)[1].split('"', 1)[0])
    os.unlink(out)
    return [os.path.basename(p) for p in progs[1:]]


def bench_size(n, bins):
    S = os.path.join(ARGS.scratch, f"n{n}")
    R = os.path.join(S, "root")
    os.makedirs(os.path.join(R, "gens"))
    # <root>/<host path of root> -> / : host-absolute store paths resolve inside the root too
    # (tests/harness.rs does the same).
    inner = R + R
    os.makedirs(os.path.dirname(inner), exist_ok=True)
    os.symlink("/", inner)
    t0 = time.perf_counter()
    info = json.loads(subprocess.check_output(
        [sys.executable, os.path.join(ARGS.here, "make_spec.py"), "--entries", str(n),
         "--store", os.path.join(R, "store"), "--out", S]))
    gens = {}
    for name in ("base", "chg", "addrm"):
        gens[name] = os.path.join(R, "gens", name)
        spawn([bins["etcflip-gen"], "build", "--spec", os.path.join(S, f"spec-{name}.json"),
               "--out", gens[name]])
    print(f"n={n}: spec + store + 3 generations in {time.perf_counter() - t0:.1f} s: {info}",
          file=sys.stderr, flush=True)
    ROW_CLOCK[0] = time.perf_counter()
    man = {k: json.load(open(os.path.join(g, "manifest.json"))) for k, g in gens.items()}
    overlay = man["base"]["overlay"]
    ov_rel = overlay.lstrip("/")

    def links(m):  # (path in root, overlay link text) of every symlink entry
        return [(f"etc/{e['target']}", f"{overlay}/{e['target']}")
                for e in m["entries"] if e["kind"] == "symlink"]

    def files(m):  # every non-directory entry (N of them)
        return [(f"etc/{e['target']}", f"{overlay}/{e['target']}")
                for e in m["entries"] if e["kind"] != "dir"]

    L = {}
    write_list(L.setdefault("all", os.path.join(S, "all.list")), files(man["base"]))
    write_list(L.setdefault("check", os.path.join(S, "check.list")), links(man["base"]))
    write_list(L.setdefault("payload", os.path.join(S, "payload.list")),
               [(f"etc/{e['target']}", e.get("source") or "/text")
                for e in man["base"]["entries"] if e["kind"] != "dir"])
    base_t = {e["target"]: e for e in man["base"]["entries"]}
    addrm_t = {e["target"]: e for e in man["addrm"]["entries"]}
    added = sorted(t for t in addrm_t if t not in base_t)
    removed = sorted(t for t in base_t if t not in addrm_t)
    assert all(addrm_t[t]["kind"] in ("symlink", "copy") for t in added)
    added_targets = set(added)
    kept_links = [(p, t) for p, t in links(man["addrm"]) if p[4:] not in added_targets]
    write_list(L.setdefault("keep", os.path.join(S, "keep.list")), kept_links)
    write_list(L.setdefault("add", os.path.join(S, "add.list")),
               [(f"etc/{t}", f"{overlay}/{t}") for t in added])
    write_list(L.setdefault("rm", os.path.join(S, "rm.list")),
               [(f"etc/{t}", "") for t in removed])
    # tmpfiles-alone floor of the add/remove switch: the generation's own lines for the added
    # targets (only links: added copies are written by the applier, not by tmpfiles), and an
    # `r` line per removed target.
    added_set = {f"/etc/{t}" for t in added}
    add_conf = os.path.join(S, "add.conf")
    rm_conf = os.path.join(S, "rm.conf")
    with open(os.path.join(gens["addrm"], "tmpfiles.d/etcflip.conf")) as f, open(add_conf, "w") as o:
        for line in f:
            if line.startswith("L ") and line.split('"')[1] in added_set:
                o.write(line)
    with open(rm_conf, "w") as o:
        for t in removed:
            o.write(f'r "/etc/{t}"\n')
    n_add_lines = sum(1 for _ in open(add_conf))

    ef = bins["etcflip"]
    tmpfiles = bins["tmpfiles"]
    floor = bins["floor"]
    sw = lambda g: [ef, "switch", gens[g], "--root", R]  # noqa: E731
    fl = lambda g: (ov_rel, f"/gens/{g}/etc")  # noqa: E731
    base_conf = os.path.join(gens["base"], "tmpfiles.d/etcflip.conf")

    # ---- row 1: the generator ------------------------------------------------------------
    out = os.path.join(S, "gen-out")
    fdir = os.path.join(S, "floor-payload")

    def it_gen():
        rmtree(out)
        m = spawn([bins["etcflip-gen"], "build", "--spec", os.path.join(S, "spec-base.json"),
                   "--out", out])
        rmtree(fdir)
        os.mkdir(fdir)
        fb = spawn([floor, fdir, "--create", L["payload"]])
        return {"m": m, "fb": fb}

    runs, s = Series(n).run(it_gen)
    rmtree(out)
    rmtree(fdir)
    ok = None
    if n == 100_000:
        ok = med(s, "m") < 5 and rss(s, "m") < 200 * 1024
    row(row="1 generator `etcflip-gen build`", n=n, runs=runs, median=med(s, "m"), min=mn(s, "m"),
        fb=med(s, "fb"), rss=rss(s, "m"),
        target="< 5 s and < 200 MB" if n == 100_000 else "",
        status="" if ok is None else status(ok))

    # ---- row 2: switch from an empty root ---------------------------------------------------
    E = os.path.join(S, "empty-root")
    F = os.path.join(S, "floor-root")
    etc = os.path.join(R, "etc")

    def it_empty():
        rmtree(etc)
        m = spawn(sw("base"))
        rmtree(E)
        os.mkdir(E)
        fa = spawn([tmpfiles, "--create", f"--root={E}", base_conf])
        rmtree(F)
        os.mkdir(F)
        fb = spawn([floor, F, "--create", L["all"], "--flip", *fl("base")])
        return {"m": m, "fa": fa, "fb": fb}

    top_before = sorted(set(os.listdir(R)) | {"etc"})
    runs, s = Series(n).run(it_empty)
    if sorted(os.listdir(R)) != top_before:
        die(f"the switch wrote outside <root>/etc: {sorted(os.listdir(R))}")
    rmtree(E)
    rmtree(F)
    ratio = med(s, "m") / med(s, "fa")
    targets, oks = [], []
    if n == 10_000:
        targets.append("≤ 1.25× A")
        oks.append(ratio <= 1.25)
        targets.append("RSS < 30 MB")
        oks.append(rss(s, "m") < 30 * 1024)
    row(row="2 switch, empty root → gen", n=n, runs=runs, median=med(s, "m"), min=mn(s, "m"),
        fa=med(s, "fa"), fb=med(s, "fb"), rss=rss(s, "m"), target=", ".join(targets),
        status=" / ".join(status(o) for o in oks))
    base_listing = listing(etc)
    execs = {"empty → gen": None}

    # ---- row 3: no-op re-switch -------------------------------------------------------------
    def it_noop():
        m = spawn(sw("base"))
        fb = spawn([floor, R, "--check", L["check"]])
        res = {"m": m, "fb": fb}
        # tmpfiles re-run of the whole (unchanged) snippet on the populated root: what a naive
        # "just run tmpfiles --create again" activation costs. It changes nothing. Skipped
        # above 10,000 entries: it takes ~2 s per run at 10,000 already.
        if n <= 10_000:
            res["fa"] = spawn([tmpfiles, "--create", f"--root={R}", base_conf])
        return res

    runs, s = Series(n).run(it_noop)
    if listing(etc) != base_listing:
        die("the no-op re-switch (or the tmpfiles floor) changed the root")
    noop_fa = s.get("fa")
    execs["no-op"] = count_execs(R, gens["base"], bins)
    if listing(etc) != base_listing:
        die("the no-op re-switch under strace changed the root")
    targets, oks = [], []
    ratio = med(s, "m") / med(s, "fb")
    if n == 10_000:
        targets.append("≤ 3× B")
        oks.append(ratio <= 3)
    if execs["no-op"] is not None:
        targets.append("no tmpfiles exec")
        oks.append(not any("tmpfiles" in p for p in execs["no-op"]))
    row(row="3 no-op re-switch (same gen)", n=n, runs=runs, median=med(s, "m"), min=mn(s, "m"),
        fa=med(s, "fa"), fb=med(s, "fb"), rss=rss(s, "m"), target=", ".join(targets),
        status=" / ".join(status(o) for o in oks),
        note=f"execs under strace -f besides etcflip: {len(execs['no-op'])}"
        if execs["no-op"] is not None else "strace missing")

    # ---- row 4a: 10% of entries get a new source ---------------------------------------------
    def it_chg():
        m = spawn(sw("chg"))
        spawn(sw("base"))  # back to the starting state, untimed
        fb = spawn([floor, R, "--check", L["check"], "--flip", *fl("chg")])
        flip_to(R, f"/gens/base/etc")
        return {"m": m, "fb": fb}

    runs, s = Series(n).run(it_chg)
    if listing(etc) != base_listing:
        die("row 4a did not get back to the starting state")
    if noop_fa:
        s["fa"] = noop_fa
    execs["10% new sources"] = count_execs(R, gens["chg"], bins)
    spawn(sw("base"))
    tgt = {1000: 0.007, 10_000: 0.025}.get(n)
    row(row="4a switch, 10% of entries new source", n=n, runs=runs, median=med(s, "m"),
        min=mn(s, "m"), fa=med(s, "fa"), fb=med(s, "fb"), rss=rss(s, "m"),
        target=f"< {fmt_t(tgt)}" if tgt else "",
        status=status(med(s, "m") < tgt) if tgt else "",
        note=f"{info['changed']} entries changed")

    # ---- row 4b: 5% removed + 5% added ------------------------------------------------------
    assert all(base_t[t]["kind"] == "symlink" for t in removed)

    def restore_links():  # undoes a floor's add/remove (untimed)
        for t in added:
            p = os.path.join(R, "etc", t)
            if os.path.lexists(p):
                os.unlink(p)
        for t in removed:
            p = os.path.join(R, "etc", t)
            if not os.path.lexists(p):
                os.symlink(f"{overlay}/{t}", p)

    def it_addrm():
        m = spawn(sw("addrm"))
        spawn(sw("base"))  # back, untimed
        t1, r1 = spawn([tmpfiles, "--create", f"--root={R}", add_conf])
        t2, r2 = spawn([tmpfiles, "--remove", f"--root={R}", rm_conf])
        r = None if r1 is None else max(r1, r2)
        restore_links()
        fb = spawn([floor, R, "--check", L["keep"], "--create", L["add"], "--flip", *fl("addrm"),
                    "--remove", L["rm"]])
        restore_links()
        flip_to(R, "/gens/base/etc")
        return {"m": m, "fa": (t1 + t2, r), "fb": fb}

    runs, s = Series(n).run(it_addrm)
    if listing(etc) != base_listing:
        die("row 4b did not get back to the starting state")
    execs["5% added + 5% removed"] = count_execs(R, gens["addrm"], bins)
    spawn(sw("base"))
    row(row="4b switch, 5% removed + 5% added", n=n, runs=runs, median=med(s, "m"),
        min=mn(s, "m"), fa=med(s, "fa"), fb=med(s, "fb"), rss=rss(s, "m"),
        target=f"(4a's < {fmt_t(tgt)}, for reference)" if tgt else "",
        status=("under" if med(s, "m") < tgt else "over") if tgt else "",
        note=f"{len(removed)} removed, {len(added)} added ({n_add_lines} L lines)")

    # exec counts of one empty-root switch too
    rmtree(etc)
    execs["empty → gen"] = count_execs(R, gens["base"], bins)
    EXECS[n] = execs
    INFO[n] = info
    rmtree(S)


EXECS = {}
INFO = {}
LOAD_START = None


def main():
    global ARGS, LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--tmpfiles", default=shutil.which("systemd-tmpfiles"))
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--here", required=True)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--min-runs", type=int, default=5)
    ap.add_argument("--max-runs", type=int, default=31)
    ap.add_argument("--budget", type=float, default=1.0,
                    help="seconds per cell: repeat until min-runs done and this spent")
    ARGS = ap.parse_args()
    LOG = open(os.path.join(ARGS.scratch, "stderr.log"), "w+")
    bins = {
        "etcflip": os.path.join(ARGS.bin_dir, "etcflip"),
        "etcflip-gen": os.path.join(ARGS.bin_dir, "etcflip-gen"),
        "floor": ARGS.floor,
        "tmpfiles": ARGS.tmpfiles,
    }
    env_tmpfiles = os.environ.get("ETCFLIP_TMPFILES")
    if env_tmpfiles:
        bins["tmpfiles"] = env_tmpfiles
    global LOAD_START
    LOAD_START = open("/proc/loadavg").read().split()[:3]
    started = time.perf_counter()
    for n in [int(x) for x in ARGS.sizes.split(",")]:
        bench_size(n, bins)
    elapsed = time.perf_counter() - started
    report(bins, elapsed)


def sh(cmd):
    try:
        return subprocess.check_output(cmd, shell=True, text=True, stderr=subprocess.DEVNULL).strip()
    except subprocess.CalledProcessError:
        return "?"


def report(bins, elapsed):
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip()
    print("# etcflip benchmark\n")
    print(f"- machine: {sh('nproc')} CPUs ({cpu}), kernel {sh('uname -r')}, "
          f"{sh('uname -m')}")
    print(f"- systemd-tmpfiles: `{bins['tmpfiles']}` — {sh(bins['tmpfiles'] + ' --version | head -1')}")
    print(f"- etcflip: `{bins['etcflip']}` (release), commit {sh('git -C ' + ARGS.here + ' rev-parse --short HEAD')}"
          f"{' + uncommitted changes' if sh('git -C ' + ARGS.here + ' status --porcelain') else ''}, "
          f"{sh('rustc --version')}")
    print(f"- scratch on {sh('stat -f -c %T ' + ARGS.scratch)} ({ARGS.scratch}); "
          f"total benchmark time {elapsed:.0f} s")
    load_end = open("/proc/loadavg").read().split()[:3]
    print(f"- load average (1/5/15 min) at start {' '.join(LOAD_START)}, at end {' '.join(load_end)} "
          f"— other work on the machine inflates every time, floors included")
    for n, info in INFO.items():
        print(f"- {n} entries: {info['symlink']} symlinks, {info['copy']} copies (0644), "
              f"{info['text']} text; ~10 entries per leaf dir, 2–3 levels deep")
    print()
    print("Times: median and min over `runs` runs of one process each (perf_counter around "
          "posix_spawn → wait4, stdout to /dev/null). Ratios are median / median, the floor "
          "measured in the same run, interleaved with the measured command.\n")
    print("| row | n | runs | median | min | floor A | ×A | floor B | ×B | peak RSS | target | result |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in ROWS:
        fa, fb = r.get("fa"), r.get("fb")
        ra = f"{r['median'] / fa:.2f}×" if fa else "—"
        rb = f"{r['median'] / fb:.1f}×" if fb else "—"
        print(f"| {r['row']} | {r['n']:,} | {r['runs']} | {fmt_t(r['median'])} | {fmt_t(r['min'])} "
              f"| {fmt_t(fa)} | {ra} | {fmt_t(fb)} | {rb} | {fmt_mb(r['rss'])} "
              f"| {r.get('target', '')} | {r.get('status', '')} |")
    print()
    print("""Floors (each a separate process, on a root in the same starting state):

- **1** — B: `floor --create`: the generator's payload alone, i.e. N symlinks (+ their directories) into an empty directory; no JSON, no hashing, no manifest.
- **2** — A: `systemd-tmpfiles --create --root=EMPTY GEN/tmpfiles.d/etcflip.conf` (the generation's own snippet) into an empty root. B: `floor --create --flip`: N symlinks (copies and texts counted as symlinks, parents made on ENOENT) + 1 symlink + 1 rename.
- **3** — B: `floor --check`: lstat + readlink + compare of every symlink entry. A (informative, n ≤ 10,000 only): `systemd-tmpfiles --create` of the whole unchanged snippet again on the populated root (the naive re-activation; it changes nothing).
- **4a** — *10% changed*: 10 of every 100 entries (index i with i mod 10 = ⌊i/100⌋ mod 10) get a new store file with new content at the same target, same kind: ~9.9% symlinks whose source changes, ~0.1% copies whose content changes (the applier rewrites those), text entries in proportion. The /etc links themselves do not change (they point into the overlay), so tmpfiles has nothing to do. A: the same measurement as row 3's A (the snippets of both generations are byte-identical). B: `floor --check --flip`: row 3's floor + 1 rename.
- **4b** — *10% added/removed*: every entry with index ≡ 7 (mod 20) removed (5%) and as many new targets added in existing directories (5%). A: `systemd-tmpfiles --create` on the generation's L lines of the added targets + `systemd-tmpfiles --remove` on one `r` line per removed target (two processes, times summed). B: `floor --check (kept) --create (added) --flip --remove (removed)`.
- Every switch run starts from the right root: empty (`rm -rf ROOT/etc`) for row 2; switched to the base generation for rows 3–4 (after each timed switch the root is switched back untimed, and floors are undone untimed); a content hash of ROOT/etc is compared with the base state after each row.
- Peak RSS: `/usr/bin/time -f '%e %M'` on one extra run of the same command (an untimed warm-up for n ≤ 10,000, the first timed run for 100,000); %M includes reaped children such as systemd-tmpfiles.""")
    print()
    print("Programs executed by one switch, besides etcflip itself (`strace -f -e trace=execve`):\n")
    print("| n | " + " | ".join(next(iter(EXECS.values())).keys()) + " |")
    print("|---:|" + "---|" * len(next(iter(EXECS.values()))))
    for n, ex in EXECS.items():
        cells = []
        for v in ex.values():
            if v is None:
                cells.append("(no strace)")
            elif not v:
                cells.append("none")
            else:
                cells.append(", ".join(f"{p} ×{v.count(p)}" for p in sorted(set(v))))
        print(f"| {n:,} | " + " | ".join(cells) + " |")
    notes = [r for r in ROWS if r.get("note")]
    if notes:
        print()
        for r in notes:
            print(f"- {r['row']}, n={r['n']:,}: {r['note']}")


if __name__ == "__main__":
    main()
