#!/usr/bin/python3.11
"""bench.py - normal vs resident start-up time, as users run it (through the LD_AUDIT hook).

In alternating rounds, runs `perl </dev/null` (default x1000) and `clang-format --version`
(default x100) normally and with LD_AUDIT=dist/libresident.so, from a temporary registry in
which dist/resident registered /usr/bin/perl and /usr/bin/clang-format. Within a round the two
modes also alternate in blocks (--block), so a change in background load hits both alike.
Prints ms per run for each round and, per program, the median of the per-round ratios
resident/normal, next to the bar of issue 2.

Writes nothing outside its temporary directory; all output of the measured programs goes to
/dev/null. Stdlib only.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name, argv, default runs per round
PROGRAMS = [
    ("perl </dev/null", ["/usr/bin/perl"], 1000),
    ("clang-format --version", ["/usr/bin/clang-format", "--version"], 100),
]

# issue 2's bar: median ratio resident/normal at most this
BAR = {"perl </dev/null": 0.90, "clang-format --version": 0.30}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    p.add_argument("--perl-runs", type=int, default=1000, help="perl runs per round and mode (default 1000)")
    p.add_argument("--clang-runs", type=int, default=100, help="clang-format runs per round and mode (default 100)")
    p.add_argument("--block", type=int, default=50,
                   help="runs per mode before switching to the other mode within a round (default 50; "
                        "set it to the run count for one block per mode)")
    p.add_argument("--only", choices=["perl", "clang-format"], help="measure one program")
    p.add_argument("--resident", default=os.path.join(ROOT, "dist", "resident"), help="the CLI (default dist/resident)")
    p.add_argument("--hook", default=os.path.join(ROOT, "dist", "libresident.so"), help="the hook (default dist/libresident.so)")
    return p.parse_args()


def base_env(registry):
    """The caller's environment without any resident or LD_AUDIT setting, plus the temporary registry."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_AUDIT", "RESIDENT_DEBUG", "RESIDENT_DIR")}
    env["RESIDENT_DIR"] = registry
    return env


def register(cli, env, argvs):
    r = subprocess.run([cli, "add", "--force"] + [a[0] for a in argvs], env=env, capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.exit(f"bench: resident add failed ({r.returncode}): {r.stderr.strip()}")


def check_restored(argv, env):
    """One resident run with RESIDENT_DEBUG=1: the numbers mean nothing unless it says 'restored'."""
    r = subprocess.run(argv, env=dict(env, RESIDENT_DEBUG="1"), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = [l for l in r.stderr.splitlines() if l.startswith("resident: ")]
    ok = len(lines) == 1 and lines[0].startswith("resident: restored ")
    print(f"  {' '.join(argv)}: {lines[0] if lines else '(no resident: line)'}" + ("" if ok else "   <-- NOT RESTORED"))
    return ok


def ms_per_run(argv, modes, runs, block, first):
    """Wall ms per run for each mode (name -> env), RUNS runs each, in alternating blocks of BLOCK
    runs so that both modes see the same background load; FIRST says which mode opens each pair."""
    order = list(modes) if first == 0 else list(reversed(modes))
    total = {m: 0.0 for m in modes}
    done = 0
    while done < runs:
        n = min(block, runs - done)
        for m in order:
            total[m] += benchlib.spawn_seconds(argv, modes[m], n, "bench")
        order.reverse()
        done += n
    return {m: t * 1000 / runs for m, t in total.items()}


def header(args):
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"bench: {time.strftime('%Y-%m-%d %H:%M:%S')}  commit {commit or '?'}  kernel {platform.release()}  "
          f"{os.cpu_count()} cpus  rounds {args.rounds}  block {args.block}  load {os.getloadavg()[0]:.2f}")


def main():
    args = parse_args()
    for f in (args.resident, args.hook):
        if not os.path.exists(f):
            sys.exit(f"bench: {f} does not exist (build it first: ./setup.sh --no-demo)")
    runs = {"perl </dev/null": args.perl_runs, "clang-format --version": args.clang_runs}
    programs = [(n, a, runs[n]) for n, a, _ in PROGRAMS if not args.only or a[0].endswith("/" + args.only)]
    header(args)
    with tempfile.TemporaryDirectory(prefix="resident-bench-") as tmp:
        normal_env = base_env(os.path.join(tmp, "registry"))
        resident_env = dict(normal_env, LD_AUDIT=os.path.abspath(args.hook))
        register(args.resident, normal_env, [a for _, a, _ in programs])
        print("check (RESIDENT_DEBUG=1, once each):")
        restored = all([check_restored(a, resident_env) for _, a, _ in programs])
        if not restored:
            print("bench: WARNING: some program was not restored; its 'resident' numbers measure the hook without a restore")
        results = {name: [] for name, _, _ in programs}
        for rnd in range(1, args.rounds + 1):
            for name, argv, n in programs:
                # alternate which mode goes first, so drift within a round does not favour one
                modes = {"normal": normal_env, "resident": resident_env}
                t = ms_per_run(argv, modes, n, max(1, min(args.block, n)), rnd % 2)
                results[name].append((t["normal"], t["resident"]))
                print(f"round {rnd}  {name:<24} x{n:<5} normal {t['normal']:7.3f} ms  resident {t['resident']:7.3f} ms  "
                      f"ratio {t['resident'] / t['normal']:.3f}", flush=True)
        summary(results)


def summary(results):
    print()
    print(f"{'program':<24} {'normal ms (median)':>19} {'resident ms (median)':>21} {'ratio median':>13} {'ratio range':>15}  bar")
    for name, pairs in results.items():
        ratios = [r / n for n, r in pairs]
        median = statistics.median(ratios)
        verdict = f"<= {BAR[name]:.2f} {'met' if median <= BAR[name] else 'NOT met'}"
        print(f"{name:<24} {statistics.median(n for n, _ in pairs):19.3f} {statistics.median(r for _, r in pairs):21.3f} "
              f"{median:13.3f} {min(ratios):7.3f}-{max(ratios):.3f}  {verdict}")


if __name__ == "__main__":
    main()
