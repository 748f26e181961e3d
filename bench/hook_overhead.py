#!/usr/bin/python3.11
"""hook_overhead.py OUTDIR - what the hook costs a program that has NO image.

With shell-init, every dynamically linked exec loads the hook (LD_AUDIT), image or not. Two
measurements of /usr/bin/true (registry empty), each also for the floor: null_audit.c, an audit
module whose la_version returns 0 at once (what LD_AUDIT itself costs, whatever the module does):
 1. wall time per exec from a long loop that alternates blocks without and with LD_AUDIT=hook
    (posix_spawn + waitpid from this process; its own overhead is the same in both modes);
    the difference per exec, in microseconds, is the hook's cost as a user sees it.
 2. ld.so's own clock: LD_DEBUG=statistics "total startup time in dynamic loader" (rdtsc cycles,
    converted with /proc/cpuinfo's cpu MHz), median of many runs, without and with the hook. It
    covers loading and initialising the audit module, not its unload or the page faults after.
Writes OUTDIR/hook_overhead.{json,md}.
"""
import os
import re
import statistics
import subprocess
import tempfile

import benchlib

TRUE = "/usr/bin/true"


def alternating_loop(modes, rounds, block):
    """Wall seconds per exec for each mode, in ROUNDS rounds of one BLOCK per mode, order alternating."""
    total = {m: 0.0 for m in modes}
    for r in range(rounds):
        for m in (list(modes) if r % 2 == 0 else list(reversed(modes))):
            total[m] += benchlib.spawn_seconds([TRUE], modes[m], block, "hook_overhead")
    return {m: t / (rounds * block) for m, t in total.items()}


def startup_cycles(env, runs):
    """Median of ld.so's 'total startup time in dynamic loader' over RUNS runs."""
    cycles = []
    for _ in range(runs):
        r = subprocess.run([TRUE], env=dict(env, LD_DEBUG="statistics"), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        m = re.search(r"total startup time in dynamic loader: (\d+) cycles", r.stderr)
        if not m:
            raise SystemExit(f"hook_overhead: no LD_DEBUG=statistics line:\n{r.stderr}")
        cycles.append(int(m.group(1)))
    return statistics.median(cycles)


def build_null_audit(workdir):
    """null_audit.c as a module, linked as native/Makefile links the hook."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "null_audit.c")
    so = os.path.join(workdir, "null_audit.so")
    subprocess.run(["gcc", "-nostdlib", "-shared", "-fPIC", "-Os", "-Wl,-z,now", "-Wl,-z,noseparate-code", "-Wl,-z,norelro",
                    "-Wl,--hash-style=gnu", "-Wl,--build-id=none", "-o", so, src], check=True)
    return so


def cpu_mhz():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1])
    return None


def main():
    p = benchlib.standard_args(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=40, help="alternating rounds of the loop (default 40)")
    p.add_argument("--block", type=int, default=250, help="execs per mode and round (default 250)")
    p.add_argument("--stat-runs", type=int, default=500, help="LD_DEBUG=statistics runs per mode (default 500)")
    args = p.parse_args()
    benchlib.require_product()
    rounds, block, stat_runs = (4, 50, 30) if args.quick else (args.rounds, args.block, args.stat_runs)
    with benchlib.TempRegistry() as t, tempfile.TemporaryDirectory() as work:
        modes = {"normal": t.env, "hook, no image": benchlib.hook_env(t.env),
                 "null audit module": dict(t.env, LD_AUDIT=build_null_audit(work))}
        per_exec = alternating_loop(modes, rounds, block)
        cycles = {m: startup_cycles(env, stat_runs) for m, env in modes.items()}
    mhz = cpu_mhz()
    rows = [{"mode": m, "us_per_exec": per_exec[m] * 1e6, "ldso_cycles": cycles[m],
             "ldso_us": cycles[m] / mhz if mhz else None} for m in modes]
    delta_wall = (per_exec["hook, no image"] - per_exec["normal"]) * 1e6
    delta_cycles = cycles["hook, no image"] - cycles["normal"]
    floor_wall = (per_exec["null audit module"] - per_exec["normal"]) * 1e6
    data = {"rows": rows, "delta_us_wall": delta_wall, "delta_cycles": delta_cycles, "floor_us_wall": floor_wall, "cpu_mhz": mhz,
            "loop": {"rounds": rounds, "block": block}, "stat_runs": stat_runs}
    md = (benchlib.rows_table(rows, [("/usr/bin/true", "mode", "{}"), ("µs per exec (loop)", "us_per_exec", "{:.1f}"),
                                     ("ld.so startup cycles (median)", "ldso_cycles", "{:.0f}"), ("ld.so startup µs", "ldso_us", "{:.1f}")])
          + f"\n\nThe hook's cost per exec without an image: **{delta_wall:+.1f} µs** wall (loop of {rounds} × {block} "
            f"alternating execs per mode), {delta_cycles:+.0f} cycles in ld.so's own startup clock "
            f"({delta_cycles / mhz if mhz else float('nan'):+.1f} µs at {mhz} MHz, median of {stat_runs}). Target: ≤ 10 µs. "
            f"Loading an audit module that does nothing costs **{floor_wall:+.1f} µs** wall in the same loop: the floor "
            f"of LD_AUDIT itself on this machine; the hook's own share is {delta_wall - floor_wall:+.1f} µs.")
    benchlib.write_results(args.outdir, "hook_overhead", "Hook overhead without an image", data, md)


if __name__ == "__main__":
    main()
