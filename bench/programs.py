#!/usr/bin/python3.11
"""programs.py OUTDIR - `resident bench` of the real programs where linking dominates.

clang-format --version, gdb --version, python3.11 -c pass, git --version and perl </dev/null:
normal, LD_BIND_NOW=1 and resident (through the hook, verified to restore) side by side in
alternating rounds. Writes OUTDIR/programs.{json,md}.
"""
import benchlib


def main():
    p = benchlib.standard_args(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20, help="alternating rounds per program (default 20)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every program's run count (default 1)")
    args = p.parse_args()
    benchlib.require_product()
    reports, sections = [], []
    for name, argv, runs in benchlib.REAL_PROGRAMS:
        n, rounds = (10, 2) if args.quick else (max(1, int(runs * args.scale)), args.rounds)
        print(f"programs: {name} x{n}", flush=True)
        report = benchlib.resident_bench(argv, n, rounds)
        reports.append({"name": name, "report": report})
        sections.append(f"### {name}\n\n" + benchlib.bench_markdown(report))
    benchlib.write_results(args.outdir, "programs", "Real programs", reports, "\n\n".join(sections))


if __name__ == "__main__":
    main()
