#!/usr/bin/python3.11
"""matrix.py - `perl </dev/null` normal vs resident on this machine and in chroots of the
portability matrix, side by side in one run.

Each round runs bench.py's perl measurement (one round of --perl-runs spawns per mode, the modes
alternating in blocks) on this machine and then inside each chroot (tests/portability/run-in.sh;
the chroot's own perl, glibc and python3, this repository's dist/), the order of the targets
alternating between rounds, so every target sees the same background load. Prints each round and,
per target, the medians and the median of the per-round ratios resident/normal.

Needs root (chroot) and the chroots (tests/portability/chroots.sh SUITE). Stdlib only.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = re.compile(r"round 1\s+perl </dev/null\s+x(\d+)\s+normal\s+([\d.]+) ms\s+resident\s+([\d.]+) ms")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suites", nargs="+", default=["trixie"], help="chroots to measure next to this machine (default trixie)")
    p.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    p.add_argument("--perl-runs", type=int, default=1000, help="perl runs per round, target and mode (default 1000)")
    return p.parse_args()


def chroot_root(suite):
    r = subprocess.run([os.path.join(ROOT, "tests", "portability", "chroots.sh"), "--path", suite], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"matrix: no {suite} chroot: {r.stderr.strip()}")
    return r.stdout.strip()


def glibc(cmd_prefix):
    out = subprocess.run(cmd_prefix + ["/usr/bin/ldd", "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].split()[-1] if out else "?"


def one_round(cmd_prefix, bench, runs):
    """ms per run (normal, resident) of one bench.py round under CMD_PREFIX (empty: this machine)."""
    r = subprocess.run(cmd_prefix + bench + ["--only", "perl", "--rounds", "1", "--perl-runs", str(runs)],
                       capture_output=True, text=True)
    m = LINE.search(r.stdout)
    if r.returncode != 0 or not m or "NOT RESTORED" in r.stdout:
        sys.exit(f"matrix: {' '.join(cmd_prefix + bench)} failed or did not restore:\n{r.stdout}{r.stderr}")
    return float(m.group(2)), float(m.group(3))


def main():
    args = parse_args()
    run_in = os.path.join(ROOT, "tests", "portability", "run-in.sh")
    host_bench = [sys.executable, os.path.join(ROOT, "bench", "bench.py")]
    chroot_bench = ["/usr/bin/python3", "/opt/resident-src/bench/bench.py", "--resident", "/opt/resident/resident",
                    "--hook", "/opt/resident/libresident.so"]
    targets = [("this machine", [], host_bench)]
    for s in args.suites:
        targets.append((s, [run_in, chroot_root(s), "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "HOME=/root", "TMPDIR=/tmp"], chroot_bench))
    names = {name: f"{name} (glibc {glibc(prefix)}, perl {perl_version(prefix)})" for name, prefix, _ in targets}
    print(f"matrix: perl </dev/null x{args.perl_runs} per mode, {args.rounds} rounds, load {os.getloadavg()[0]:.2f}")
    results = {name: [] for name, _, _ in targets}
    for rnd in range(1, args.rounds + 1):
        order = targets if rnd % 2 else list(reversed(targets))
        for name, prefix, bench in order:
            normal, resident = one_round(prefix, bench, args.perl_runs)
            results[name].append((normal, resident))
            print(f"round {rnd}  {names[name]:<50} normal {normal:7.3f} ms  resident {resident:7.3f} ms  ratio {resident / normal:.3f}", flush=True)
    print()
    print(f"{'target':<50} {'normal ms':>10} {'resident ms':>12} {'ratio median':>13} {'ratio range':>13}")
    for name, _, _ in targets:
        pairs = results[name]
        ratios = [r / n for n, r in pairs]
        print(f"{names[name]:<50} {statistics.median(n for n, _ in pairs):10.3f} {statistics.median(r for _, r in pairs):12.3f} "
              f"{statistics.median(ratios):13.3f} {min(ratios):6.3f}-{max(ratios):.3f}")


def perl_version(prefix):
    out = subprocess.run(prefix + ["/usr/bin/perl", "-e", "print $^V"], capture_output=True, text=True).stdout
    return out or "?"


if __name__ == "__main__":
    main()
