#!/usr/bin/env python3
"""bugbench_report.py: the table, JSON and survival plot of ci/bugbench.sh from its trials.tsv.

trials.tsv has one line per trial: row, trial, seed, found (0/1, or E for a trial in which
libFuzzer did not fuzz), seconds, kind, crash file. A trial that found nothing is censored at the
cap: it counts as the cap in the median, and its curve never reaches 1. A trial that did not fuzz
counts for nothing: its row says so and is never "clean". Exit status 1 when a base row found
anything (a false alarm) or a trial did not fuzz, 2 on bad input.
"""
import argparse
import json
import math
import os
import re
import statistics
import sys
from datetime import date


def fail(msg):
    print(f"bugbench_report.py: {msg}", file=sys.stderr)
    sys.exit(2)


def read_trials(path):
    rows = {}
    order = []
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        fail(f"cannot read {path}: {e}")
    for n, line in enumerate(lines, 1):
        f = line.split("\t")
        if len(f) != 7 or f[3] not in ("0", "1", "E"):
            fail(f"{path}:{n}: not a trial line (row, trial, seed, found, seconds, kind, crash): {line!r}")
        try:
            t = {"trial": int(f[1]), "seed": int(f[2]), "found": f[3] == "1", "error": f[3] == "E", "seconds": float(f[4]),
                 "kind": f[5], "crash": f[6]}
        except ValueError:
            fail(f"{path}:{n}: bad number in {line!r}")
        if f[0] not in rows:
            rows[f[0]] = []
            order.append(f[0])
        rows[f[0]].append(t)
    return order, rows


def min_size(min_dir, defect):
    """'N ops, T tasks' from cgslab-prog minimize's log, and the ops count alone."""
    log = os.path.join(min_dir, defect + ".log")
    if not os.path.exists(log):
        return None, None
    m = re.search(r"^after:\s*(\d+) ops, (\d+) tasks", open(log).read(), re.M)
    if not m:
        return None, None
    return f"{m.group(1)} ops, {m.group(2)} tasks", int(m.group(1))


def survival_svg(order, rows, cap, path):
    w, h, left, right, top, bottom = 760, 420, 60, 230, 20, 50
    pw, ph = w - left - right, h - top - bottom
    lo = 0.5
    hi = max(cap, 1)

    def x(s):
        s = min(max(s, lo), hi)
        return left + pw * (math.log10(s) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    def y(f):
        return top + ph * (1 - f)

    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
              "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="14" font-size="12">time to first crash: fraction of trials that found the defect (cap {cap} s)</text>']
    for f in (0, 0.25, 0.5, 0.75, 1):
        out.append(f'<line x1="{left}" y1="{y(f):.1f}" x2="{left + pw}" y2="{y(f):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(f) + 4:.1f}" text-anchor="end">{f:g}</text>')
    tick = 1
    while tick <= hi:
        for m in (1, 3):
            s = tick * m
            if lo <= s <= hi:
                out.append(f'<line x1="{x(s):.1f}" y1="{top}" x2="{x(s):.1f}" y2="{top + ph}" stroke="#eee"/>')
                out.append(f'<text x="{x(s):.1f}" y="{top + ph + 14}" text-anchor="middle">{s:g}</text>')
        tick *= 10
    out.append(f'<text x="{left + pw / 2}" y="{h - 10}" text-anchor="middle">seconds (log scale)</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    for i, r in enumerate(r for r in order if not r.startswith("base-")):
        ts = rows[r]
        times = sorted(t["seconds"] for t in ts if t["found"])
        n = len(ts)
        pts = [(x(lo), y(0))]
        for k, s in enumerate(times, 1):
            pts.append((x(s), pts[-1][1]))
            pts.append((x(s), y(k / n)))
        pts.append((x(hi), pts[-1][1]))
        c = colors[i % len(colors)]
        dash = ' stroke-dasharray="5,3"' if r.endswith("fuzz_threads") else ""
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.8"{dash} points="' +
                   " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
        ly = top + 12 + 14 * i
        out.append(f'<line x1="{left + pw + 10}" y1="{ly - 4}" x2="{left + pw + 30}" y2="{ly - 4}" stroke="{c}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{left + pw + 34}" y="{ly}">{r} ({len(times)}/{n})</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tsv", required=True)
    ap.add_argument("--min-dir", required=True)
    ap.add_argument("--trials", type=int, required=True)
    ap.add_argument("--cap", type=float, required=True)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    order, rows = read_trials(a.tsv)
    if not order:
        fail(f"{a.tsv} has no trials")
    # Rows print in a stable order: base first, then as run.
    first = {r: i for i, r in enumerate(order)}
    order.sort(key=lambda r: (not r.startswith("base-"), first[r]))
    table = ["| defect | target | found | median s | max s | crash kind (first trial that found it) | minimized |",
             "|---|---|---|---|---|---|---|"]
    result = {"date": str(date.today()), "trials": a.trials, "cap_seconds": a.cap, "jobs": a.jobs, "rows": []}
    false_alarm = False
    errors = []
    for r in order:
        every = sorted(rows[r], key=lambda t: t["trial"])
        defect, target = r.rsplit("-", 1)
        ts = [t for t in every if not t["error"]]
        errors += [(r, t) for t in every if t["error"]]
        # A row whose trials did not all fuzz is reported as such, never as clean or not found.
        note = f", **{len(every) - len(ts)} did not fuzz**" if len(ts) < len(every) else ""
        found = [t for t in ts if t["found"]]
        censored = [t["seconds"] if t["found"] else a.cap for t in ts] or [a.cap]
        median = statistics.median(censored)
        mx = max(t["seconds"] for t in found) if found else None
        kind = min(found, key=lambda t: t["seconds"])["kind"] if found else "-"
        size, ops = min_size(a.min_dir, defect) if target == "fuzz_lifecycle" else (None, None)
        if defect == "base":
            false_alarm |= bool(found)
            verdict = "**FALSE ALARM**" if found else "clean" if not note else "not judged"
            table.append(f"| base | {target} | {len(found)}/{len(ts)} ({verdict}){note} | - | - | {kind} | - |")
        else:
            med = f"{median:.1f}" if 2 * len(found) > len(ts) else f">{a.cap:g} (cap)"
            table.append(f"| {defect} | {target} | {len(found)}/{len(ts)}{note} | {med} | "
                         f"{'-' if mx is None else f'{mx:.1f}'} | {kind} | {size or '-'} |")
        result["rows"].append({"defect": defect, "target": target, "found": len(found), "trials": len(ts),
                               "did_not_fuzz": len(every) - len(ts),
                               "median_seconds": median if 2 * len(found) > len(ts) else None,
                               "max_seconds": mx, "kind": kind, "minimized_ops": ops,
                               "trial_results": every})
    result["false_alarm"] = false_alarm
    result["trials_that_did_not_fuzz"] = len(errors)
    text = "\n".join(table) + "\n"
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(text)
    with open(os.path.join(a.out, "bugbench.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    survival_svg(order, rows, a.cap, os.path.join(a.out, "survival.svg"))
    print()
    print(text, end="")
    if errors:
        print(f"bugbench: {len(errors)} trials did not fuzz (found = E in {a.tsv}); their rows measure nothing, e.g.:")
        for r, t in errors[:3]:
            print(f"  {r} trial {t['trial']}: {t['kind']}")
    if false_alarm:
        print("bugbench: the base row (no defect) crashed: a false alarm of the harness")
    return 1 if false_alarm or errors else 0


if __name__ == "__main__":
    sys.exit(main())
