#!/bin/sh
# check.sh SO SECTION ROUTINE_O - the freestanding rules for libresident.so (see Makefile).
set -eu
so=$1 section=$2 routine=$3
fail() { echo "check: FAIL: $*" >&2; exit 1; }

undef=$(nm -D --undefined-only "$so" | awk '{print $NF}')
[ -z "$undef" ] || fail "undefined symbols: $undef"

needed=$(readelf -d "$so" | grep NEEDED || true)
[ -z "$needed" ] || fail "DT_NEEDED entries: $needed"

# (the linker lists __start_/__stop_ of the section too, but HIDDEN: not exported)
exports=$(readelf -W --dyn-syms "$so" | awk '$7 != "UND" && $6 == "DEFAULT" && $5 != "LOCAL" {print $8}')
[ "$exports" = "la_version" ] || fail "exports must be exactly la_version, got: $exports"

# The routine's object holds code only: no data, constants or jump tables it
# would reach outside its copy (.text holds rs_end_at, which runs in place).
extra=$(readelf -SW "$routine" | sed 's/^ *\[ *[0-9]*\] *//' |
	awk -v s="$section" '$2 ~ /PROGBITS|NOBITS/ && $7 ~ /A/ && $5 != "000000" && $1 != s && $1 != ".text" {print $1}')
[ -z "$extra" ] || fail "$routine has data outside $section: $extra"

dis=$(objdump -d -j "$section" "$so") || fail "no section $section"
echo "$dis" | grep -q '>:$' || fail "section $section is empty"
rip=$(echo "$dis" | grep 'rip' || true)
[ -z "$rip" ] || fail "rip-relative references in $section:
$rip"

# Every direct call/jump must stay inside the section (it runs from a copy).
set -- $(readelf -SW "$so" | sed 's/^ *\[ *[0-9]*\] *//' | awk -v s="$section" '$1 == s {print $3, $5}')
[ $# -eq 2 ] || fail "cannot find $section in the section headers"
start=$((0x$1)) end=$((0x$1 + 0x$2))
echo "$dis" | awk '$0 ~ /\t(call|jmp|j[a-z]+) +[0-9a-f]+ </ {
	for (i = 1; i <= NF; i++) if ($i ~ /^(call|jmp|j[a-z]+)$/) { print $(i + 1); break } }' |
while read -r target; do
	t=$((0x$target))
	[ "$t" -ge "$start" ] && [ "$t" -lt "$end" ] || fail "branch out of $section to 0x$target"
done
echo "check: ok ($so: no undefined symbols, no DT_NEEDED, exports la_version, $section is self-contained)"
