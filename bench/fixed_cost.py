#!/usr/bin/python3.11
"""fixed_cost.py OUTDIR [--quick] - issue 15: is any program slower resident than normal, and
what does the takeover cost?

For a trivial dynamic C program (int main(){return 0;}, built here), `git --version`,
`perl </dev/null` and `clang-format --version`:
  - the ratio resident/normal of wall time, from alternating posix_spawn loops (ROUNDS rounds
    of RUNS spawns per mode, the mode that goes first alternating), median of the per-round ratios;
  - the takeover as the hook measures it (RESIDENT_DEBUG=3, >= 200 restores): p25 of the total
    (la_version entry to the final jump) and of each stage (start = validation and setup up to
    the routine, unmap, vdso, map, patch, thread, close).
Writes OUTDIR/fixed_cost.json and .md. Stdlib only.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile

import benchlib

STAGES = ["start", "unmap", "vdso", "map", "patch", "thread", "close"]
LINE = re.compile(r"^resident: restored \S+ \(takeover (\d+) \[([\d/]+) us: [a-z/]+\] us\)", re.M)


def trivial_program(workdir):
    src = os.path.join(workdir, "trivial.c")
    exe = os.path.join(workdir, "trivial")
    with open(src, "w") as f:
        f.write("int main(void) { return 0; }\n")
    subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
    return exe


def programs(workdir):
    return [
        ("trivial dynamic C program", [trivial_program(workdir)]),
        ("git --version", ["/usr/bin/git", "--version"]),
        ("perl </dev/null", ["/usr/bin/perl"]),
        ("clang-format --version", ["/usr/bin/clang-format", "--version"]),
    ]


def p25(values):
    return statistics.quantiles(values, n=4)[0] if len(values) >= 4 else min(values)


def takeover(reg, argv, runs):
    """p25 of the total and of each stage's own duration, in microseconds."""
    totals, stages = [], {s: [] for s in STAGES}
    env = dict(benchlib.hook_env(reg.env), RESIDENT_DEBUG="3")
    for _ in range(runs):
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        m = LINE.search(r.stderr)
        if not m:
            sys.exit(f"fixed_cost: {' '.join(argv)} was not restored: {r.stderr.strip()}")
        totals.append(int(m.group(1)))
        marks = [int(x) for x in m.group(2).split("/")]
        for i, s in enumerate(STAGES):
            stages[s].append(marks[i] - (marks[i - 1] if i else 0))
    return {"total": p25(totals), **{s: p25(v) for s, v in stages.items()}}


def ratio(reg, argv, rounds, runs):
    """Median over ROUNDS of resident/normal wall time of RUNS spawns each, the first mode alternating."""
    modes = {"normal": reg.env, "resident": benchlib.hook_env(reg.env)}
    ratios, normal, resident = [], [], []
    for rnd in range(rounds):
        order = ["normal", "resident"] if rnd % 2 == 0 else ["resident", "normal"]
        t = {m: benchlib.spawn_seconds(argv, modes[m], runs, "fixed_cost") for m in order}
        ratios.append(t["resident"] / t["normal"])
        normal.append(t["normal"] * 1000 / runs)
        resident.append(t["resident"] * 1000 / runs)
    return statistics.median(ratios), statistics.median(normal), statistics.median(resident)


def main():
    p = benchlib.standard_args(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--takeovers", type=int, default=200)
    args = p.parse_args()
    if args.quick:
        args.rounds, args.runs, args.takeovers = 4, 10, 20
    benchlib.require_product()
    rows = []
    with tempfile.TemporaryDirectory(prefix="resident-fixed-") as work, benchlib.TempRegistry() as reg:
        for name, argv in programs(work):
            _, added = reg.add(argv[0], measure=True)
            add_ratio = re.search(r"to main in ([0-9.]+) of the time", added)
            ok, line = reg.check_restored(argv)
            if not ok:
                sys.exit(f"fixed_cost: {name} is not restored: {line}")
            r, n_ms, r_ms = ratio(reg, argv, args.rounds, args.runs)
            t = takeover(reg, argv, args.takeovers)
            rows.append({"name": name, "normal_ms": n_ms, "resident_ms": r_ms, "ratio": r, "add_ratio": float(add_ratio.group(1)) if add_ratio else None, **{"takeover_" + k: v for k, v in t.items()}})
            print(f"{name:<28} normal {n_ms:6.3f} ms  resident {r_ms:6.3f} ms  ratio {r:.3f} (add: {add_ratio.group(1) if add_ratio else '-'})  takeover p25 {t['total']:.0f} us  "
                  + " ".join(f"{s} {t[s]:.0f}" for s in STAGES), flush=True)
    cols = [("program", "name", "{}"), ("normal ms", "normal_ms", "{:.3f}"), ("resident ms", "resident_ms", "{:.3f}"),
            ("ratio", "ratio", "{:.3f}"), ("add's ratio", "add_ratio", "{}"), ("takeover µs (p25)", "takeover_total", "{:.0f}")] + \
           [(s + " µs", "takeover_" + s, "{:.0f}") for s in STAGES]
    md = (f"{args.rounds} rounds of {args.runs} spawns per mode (ratio: median of the rounds); takeover: p25 of "
          f"{args.takeovers} restores with RESIDENT_DEBUG=3, each stage's own time\n\n" + benchlib.rows_table(rows, cols))
    benchlib.write_results(args.outdir, "fixed_cost", "Fixed cost: ratios and the takeover by stage (issue 15)", rows, md)


if __name__ == "__main__":
    main()
