#!/usr/bin/python3.11
"""capture_cost.py OUTDIR - what `resident add` costs: wall time and image size for each program.

Each program is registered alone in a fresh temporary registry, ROUNDS times (the first capture
also warms the page cache); reported are the median and the minimum wall time of the `resident add`
process (CLI start included), the capture time add itself prints, and the size of the image file. Writes OUTDIR/capture_cost.{json,md}.
"""
import glob
import os
import re
import statistics

import benchlib


def capture(argv0, rounds):
    times, size, line = [], 0, ""
    for _ in range(rounds):
        with benchlib.TempRegistry() as t:
            elapsed, line = t.add(argv0)
            times.append(elapsed)
            size = sum(os.path.getsize(f) for f in glob.glob(os.path.join(t.registry, "*.img")))
    # add's own line says how long the capture itself took (without the CLI's start and registry work)
    inner = re.search(r"captured in (\d+) ms", line)
    return {"median_s": statistics.median(times), "min_s": min(times), "captured_ms": int(inner.group(1)) if inner else None,
            "image_bytes": size, "line": line}


def main():
    p = benchlib.standard_args(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="captures per program (default 5)")
    args = p.parse_args()
    benchlib.require_product()
    rows = []
    for name, argv, _ in benchlib.REAL_PROGRAMS:
        r = capture(argv[0], 1 if args.quick else args.rounds)
        rows.append(dict(r, program=argv[0], image_kb=r["image_bytes"] / 1024))
        print(f"capture_cost: {argv[0]}: {r['median_s'] * 1000:.0f} ms, {r['image_bytes'] / 1024:.0f} KB", flush=True)
    md = benchlib.rows_table(rows, [("program", "program", "`{}`"), ("capture s (median)", "median_s", "{:.3f}"),
                                    ("capture s (min)", "min_s", "{:.3f}"),
                                    ("capture ms (add's own, last)", "captured_ms", "{}"), ("image KB", "image_kb", "{:.0f}")])
    benchlib.write_results(args.outdir, "capture_cost", "Capture cost (`resident add`)", rows, md)


if __name__ == "__main__":
    main()
