#!/usr/bin/env bash
# setup.sh — build everything on a fresh machine of this kind, then run the demo.
#
#   ./setup.sh            install missing system packages, build dist/resident (NativeAOT) and
#                         dist/libresident.so (freestanding LD_AUDIT hook), run the demo
#   ./setup.sh --no-demo  the same without the demo (test.sh uses this)
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD

# System packages: the C toolchain builds the hook and links NativeAOT; perl, python3.11,
# clang-format, git and gdb are the real programs the tests and benchmarks run; zsh and fish
# are there so `resident shell-init zsh|fish` is tested in the shells themselves.
need=()
for pair in gcc:gcc g++:g++ make:make objdump:binutils clang-14:clang-14 perl:perl \
            python3.11:python3.11 clang-format-14:clang-format-14 git:git gdb:gdb strace:strace \
            zsh:zsh fish:fish; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
# bench/seed_table.py links a perl against Debian's shared libperl (the seed's "normal" row).
[ -e /usr/lib/x86_64-linux-gnu/libperl.so ] || need+=(libperl-dev)
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "setup: need root to apt-get install ${need[*]}" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
command -v dotnet >/dev/null || { echo "setup: the .NET 10 SDK (dotnet) is required" >&2; exit 1; }

echo "setup: building dist/libresident.so"
make -s -C native OUT="$root/dist"
echo "setup: building dist/resident (NativeAOT)"
dotnet publish src/Resident.Cli -c Release -r linux-x64 -o "$root/dist" --nologo -v quiet \
  -p:DebugType=none > "$root/dist/.publish.log" 2>&1 || { cat "$root/dist/.publish.log" >&2; exit 1; }
"$root/dist/resident" --version

[ "${1:-}" = "--no-demo" ] && exit 0
exec bash "$root/bench/demo.sh"
