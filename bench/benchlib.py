"""benchlib - what every benchmark in bench/ shares: where the product is, the environment runs get,
a temporary registry, `resident bench --json`, and writing results (JSON + markdown) to OUTDIR.

Stdlib only. Nothing is written outside the temporary directories and OUTDIR.
"""
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The product to measure: dist/ of the repository unless BENCH_DIST names another build.
DIST = os.environ.get("BENCH_DIST", os.path.join(ROOT, "dist"))
CLI = os.path.join(DIST, "resident")
HOOK = os.path.join(DIST, "libresident.so")


# The real programs of issue 4 (absolute paths: PATH may hold other builds, e.g. a pyenv python):
# name, argv, runs per row for a full run. perl is the seed's program; the others are where linking
# dominates (clang-format: libLLVM, ~580k relocations; gdb: 59 libraries).
REAL_PROGRAMS = [
    ("perl </dev/null", ["/usr/bin/perl"], 1000),
    ("clang-format --version", ["/usr/bin/clang-format", "--version"], 200),
    ("gdb --version", ["/usr/bin/gdb", "--version"], 200),
    ("python3.11 -c pass", ["/usr/bin/python3.11", "-c", "pass"], 500),
    ("git --version", ["/usr/bin/git", "--version"], 1000),
]


# stdin, stdout and stderr of a timed run
DEVNULL_ACTIONS = [
    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
    (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
    (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
]


def spawn_seconds(argv, env, runs, who):
    """Wall seconds of RUNS sequential posix_spawn+waitpid of ARGV (stdio on /dev/null) from this
    process; a failing run aborts the benchmark WHO."""
    start = time.perf_counter()
    for _ in range(runs):
        pid = os.posix_spawn(argv[0], argv, env, file_actions=DEVNULL_ACTIONS)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            sys.exit(f"{who}: {' '.join(argv)} failed with wait status {status:#x}")
    return time.perf_counter() - start


def require_product():
    for f in (CLI, HOOK):
        if not os.path.exists(f):
            sys.exit(f"bench: {f} does not exist (build it first: ./setup.sh --no-demo, or set BENCH_DIST)")


def plain_env():
    """The caller's environment without anything that steers ld.so's binding or resident."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_AUDIT", "LD_BIND_NOW") and not k.startswith("RESIDENT_")}


def clean_env(registry):
    """plain_env() with RESIDENT_DIR=REGISTRY."""
    return dict(plain_env(), RESIDENT_DIR=registry)


def hook_env(env):
    return dict(env, LD_AUDIT=HOOK)


class TempRegistry:
    """A temporary directory with a registry in it; `with TempRegistry() as t: t.registry, t.env, t.dir`."""

    def __enter__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="resident-bench-")
        self.dir = self._tmp.name
        self.registry = os.path.join(self.dir, "registry")
        self.env = clean_env(self.registry)
        return self

    def __exit__(self, *exc):
        self._tmp.cleanup()

    def add(self, program, measure=False):
        """`resident add PROGRAM`; returns (wall seconds, add's line). Exits on failure.
        MEASURE: let add time the starts too (--force: registered even when slower); else --no-measure."""
        start = time.perf_counter()
        flags = ["--force"] if measure else ["--no-measure"]
        r = subprocess.run([CLI, "add", *flags, program], env=self.env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if r.returncode != 0:
            sys.exit(f"bench: resident add {program} failed ({r.returncode}): {r.stderr.strip()}")
        return elapsed, r.stdout.strip()

    def check_restored(self, argv, stdin=subprocess.DEVNULL):
        """One run through the hook with RESIDENT_DEBUG=1; True when every resident: line says restored."""
        r = subprocess.run(argv, env=dict(hook_env(self.env), RESIDENT_DEBUG="1"), stdin=stdin,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines = [l for l in r.stderr.splitlines() if l.startswith("resident: ")]
        return bool(lines) and all(l.startswith("resident: restored ") for l in lines), "; ".join(lines)


    def takeover_us(self, argv, runs, stdin=subprocess.DEVNULL):
        """Median of the hook's own takeover time (RESIDENT_DEBUG=2: "(takeover N us)") over RUNS restores."""
        times = []
        for _ in range(runs):
            r = subprocess.run(argv, env=dict(hook_env(self.env), RESIDENT_DEBUG="2"), stdin=stdin,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            m = re.search(r"^resident: restored \S+ \(takeover (\d+) us\)", r.stderr, re.M)
            if m:
                times.append(int(m.group(1)))
        return statistics.median(times) if times else None


def resident_bench(argv, runs, rounds, static=None, stdin=None):
    """`resident bench --json` of ARGV; returns its report (dict). The resident row is missing when
    the hook did not restore (resident bench then exits 1; that is reported, not fatal)."""
    cmd = [CLI, "bench", "-n", str(runs), "--rounds", str(rounds), "--json"]
    if static:
        cmd += ["--static", static]
    if stdin:
        cmd += ["--stdin", stdin]
    r = subprocess.run(cmd + ["--"] + list(argv), env=plain_env(), capture_output=True, text=True)
    try:
        report = json.loads(r.stdout) if r.returncode in (0, 1) else None
    except json.JSONDecodeError:
        report = None
    if report is None:
        sys.exit(f"bench: {' '.join(cmd)} -- {' '.join(argv)} failed ({r.returncode}): {(r.stderr + r.stdout).strip()}")
    if r.returncode == 1:
        print(f"bench: {r.stderr.strip()}", file=sys.stderr)
    return report


def machine():
    """cpu model, cpu count, kernel, glibc, date and commit: the header of every result."""
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu": cpu, "cpus": os.cpu_count(),
            "kernel": platform.release(), "glibc": platform.libc_ver()[1], "commit": commit or "?",
            "load": round(os.getloadavg()[0], 2)}


def machine_line(m):
    return f"{m['date']}, commit {m['commit']}: {m['cpu']}, {m['cpus']} cpus, kernel {m['kernel']}, glibc {m['glibc']}, load {m['load']}"


def rows_table(rows, columns):
    """A markdown table of ROWS (dicts) with COLUMNS as (title, key, format)."""
    out = ["| " + " | ".join(t for t, _, _ in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        out.append("| " + " | ".join(fmt.format(r[k]) if r.get(k) is not None else "—" for _, k, fmt in columns) + " |")
    return "\n".join(out)


BENCH_COLUMNS = [("row", "name", "{}"), ("user s", "userSeconds", "{:.3f}"), ("sys s", "sysSeconds", "{:.3f}"),
                 ("wall s", "wallSeconds", "{:.3f}"), ("ms/run", "msPerRun", "{:.3f}"), ("ratio", "ratio", "{:.3f}")]


def bench_markdown(report):
    """One `resident bench` report as a markdown table under a line naming the command."""
    head = f"`{' '.join(report['command'])} <{report['stdin']}`, {report['runs']} runs per row, {report['rounds']} rounds"
    if report.get("static"):
        head += f", static: `{report['static']}`"
    return head + "\n\n" + rows_table(report["rows"], BENCH_COLUMNS)


def write_results(outdir, name, title, data, markdown):
    """OUTDIR/NAME.json (DATA plus the machine) and OUTDIR/NAME.md (TITLE, machine line, MARKDOWN)."""
    os.makedirs(outdir, exist_ok=True)
    m = machine()
    with open(os.path.join(outdir, name + ".json"), "w") as f:
        json.dump({"machine": m, "results": data}, f, indent=2)
    with open(os.path.join(outdir, name + ".md"), "w") as f:
        f.write(f"## {title}\n\n{machine_line(m)}\n\n{markdown}\n")
    print(f"bench: wrote {os.path.join(outdir, name)}.json and .md")


def standard_args(description, quick_note=""):
    """argparse with OUTDIR and --quick (small counts, for development on a busy machine)."""
    import argparse
    p = argparse.ArgumentParser(description=description)
    p.add_argument("outdir", help="directory for NAME.json and NAME.md")
    p.add_argument("--quick", action="store_true", help="small counts (development; numbers are noise) " + quick_note)
    return p
