#!/usr/bin/env bash
# demo.sh — the main job in one minute: register perl in a temporary registry, run it resident,
# and time it against a normal perl. Writes nothing outside a temporary directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
resident=$root/dist/resident
RESIDENT_DIR=$(mktemp -d); export RESIDENT_DIR
trap 'rm -rf "$RESIDENT_DIR"' EXIT

echo "== resident add /usr/bin/perl   (registry: $RESIDENT_DIR)"
"$resident" add /usr/bin/perl
"$resident" list
echo
echo "== RESIDENT_DEBUG=1 resident exec perl -le 'print ...'"
RESIDENT_DEBUG=1 "$resident" exec perl -le 'print "hello from perl $^V, pid $$"'
echo
hook=$root/dist/libresident.so
loop() { local i; for ((i = 0; i < 300; i++)); do "$@" </dev/null; done; }
TIMEFORMAT='%R'
normal=$( { time loop /usr/bin/perl; } 2>&1 )
resident_t=$( { time (export LD_AUDIT=$hook; loop /usr/bin/perl); } 2>&1 )
echo "== 300 x perl </dev/null: normal ${normal}s, resident ${resident_t}s"
echo "   (bench/bench.sh measures properly, in alternating rounds)"
