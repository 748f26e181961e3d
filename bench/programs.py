#!/usr/bin/python3.11
"""programs.py OUTDIR - `resident bench` of the real programs where linking dominates.

clang-format --version, gdb --version, python3.11 -c pass, git --version and perl </dev/null:
normal, LD_BIND_NOW=1 and resident (through the hook, verified to restore) side by side in
alternating rounds; then the hook's own takeover time (RESIDENT_DEBUG=2, la_version entry to the
final jump, measured in-process), median of TAKEOVER_RUNS restores. Writes OUTDIR/programs.{json,md}.
"""
import benchlib


def takeover_us(argv, runs):
    with benchlib.TempRegistry() as t:
        t.add(argv[0])
        return t.takeover_us(argv, runs)


def main():
    p = benchlib.standard_args(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20, help="alternating rounds per program (default 20)")
    p.add_argument("--takeover-runs", type=int, default=100, help="RESIDENT_DEBUG=2 runs per program (default 100)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every program's run count (default 1)")
    args = p.parse_args()
    benchlib.require_product()
    reports, sections = [], []
    for name, argv, runs in benchlib.REAL_PROGRAMS:
        n, rounds = (10, 2) if args.quick else (max(1, int(runs * args.scale)), args.rounds)
        print(f"programs: {name} x{n}", flush=True)
        report = benchlib.resident_bench(argv, n, rounds)
        takeover = takeover_us(argv, 5 if args.quick else args.takeover_runs)
        reports.append({"name": name, "report": report, "takeover_us": takeover})
        sections.append(f"### {name}\n\n" + benchlib.bench_markdown(report)
                        + f"\n\nTakeover (RESIDENT_DEBUG=2, median): {takeover if takeover is not None else '—'} µs")
    benchlib.write_results(args.outdir, "programs", "Real programs", reports, summary(reports) + "\n\n" + "\n\n".join(sections))


def summary(reports):
    """One line per program: ms per run of each row, resident/normal, takeover."""
    lines = []
    for r in reports:
        rows = {row["name"]: row for row in r["report"]["rows"]}
        ms = lambda name: rows[name]["msPerRun"] if name in rows else None
        lines.append({"program": r["name"], "normal": ms("normal"), "bindnow": ms("LD_BIND_NOW=1"), "resident": ms("resident"),
                      "ratio": rows["resident"]["ratio"] if "resident" in rows else None, "takeover": r["takeover_us"]})
    return benchlib.rows_table(lines, [("program", "program", "`{}`"), ("normal ms", "normal", "{:.3f}"),
                                       ("LD_BIND_NOW=1 ms", "bindnow", "{:.3f}"), ("resident ms", "resident", "{:.3f}"),
                                       ("resident/normal", "ratio", "{:.3f}"), ("takeover µs (median)", "takeover", "{:.0f}")])


if __name__ == "__main__":
    main()
