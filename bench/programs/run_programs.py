"""run_programs.py: the driver behind bench/programs.sh (which validates the arguments and
installs what is missing). Runs every workload under every available allocator (glibc, then
LD_PRELOAD of cgslab, tcmalloc, jemalloc, mimalloc), --reps times each, interleaved by repetition;
checks each workload's normalized output is identical under every allocator; writes a markdown
table (median wall time and peak RSS, as ratios to glibc) and a hand-written SVG plot.
Wall time and peak RSS come from one fresh child per measurement (wait4 rusage of that child)."""
import hashlib
import os
import re
import statistics
import subprocess
import sys
import time


TIME = "/usr/bin/time"


def measure_rusage(cmd, env, timeout, stdin_path=None):
    """Fork/exec with os.wait4. Peak RSS: through /usr/bin/time -f %M when it exists, since a
    forked child's ru_maxrss starts at this (Python) process's RSS, which exec does not reset;
    else the child's own ru_maxrss (with that floor)."""
    rss_file = None
    if os.path.exists(TIME):
        rss_file = "/tmp/programs-rss-%d" % os.getpid()
        cmd = [TIME, "-f", "%M", "-o", rss_file] + cmd
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            if stdin_path:
                fd = os.open(stdin_path, os.O_RDONLY)
            else:
                fd = os.open(os.devnull, os.O_RDONLY)
            os.dup2(fd, 0)
            os.dup2(w_out, 1)
            os.dup2(w_err, 2)
            os.closerange(3, 1024)
            os.execvpe(cmd[0], cmd, env)
        finally:
            os._exit(127)
    os.close(w_out)
    os.close(w_err)
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(r_out, selectors.EVENT_READ, "out")
    sel.register(r_err, selectors.EVENT_READ, "err")
    bufs = {"out": [], "err": []}
    deadline = t0 + timeout
    open_fds = 2
    killed = False
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, 9)
            killed = True
            break
        for key, _ in sel.select(timeout=min(left, 1.0)):
            data = os.read(key.fd, 65536)
            if not data:
                sel.unregister(key.fd)
                open_fds -= 1
            else:
                bufs[key.data].append(data)
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - t0
    os.close(r_out)
    os.close(r_err)
    rc = -1 if killed else (os.waitstatus_to_exitcode(status))
    err = b"".join(bufs["err"]) + (b"\ntimeout after %ds" % timeout if killed else b"")
    rss = ru.ru_maxrss
    if rss_file:
        try:
            with open(rss_file) as f:
                rss = int(f.read().split()[-1])
            os.unlink(rss_file)
        except (OSError, ValueError, IndexError):
            pass
    return wall, rss, rc, b"".join(bufs["out"]), err


def main():
    args = dict(a.split("=", 1) for a in sys.argv[1:])
    root, build, out_dir = args["root"], args["build"], args["out"]
    reps, timeout = int(args["reps"]), int(args["timeout"])
    only = set(args.get("only", "").split(",")) - {""}
    libdir = "/usr/lib/x86_64-linux-gnu"
    allocs = [("glibc", None),
              ("cgslab", os.path.join(build, "malloc/libcgslab_malloc.so")),
              ("tcmalloc", os.path.join(libdir, "libtcmalloc_minimal.so.4")),
              ("jemalloc", os.path.join(libdir, "libjemalloc.so.2")),
              ("mimalloc", os.path.join(libdir, "libmimalloc.so.2"))]
    avail = []
    for name, lib in allocs:
        if lib and not os.path.exists(lib):
            print("skip allocator %s: %s not found" % (name, lib), file=sys.stderr)
            continue
        avail.append((name, lib))
    os.makedirs(out_dir, exist_ok=True)
    gtest = os.path.join(build, "allocator/test/threads_test")
    progs = os.path.join(build, "bench/programs")
    obj = os.path.join(out_dir, "clang-out.o")
    workloads = [
        ("gtest threads_test", [gtest, "--gtest_brief=1", "--gtest_repeat=5"], None, "gtest"),
        ("python alloc_heavy", ["python3", os.path.join(root, "bench/programs/alloc_heavy.py"), "2"], None, None),
        ("clang++ -O2 -c", ["clang++", "-std=c++20", "-O2", "-c", "-I" + os.path.join(root, "allocator/include"),
                            "-I" + os.path.join(root, "allocator/src"),
                            os.path.join(root, "allocator/src/memcg_cache.cc"), "-o", obj], None, "obj"),
        ("sqlite3", ["sqlite3", ":memory:"], os.path.join(root, "bench/programs/sqlite.sql"), None),
        ("larson", [os.path.join(progs, "larson"), "2", "4", "2000", "1500000"], None, None),
        ("xmalloc", [os.path.join(progs, "xmalloc"), "2", "2000", "1000"], None, None),
    ]
    runnable = []
    for w in workloads:
        if only and not any(o in w[0] for o in only):
            continue
        exe = w[1][0]
        if not (os.path.exists(exe) or subprocess.run(["sh", "-c", "command -v " + exe],
                                                      stdout=subprocess.DEVNULL).returncode == 0):
            print("skip workload %s: %s not found" % (w[0], exe), file=sys.stderr)
            continue
        runnable.append(w)
    results = {}  # (workload, alloc) -> [(wall, rss)]
    digests = {}
    failed = []
    for rep in range(reps):
        for wname, cmd, stdin_path, norm in runnable:
            for aname, lib in avail:
                env = dict(os.environ)
                env.pop("LD_PRELOAD", None)
                if lib:
                    env["LD_PRELOAD"] = lib
                wall, rss, rc, out, err = measure_rusage(cmd, env, timeout, stdin_path)
                if norm == "gtest":
                    out = re.sub(rb"\(\d+ ms( total)?\)", b"(N ms)", out)
                if norm == "obj":
                    out += open(obj, "rb").read() if os.path.exists(obj) else b"no object"
                    if os.path.exists(obj):
                        os.unlink(obj)
                dg = hashlib.sha256(out).hexdigest()
                if rc != 0:
                    failed.append("%s under %s: exit %d: %s" % (wname, aname, rc, err.decode(errors="replace")[-300:]))
                    continue
                digests.setdefault(wname, {}).setdefault(dg, []).append(aname)
                results.setdefault((wname, aname), []).append((wall, rss))
                print("rep %d %-20s %-9s %7.3f s %8d KiB" % (rep + 1, wname, aname, wall, rss), file=sys.stderr)
    for wname, d in digests.items():
        if len(d) > 1:
            failed.append("%s: output differs between allocators: %s" % (wname, "; ".join(
                "%s -> %s" % (",".join(sorted(set(v))), k[:12]) for k, v in d.items())))
    names = [a for a, _ in avail]
    lines = ["| workload | glibc time (s) | glibc peak RSS (MiB) | " +
             " | ".join("%s time / RSS" % a for a in names[1:]) + " |",
             "|---|---:|---:|" + "---:|" * (len(names) - 1)]
    table = {}
    for wname, *_ in runnable:
        base = results.get((wname, "glibc"))
        if not base:
            continue
        bt = statistics.median(r[0] for r in base)
        br = statistics.median(r[1] for r in base)
        cells = []
        for a in names[1:]:
            rs = results.get((wname, a))
            if not rs:
                cells.append("failed")
                continue
            t = statistics.median(r[0] for r in rs) / bt
            m = statistics.median(r[1] for r in rs) / br
            table[(wname, a)] = (t, m)
            cells.append("%.2f / %.2f" % (t, m))
        lines.append("| %s | %.3f | %.1f | %s |" % (wname, bt, br / 1024, " | ".join(cells)))
    md = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "programs.md"), "w") as f:
        f.write("Median of %d runs; time and peak RSS as ratios to glibc (lower is better).\n\n" % reps)
        f.write(md)
    write_svg(os.path.join(out_dir, "programs.svg"), [w[0] for w in runnable], names[1:], table)
    print(md)
    print("wrote %s and %s" % (os.path.join(out_dir, "programs.md"), os.path.join(out_dir, "programs.svg")))
    if failed:
        print("FAILURES:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


def write_svg(path, workloads, allocs, table):
    colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"]
    W, panel_h, top, left = 900, 260, 40, 60
    groups = max(1, len(workloads))
    gw = (W - left - 20) / groups
    bw = gw * 0.8 / max(1, len(allocs))
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">'
           % (W, 2 * panel_h + 3 * top + 40)]
    for pi, (title, idx) in enumerate((("wall time / glibc", 0), ("peak RSS / glibc", 1))):
        y0 = top + pi * (panel_h + top)
        vals = [table[k][idx] for k in table] or [1]
        vmax = max(2.0, max(vals) * 1.1)
        out.append('<text x="%d" y="%d" font-size="14">%s (lower is better)</text>' % (left, y0 - 10, title))
        for tick in [0, 0.5, 1, 1.5, 2, 3, 4, 6, 8]:
            if tick > vmax:
                break
            y = y0 + panel_h - tick / vmax * panel_h
            out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s"/>'
                       % (left, W - 20, y, y, "#444" if tick == 1 else "#ddd"))
            out.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (left - 4, y + 4, tick))
        for gi, w in enumerate(workloads):
            gx = left + gi * gw + gw * 0.1
            for ai, a in enumerate(allocs):
                if (w, a) not in table:
                    continue
                v = table[(w, a)][idx]
                h = min(v, vmax) / vmax * panel_h
                out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s %.2f</title></rect>'
                           % (gx + ai * bw, y0 + panel_h - h, bw - 1, h, colors[ai % len(colors)], w, a, v))
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (gx + gw * 0.4, y0 + panel_h + 14, w))
    ly = 2 * panel_h + 3 * top + 20
    for ai, a in enumerate(allocs):
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>'
                   % (left + ai * 120, ly, colors[ai % len(colors)], left + ai * 120 + 16, ly + 10, a))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


sys.exit(main())
