#!/usr/bin/python3.11
"""scaling.py OUTDIR - start-up time against the number of relocations R, for synthetic programs.

For each R (default 10k, 30k, 100k, 300k, 1M) gen.py builds a program with LIBS shared libraries
and R symbol relocations, dynamically and statically, in a temporary directory; `resident bench`
times normal, LD_BIND_NOW=1, resident (through the hook, verified) and static side by side.
Writes OUTDIR/synth_scaling.{json,md}; bench/Plot turns the JSON into a PNG.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib  # noqa: E402
import gen  # noqa: E402

DEFAULT_RS = [10_000, 30_000, 100_000, 300_000, 1_000_000]


def main():
    p = benchlib.standard_args(__doc__.splitlines()[0])
    p.add_argument("-L", "--libs", type=int, default=10, help="shared libraries (default 10)")
    p.add_argument("-R", "--relocs", type=int, nargs="+", default=DEFAULT_RS, help="relocation counts (default 10k..1M)")
    p.add_argument("-n", type=int, default=200, help="runs per row and R (default 200)")
    p.add_argument("--rounds", type=int, default=10, help="alternating rounds (default 10)")
    args = p.parse_args()
    benchlib.require_product()
    rs, runs, rounds = ([10_000, 100_000], 10, 2) if args.quick else (args.relocs, args.n, args.rounds)
    points = []
    for r in rs:
        with tempfile.TemporaryDirectory(prefix="resident-synth-") as tmp:
            print(f"synth: building L={args.libs} R={r}", flush=True)
            dynamic, static = gen.build(tmp, gen.generate(tmp, args.libs, r))
            report = benchlib.resident_bench([dynamic], runs, rounds, static=static)
        rows = {row["name"]: row for row in report["rows"]}
        points.append({"relocs": r, "libs": args.libs, "report": report,
                       **{name: rows[name]["msPerRun"] if name in rows else None
                          for name in ("normal", "LD_BIND_NOW=1", "resident", "static")}})
        print(f"synth: R={r}: " + ", ".join(f"{k} {v['msPerRun']:.3f} ms" for k, v in rows.items()), flush=True)
    for pt in points:
        pt["resident/static"] = pt["resident"] / pt["static"] if pt["resident"] and pt["static"] else None
    md = (f"{args.libs} libraries, {runs} runs per row and R in {rounds} alternating rounds; ms per run.\n\n"
          + benchlib.rows_table(points, [("R", "relocs", "{:,}"), ("normal", "normal", "{:.3f}"),
                                         ("LD_BIND_NOW=1", "LD_BIND_NOW=1", "{:.3f}"), ("resident", "resident", "{:.3f}"),
                                         ("static", "static", "{:.3f}"), ("resident/static", "resident/static", "{:.3f}")]))
    benchlib.write_results(args.outdir, "synth_scaling", "Start-up time against relocations (synthetic)", points, md)


if __name__ == "__main__":
    main()
