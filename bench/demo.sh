#!/usr/bin/env bash
# demo.sh — the main job in one minute: register perl in a temporary registry, run it resident,
# and measure it against a normal perl with bench/bench.sh. Writes nothing outside temporary directories.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
resident=$root/dist/resident
RESIDENT_DIR=$(mktemp -d); export RESIDENT_DIR
trap 'rm -rf "$RESIDENT_DIR"' EXIT

echo "== resident add /usr/bin/perl   (registry: $RESIDENT_DIR)"
if ! "$resident" add /usr/bin/perl; then   # add times the gain and refuses a program that starts slower
  echo "(on this machine, just now, perl started slower restored; registered anyway to show the rest)"
  "$resident" add --force --no-measure /usr/bin/perl
fi
"$resident" list
echo
echo "== RESIDENT_DEBUG=1 resident exec perl -le 'print ...'"
RESIDENT_DEBUG=1 "$resident" exec perl -le 'print "hello from perl $^V, pid $$"'
echo
echo "== a short measurement (bench/bench.sh; more rounds give steadier ratios)"
"$root/bench/bench.sh" --rounds 2 --only perl --perl-runs 200 | tail -2
