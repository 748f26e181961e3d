#!/usr/bin/env bash
# setup.sh — build everything on a fresh machine of this kind, then run the demo.
#
#   ./setup.sh            install missing system packages, build dist/resident (NativeAOT) and
#                         dist/libresident.so (freestanding LD_AUDIT hook), run the demo
#   ./setup.sh --no-demo  the same without the demo (test.sh uses this)
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD

# System packages: the C toolchain builds the hook and links NativeAOT (clang-14 with a sysroot); perl, python3.11,
# clang-format, git and gdb are the real programs the tests and benchmarks run; zsh and fish
# are there so `resident shell-init zsh|fish` is tested in the shells themselves.
need=()
for pair in gcc:gcc g++:g++ make:make objdump:binutils clang-14:clang-14 perl:perl \
            python3.11:python3.11 clang-format-14:clang-format-14 git:git gdb:gdb strace:strace \
            zsh:zsh fish:fish valgrind:valgrind ltrace:ltrace systemd-analyze:systemd; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
# bench/seed_table.py links a perl against Debian's shared libperl (the seed's "normal" row).
[ -e /usr/lib/x86_64-linux-gnu/libperl.so ] || need+=(libperl-dev)
# glibc's debug information is the tests' oracle for what capture reads from ld.so's bytes;
# debootstrap builds the chroots of the portability matrix (and the sysroot below).
dpkg -s libc6-dbg >/dev/null 2>&1 || need+=(libc6-dbg)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v curl >/dev/null 2>&1 || need+=(curl)
# setcap: the tests give a program file capabilities to see it refused
[ -x /usr/sbin/setcap ] || need+=(libcap2-bin)
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "setup: need root to apt-get install ${need[*]}" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
command -v dotnet >/dev/null || { echo "setup: the .NET 10 SDK (dotnet) is required" >&2; exit 1; }

echo "setup: building dist/libresident.so"
make -s -C native OUT="$root/dist"
# One dist/ for every glibc from 2.31 up: the CLI is linked against the oldest glibc of the
# portability matrix, whose chroot (Debian 11, built once by debootstrap and cached outside the
# repository) is the sysroot. RESIDENT_SYSROOT=DIR names another; =none links against this
# machine's glibc (dist/resident then runs only on glibc versions at least as new).
oldest_glibc=2.31
sysroot=${RESIDENT_SYSROOT:-}
if [ -z "$sysroot" ]; then
  sysroot=$(tests/portability/chroots.sh --path bullseye) || {
    echo "setup: no Debian 11 sysroot to link dist/resident against (see above);" \
      "RESIDENT_SYSROOT=none links against this machine's glibc instead" >&2
    exit 1
  }
fi
link=(-p:CppCompilerAndLinker=clang-14)
[ "$sysroot" = none ] || link+=("-p:SysRoot=$sysroot")
echo "setup: building dist/resident (NativeAOT, linked against the glibc of $sysroot)"
# The build does not know the sysroot is an input of its link step: start afresh when it changed.
stamp=src/Resident.Cli/obj/sysroot.stamp
if [ "$(cat "$stamp" 2>/dev/null)" != "$sysroot" ]; then
  rm -rf src/Resident.Cli/obj/Release/net10.0/linux-x64/native src/Resident.Cli/bin/Release/net10.0/linux-x64/native
  mkdir -p "$(dirname "$stamp")" && echo "$sysroot" >"$stamp"
fi
dotnet publish src/Resident.Cli -c Release -r linux-x64 -o "$root/dist" --nologo -v quiet \
  -p:DebugType=none "${link[@]}" > "$root/dist/.publish.log" 2>&1 || { cat "$root/dist/.publish.log" >&2; exit 1; }
newest=$(objdump -T "$root/dist/resident" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
if [ "$sysroot" != none ] && [ "$(printf '%s\n' "$newest" "$oldest_glibc" | sort -V | tail -1)" != "$oldest_glibc" ]; then
  echo "setup: dist/resident needs GLIBC_$newest, newer than the $oldest_glibc it must run on" >&2
  exit 1
fi
"$root/dist/resident" --version

[ "${1:-}" = "--no-demo" ] && exit 0
exec bash "$root/bench/demo.sh"
