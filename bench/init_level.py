#!/usr/bin/python3.11
"""init_level.py OUTDIR - the init level (issue 11) against the link level and a normal start.

For each real program: `resident add` at the link level into one registry and `resident add
--level init` into another (the init level's verdict: restored, or refused and why); then normal,
link-level and init-level starts side by side in alternating rounds (RUNS starts each per round,
median ms per start over the rounds). Writes OUTDIR/init_level.{json,md}.
"""
import statistics
import subprocess
import sys

import benchlib

PROGRAMS = [
    ("clang-format --version", ["/usr/bin/clang-format", "--version"], 20),
    ("clang-14 --version", ["/usr/bin/clang-14", "--version"], 20),
    ("gdb --version", ["/usr/bin/gdb", "--version"], 20),
    ("perl -e 1", ["/usr/bin/perl", "-e", "1"], 100),
    ("python3.11 -c pass", ["/usr/bin/python3.11", "-c", "pass"], 50),
    ("git --version", ["/usr/bin/git", "--version"], 100),
]


def add(t, program, init):
    r = subprocess.run([benchlib.CLI, "add", "--no-measure", *(["--level", "init"] if init else []), program],
                       env=t.env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"init_level: resident add {program} failed: {r.stderr.strip()}")
    return r.stdout.strip()


def verdict(line):
    if " at the init level" in line:
        return "restored at main"
    if "(init level refused: " in line:
        return "refused: " + line.split("(init level refused: ", 1)[1].rsplit("): image", 1)[0]
    return line


def main():
    p = benchlib.standard_args(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15, help="alternating rounds (default 15)")
    args = p.parse_args()
    benchlib.require_product()
    rows, data = [], []
    for name, argv, runs in PROGRAMS:
        rounds, n = (2, 2) if args.quick else (args.rounds, runs)
        print(f"init_level: {name}", flush=True)
        with benchlib.TempRegistry() as link, benchlib.TempRegistry() as init:
            add(link, argv[0], init=False)
            line = add(init, argv[0], init=True)
            for t in (link, init):
                ok, said = t.check_restored(argv)
                if not ok:
                    sys.exit(f"init_level: {name} is not restored: {said}")
            envs = {"normal": benchlib.plain_env(), "link": benchlib.hook_env(link.env), "init": benchlib.hook_env(init.env)}
            ms = {k: [] for k in envs}
            for _ in range(rounds):
                for k, env in envs.items():
                    ms[k].append(benchlib.spawn_seconds(argv, env, n, "init_level") / n * 1000)
            med = {k: statistics.median(v) for k, v in ms.items()}
        row = {"program": name, "verdict": verdict(line), "normal": med["normal"], "link": med["link"], "init": med["init"],
               "linkRatio": med["link"] / med["normal"], "initRatio": med["init"] / med["normal"]}
        rows.append(row)
        data.append(row)
        print(f"  normal {med['normal']:.2f} ms, link {med['link']:.2f} ms ({row['linkRatio']:.3f}), "
              f"init {med['init']:.2f} ms ({row['initRatio']:.3f}): {row['verdict']}", flush=True)
    table = benchlib.rows_table(rows, [("program", "program", "`{}`"), ("normal ms", "normal", "{:.2f}"), ("link ms", "link", "{:.2f}"),
                                       ("init ms", "init", "{:.2f}"), ("link/normal", "linkRatio", "{:.3f}"),
                                       ("init/normal", "initRatio", "{:.3f}"), ("init level", "verdict", "{}")])
    benchlib.write_results(args.outdir, "init_level", "Init level against link level and normal", data, table)


if __name__ == "__main__":
    main()
