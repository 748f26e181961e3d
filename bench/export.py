#!/usr/bin/python3.11
"""export.py OUTDIR - `resident export` (issue 12): exported files against static builds and normal starts.

Side by side, in alternating rounds of posix_spawn+waitpid (stdio on /dev/null):
  - the synthetic L x R program (bench/synth/gen.py) at each R: its static build, the exported
    dynamic build, and the dynamic build started normally; the bar is exported <= 1.05 x static;
  - Debian's perl (</dev/null, as the seed's table): normal, resident (the hook), exported; the bar
    is exported <= 0.80 x normal;
  - clang-format --version: normal, resident (the hook), exported.
With each exported file's size and the wall time of `resident export`.
Writes OUTDIR/export.{json,md}.
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "synth"))
import benchlib  # noqa: E402
import gen  # noqa: E402

DEFAULT_RS = [10_000, 30_000, 100_000, 300_000, 1_000_000]


def export(program, out, env):
    """`resident export PROGRAM -o OUT`; returns (wall seconds, file size)."""
    start = time.perf_counter()
    r = subprocess.run([benchlib.CLI, "export", program, "-o", out], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"bench: resident export {program} failed ({r.returncode}): {r.stderr.strip()}")
    return elapsed, os.path.getsize(out)


def side_by_side(rows, runs, rounds):
    """ROWS: (name, argv, env); ms per run of each, measured in ROUNDS alternating rounds of RUNS."""
    total = {name: 0.0 for name, _, _ in rows}
    for _ in range(rounds):
        for name, argv, env in rows:
            total[name] += benchlib.spawn_seconds(argv, env, runs, "export")
    return {name: total[name] / (runs * rounds) * 1000 for name, _, _ in rows}


def main():
    p = benchlib.standard_args(__doc__.splitlines()[0])
    p.add_argument("-L", "--libs", type=int, default=10, help="shared libraries of the synthetic program (default 10)")
    p.add_argument("-R", "--relocs", type=int, nargs="+", default=DEFAULT_RS, help="relocation counts (default 10k..1M)")
    p.add_argument("-n", type=int, default=200, help="runs per row and round (default 200)")
    p.add_argument("--rounds", type=int, default=10, help="alternating rounds (default 10)")
    args = p.parse_args()
    benchlib.require_product()
    rs, runs, rounds = ([10_000, 100_000], 20, 3) if args.quick else (args.relocs, args.n, args.rounds)
    env = benchlib.plain_env()
    synth, programs = [], []
    for r in rs:
        with tempfile.TemporaryDirectory(prefix="resident-export-") as tmp:
            print(f"export: synthetic L={args.libs} R={r}", flush=True)
            dynamic, static = gen.build(tmp, gen.generate(tmp, args.libs, r))
            exported = os.path.join(tmp, "exported")
            seconds, size = export(dynamic, exported, env)
            ms = side_by_side([("static", [static], env), ("exported", [exported], env), ("normal", [dynamic], env)], runs, rounds)
            synth.append({"relocs": r, "libs": args.libs, **ms, "exported/static": ms["exported"] / ms["static"],
                          "size": size, "staticSize": os.path.getsize(static), "exportSeconds": seconds})
            print(f"export: R={r}: static {ms['static']:.3f} ms, exported {ms['exported']:.3f} ms "
                  f"({ms['exported'] / ms['static']:.3f} x static), normal {ms['normal']:.3f} ms", flush=True)
    for name, argv, n in [("perl </dev/null", ["/usr/bin/perl"], runs * 2), ("clang-format --version", ["/usr/bin/clang-format", "--version"], runs)]:
        with benchlib.TempRegistry() as t:
            print(f"export: {name}", flush=True)
            t.add(argv[0])
            ok, why = t.check_restored(argv)
            if not ok:
                sys.exit(f"bench: {name} is not restored through the hook: {why}")
            exported = os.path.join(t.dir, "exported")
            seconds, size = export(argv[0], exported, t.env)
            ms = side_by_side([("normal", argv, t.env), ("resident", argv, benchlib.hook_env(t.env)),
                               ("exported", [exported] + argv[1:], t.env)], n, rounds)
            programs.append({"program": name, **ms, "exported/normal": ms["exported"] / ms["normal"],
                             "resident/normal": ms["resident"] / ms["normal"], "size": size, "exportSeconds": seconds})
            print(f"export: {name}: normal {ms['normal']:.3f} ms, resident {ms['resident']:.3f} ms, exported {ms['exported']:.3f} ms "
                  f"({ms['exported'] / ms['normal']:.3f} x normal)", flush=True)
    mb = "{:.1f} MB"
    md = (f"Synthetic program, {args.libs} libraries; {runs} runs per row and round, {rounds} alternating rounds; ms per run.\n\n"
          + benchlib.rows_table([dict(s, size=s["size"] / 1e6, staticSize=s["staticSize"] / 1e6) for s in synth],
                                [("R", "relocs", "{:,}"), ("static", "static", "{:.3f}"), ("exported", "exported", "{:.3f}"),
                                 ("exported/static", "exported/static", "{:.3f}"), ("normal", "normal", "{:.3f}"),
                                 ("exported size", "size", mb), ("static size", "staticSize", mb),
                                 ("export s", "exportSeconds", "{:.2f}")])
          + "\n\nReal programs: normal, through the hook (resident) and exported; ms per run.\n\n"
          + benchlib.rows_table([dict(p, size=p["size"] / 1e6) for p in programs],
                                [("program", "program", "{}"), ("normal", "normal", "{:.3f}"), ("resident", "resident", "{:.3f}"),
                                 ("exported", "exported", "{:.3f}"), ("resident/normal", "resident/normal", "{:.3f}"),
                                 ("exported/normal", "exported/normal", "{:.3f}"), ("exported size", "size", mb),
                                 ("export s", "exportSeconds", "{:.2f}")]))
    benchlib.write_results(args.outdir, "export", "resident export: exported files against static builds and normal starts",
                           {"synthetic": synth, "programs": programs}, md)


if __name__ == "__main__":
    main()
