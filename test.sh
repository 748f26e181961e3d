#!/usr/bin/env bash
# test.sh — build (./setup.sh --no-demo), check the hook is freestanding, run every test.
set -uo pipefail
cd "$(dirname "$0")"
./setup.sh --no-demo || exit 1
make -s -C native OUT="$PWD/dist" check || { echo "test: the hook is not freestanding (make -C native check)"; exit 1; }
clang-format-14 --dry-run --Werror native/*.c native/*.h native/tests/*.c || { echo "test: native/ does not follow .clang-format (clang-format-14 -i native/*.[ch] native/tests/*.c)"; exit 1; }
make -s -C native OUT="$PWD/dist" test || { echo "test: native validation tests failed (make -C native test)"; exit 1; }
log=dist/test.log
dotnet test resident.slnx --nologo --logger "console;verbosity=normal" > "$log" 2>&1
rc=$?
grep -E '^\s+(Passed|Failed|Skipped) |^\s+(Error Message|Stack Trace)|^\s+at |Assert|error ' "$log" | grep -v '^\s*Passed ' | head -200
# dotnet test closes with "Total tests: N" then "Passed: N" / "Failed: N" lines.
passed=$(sed -n 's/^ *Passed: *\([0-9]*\)$/\1/p' "$log" | tail -1)
failed=$(sed -n 's/^ *Failed: *\([0-9]*\)$/\1/p' "$log" | tail -1)
echo "${passed:-0} passed, ${failed:-0} failed"
[ "$rc" -eq 0 ] && [ -n "$passed" ] || { echo "test: dotnet test exited $rc (full log: $log)"; exit 1; }
