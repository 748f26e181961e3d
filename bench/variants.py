#!/usr/bin/python3.11
"""variants.py OUTDIR - layout variants (issue 13): what K layouts per program cost.

For perl and clang-format, registered once with one layout and once with `--variants K` (default
16) in registries of their own: the capture time and disk per variant; start time normal, resident
with one layout and resident with K, side by side in alternating rounds (must be the same within
noise: the hook reads one more file header); and the Pss of 10 concurrent instances (memory.py's
method), normal, one layout, K layouts (the instances spread over the variants the hook picks).
Writes OUTDIR/variants.{json,md}.
"""
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import memory  # noqa: E402

# name, argv timed, argv kept running for the Pss sum and the syscall it blocks in
PROGRAMS = [
    ("perl", ["/usr/bin/perl"], ["/usr/bin/perl", "-e", "sleep 60"], memory.SYS_CLOCK_NANOSLEEP),
    ("clang-format", ["/usr/bin/clang-format", "--version"], ["/usr/bin/clang-format"], memory.SYS_READ),
]


def registry_bytes(directory):
    return sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory) if ".img" in f)


def add(t, program, variants):
    """`resident add --no-measure --variants K PROGRAM` into T's registry; (seconds, bytes on disk)."""
    start = time.perf_counter()
    r = subprocess.run([benchlib.CLI, "add", "--no-measure", "--variants", str(variants), program], env=t.env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"variants: resident add --variants {variants} {program} failed: {r.stderr.strip()}")
    return seconds, registry_bytes(t.registry)


def main():
    p = benchlib.standard_args(__doc__.splitlines()[0])
    p.add_argument("-k", "--variants", type=int, default=16, help="layouts of the second registration (default 16)")
    p.add_argument("-n", type=int, default=100, help="runs per row and round (default 100)")
    p.add_argument("--rounds", type=int, default=6, help="alternating rounds (default 6)")
    p.add_argument("--instances", type=int, default=10, help="concurrent instances for the Pss sum (default 10)")
    args = p.parse_args()
    benchlib.require_product()
    runs, rounds, mem_rounds = (10, 2, 1) if args.quick else (args.n, args.rounds, 3)
    k = args.variants
    rows = []
    for name, argv, held, nr in PROGRAMS:
        with benchlib.TempRegistry() as one, benchlib.TempRegistry() as many:
            print(f"variants: {name}: registering with 1 and {k} layouts", flush=True)
            one_s, one_bytes = add(one, argv[0], 1)
            many_s, many_bytes = add(many, argv[0], k)
            for t in (one, many):
                ok, why = t.check_restored(argv)
                if not ok:
                    sys.exit(f"variants: {name} is not restored: {why}")
            modes = {"normal": one.env, "resident, 1 layout": benchlib.hook_env(one.env), f"resident, {k} layouts": benchlib.hook_env(many.env)}
            total = {m: 0.0 for m in modes}
            for r in range(rounds):
                for m in (list(modes) if r % 2 == 0 else list(reversed(modes))):
                    total[m] += benchlib.spawn_seconds(argv, modes[m], runs, "variants")
            ms = {m: total[m] / (runs * rounds) * 1000 for m in modes}
            pss = {m: [] for m in modes}
            for r in range(mem_rounds):
                for m in modes:
                    pss[m].append(memory.measure_set(held, nr, modes[m], args.instances)["Pss"])
            row = {"program": name, "variants": k, "captureSecondsOne": one_s, "captureSecondsPerVariant": many_s / k,
                   "bytesOne": one_bytes, "bytesPerVariant": many_bytes / k,
                   **{f"ms {m}": v for m, v in ms.items()}, **{f"Pss kB {m}": statistics.median(v) for m, v in pss.items()}}
            rows.append(row)
            print(f"variants: {name}: " + ", ".join(f"{m} {v:.3f} ms" for m, v in ms.items())
                  + "; Pss " + ", ".join(f"{m} {statistics.median(v) / 1024:.1f} MB" for m, v in pss.items()), flush=True)
    cols = [("program", "program", "{}"), ("capture s, 1 layout", "captureSecondsOne", "{:.2f}"),
            (f"capture s per variant ({k})", "captureSecondsPerVariant", "{:.2f}"),
            ("disk, 1 layout", "bytesOne", "{:,.0f}"), (f"disk per variant ({k})", "bytesPerVariant", "{:,.0f}")]
    cols += [(f"ms {m}", f"ms {m}", "{:.3f}") for m in ("normal", "resident, 1 layout", f"resident, {k} layouts")]
    cols += [(f"Pss kB {m}", f"Pss kB {m}", "{:.0f}") for m in ("normal", "resident, 1 layout", f"resident, {k} layouts")]
    md = (f"{runs} runs per row and round, {rounds} alternating rounds; Pss summed over {args.instances} concurrent instances "
          f"(median of {mem_rounds}).\n\n" + benchlib.rows_table(rows, cols))
    benchlib.write_results(args.outdir, "variants", f"Layout variants: one layout against {k}", rows, md)


if __name__ == "__main__":
    main()
