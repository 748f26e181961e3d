#!/usr/bin/python3.11
"""memory.py OUTDIR - memory of 10 concurrent instances, resident vs normal.

Starts N instances of a program at once (perl -e 'sleep 60'; clang-format reading a stdin that
stays open), waits until every one of them is blocked in its syscall (clock_nanosleep, read), and
sums Pss, Rss and Private_Dirty from /proc/PID/smaps_rollup. Image pages are mapped copy-on-write
from one file, so N resident instances must share them: their Pss sum should not exceed that of N
normal instances (whose relocated pages are private copies, one per process). Alternates normal and
resident sets for ROUNDS rounds and reports the median. Writes OUTDIR/memory.{json,md}.
"""
import os
import signal
import statistics
import subprocess
import time

import benchlib

SYS_READ, SYS_CLOCK_NANOSLEEP = 0, 230

# name, argv, the syscall every instance blocks in once it has started, check argv (runs to the end)
PROGRAMS = [
    ("perl -e 'sleep 60'", ["/usr/bin/perl", "-e", "sleep 60"], SYS_CLOCK_NANOSLEEP, ["/usr/bin/perl", "-e", "1"]),
    ("clang-format <open pipe", ["/usr/bin/clang-format"], SYS_READ, ["/usr/bin/clang-format", "--version"]),
]


def blocked_in(pid, nr):
    try:
        with open(f"/proc/{pid}/syscall") as f:
            return f.read().split()[0] == str(nr)
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def rollup(pid):
    """{'Pss': kB, 'Rss': kB, 'Private_Dirty': kB} of one process."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Pss", "Rss", "Private_Dirty"):
                values[key] = int(rest.split()[0])
    return values


def measure_set(argv, nr, env, count, timeout=60.0):
    """Starts COUNT instances, waits until all block in syscall NR, sums their rollups, ends them."""
    procs = [subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(count)]
    try:
        deadline = time.monotonic() + timeout
        while not all(blocked_in(p.pid, nr) for p in procs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"memory: {' '.join(argv)}: instances did not all block in syscall {nr}")
            time.sleep(0.05)
        sums = {"Pss": 0, "Rss": 0, "Private_Dirty": 0}
        for p in procs:
            for k, v in rollup(p.pid).items():
                sums[k] += v
        return sums
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()


def main():
    p = benchlib.standard_args(__doc__.splitlines()[0])
    p.add_argument("--instances", type=int, default=10, help="concurrent instances (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    args = p.parse_args()
    benchlib.require_product()
    rounds = 1 if args.quick else args.rounds
    rows = []
    with benchlib.TempRegistry() as t:
        for _, argv, _, _ in PROGRAMS:
            t.add(argv[0])
        for name, argv, nr, check in PROGRAMS:
            restored, lines = t.check_restored(check)
            if not restored:
                raise SystemExit(f"memory: {name}: the hook did not restore: {lines}")
            modes = {"normal": t.env, "resident": benchlib.hook_env(t.env)}
            samples = {m: [] for m in modes}
            for r in range(rounds):
                for m in (list(modes) if r % 2 == 0 else list(reversed(modes))):
                    samples[m].append(measure_set(argv, nr, modes[m], args.instances))
            for m in modes:
                rows.append({"program": name, "mode": m, "instances": args.instances,
                             **{k + "_kB": statistics.median(s[k] for s in samples[m]) for k in ("Pss", "Rss", "Private_Dirty")}})
            print(f"memory: {name}: " + ", ".join(f"{r['mode']} Pss {r['Pss_kB'] / 1024:.1f} MB" for r in rows[-2:]), flush=True)
    md = benchlib.rows_table(rows, [("program", "program", "`{}`"), ("mode", "mode", "{}"), ("instances", "instances", "{}"),
                                    ("Pss sum kB", "Pss_kB", "{:.0f}"), ("Rss sum kB", "Rss_kB", "{:.0f}"),
                                    ("Private_Dirty sum kB", "Private_Dirty_kB", "{:.0f}")])
    benchlib.write_results(args.outdir, "memory", f"Memory of {args.instances} concurrent instances", rows, md)


if __name__ == "__main__":
    main()
