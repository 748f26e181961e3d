#!/usr/bin/env bash
# all.sh OUTDIR [--quick] — every benchmark (issues 4 and 15), one after the other; results in OUTDIR:
#   seed_table  the seed's table (perl against libperl.so vs Debian's static-libperl perl)
#   programs    clang-format, gdb, python3.11, git, perl: normal / LD_BIND_NOW / resident
#   init_level  clang-format, clang-14, gdb, perl, python3.11, git: normal / link level / init level, and the verdicts
#   synth_scaling  start-up time against relocations (bench/synth), plotted to OUTDIR/startup-vs-relocations.png
#   hook_overhead  what the hook costs programs without an image
#   memory      Pss of 10 concurrent instances, resident vs normal
#   capture_cost   resident add: time and image size
#   fixed_cost  issue 15: trivial C, git, perl, clang-format: ratio resident/normal, add's own ratio, takeover stages
#   export      issue 12: the synthetic program exported vs static, perl and clang-format exported vs normal and resident
#   variants    issue 13: perl and clang-format with 1 and 16 layouts: capture, disk, start time, Pss of 10 instances
# Each writes NAME.json and NAME.md; OUTDIR/results.md is all the markdown in this order.
# --quick: small counts, for checking that everything runs (the numbers are noise).
# BENCH_DIST=DIR measures another build than dist/ (resident + libresident.so).
# The machine should be quiet: the benchmarks time real process starts.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bench/all.sh OUTDIR [--quick]" >&2; exit 2; }
out=$(realpath -m "$1"); shift
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3.11
mkdir -p "$out"
for b in seed_table.py programs.py init_level.py synth/scaling.py hook_overhead.py memory.py capture_cost.py fixed_cost.py export.py variants.py; do
  echo "== $b"
  "$py" "$here/$b" "$out" "$@"
done
echo "== plot"
dotnet run --project "$here/Plot" -c Release --artifacts-path "${TMPDIR:-/tmp}/resident-bench-plot" -- \
  "$out/synth_scaling.json" "$out/startup-vs-relocations.png"
for n in seed_table programs init_level synth_scaling hook_overhead memory capture_cost fixed_cost export variants; do
  cat "$out/$n.md"; echo
done > "$out/results.md"
echo "all: results in $out/results.md"
