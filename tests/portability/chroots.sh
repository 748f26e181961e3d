#!/usr/bin/env bash
# chroots.sh — build (once) and cache the Debian chroots of the portability matrix.
#
#   tests/portability/chroots.sh [SUITE...]     default: bullseye bookworm trixie sid
#   tests/portability/chroots.sh --path SUITE   the same for one suite, then print its root
#
# Each chroot is a debootstrap minbase with perl, python3, git, gcc, g++, make and glibc's debug
# information (libc6-dbg: the tests' oracle for what capture reads from ld.so), kept in
# $RESIDENT_MATRIX_CACHE (default /var/cache/resident-matrix), outside the repository, and
# reused while its stamp is younger than 30 days. A chroot is built into SUITE.new and renamed
# only when complete, so an interrupted build is never taken for a cached one. Needs root.
# If the archive cannot be reached, this says so and exits non-zero: never a silent skip.
set -euo pipefail
cache=${RESIDENT_MATRIX_CACHE:-/var/cache/resident-matrix}
mirror=${RESIDENT_MATRIX_MIRROR:-http://deb.debian.org/debian}
packages=perl,python3,git,gcc,g++,make,libc6-dev,libc6-dbg
print_path=
if [ "${1:-}" = --path ]; then print_path=1; shift; [ $# -eq 1 ] || { echo "chroots: --path takes one suite" >&2; exit 2; }; fi
suites=("$@")
((${#suites[@]})) || suites=(bullseye bookworm trixie sid)

mkdir -p "$cache" 2>/dev/null || true

fresh() { [ -f "$1/.resident-matrix" ] && [ -n "$(find "$1/.resident-matrix" -mtime -30)" ]; }

# A cached chroot made with a shorter package list gets what is missing.
complete() {
  [ "$(cat "$1/.resident-matrix-packages" 2>/dev/null)" = "$packages" ] && return 0
  [ "$(id -u)" -eq 0 ] || { echo "chroots: adding packages to $1 needs root" >&2; return 1; }
  echo "chroots: installing ${packages//,/ } into $1" >&2
  chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
    chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${packages//,/ } >&2 &&
    echo "$packages" >"$1/.resident-matrix-packages"
}

for suite in "${suites[@]}"; do
  root=$cache/$suite
  if fresh "$root"; then
    complete "$root" || { echo "chroots: FAILED: apt-get install in $root" >&2; exit 1; }
    [ -n "$print_path" ] || echo "chroots: $suite cached ($root)"
    continue
  fi
  [ "$(id -u)" -eq 0 ] || { echo "chroots: building the $suite chroot needs root (debootstrap)" >&2; exit 1; }
  command -v debootstrap >/dev/null || {
    echo "chroots: installing debootstrap" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  curl -fsS -o /dev/null --max-time 30 "$mirror/dists/$suite/Release" || {
    echo "chroots: FAILED: cannot reach $mirror/dists/$suite/Release: the matrix cannot run" >&2
    exit 1
  }
  echo "chroots: building $suite into $root (debootstrap, a few minutes)" >&2
  rm -rf "$root.new"
  log=$cache/$suite.log
  if ! debootstrap --variant=minbase --include="$packages" "$suite" "$root.new" "$mirror" >"$log" 2>&1; then
    tail -20 "$log" >&2
    echo "chroots: FAILED: debootstrap $suite (log: $log)" >&2
    exit 1
  fi
  # apt inside sid may meet an expired Release file; keep that working for later installs.
  echo 'Acquire::Check-Valid-Until "false";' >"$root.new/etc/apt/apt.conf.d/99resident-matrix"
  # The oldest chroot is also the sysroot the CLI is linked against (setup.sh): the linker
  # resolves library symlinks from outside, so absolute ones are made relative. This runs
  # inside the chroot, so that no path can resolve to the host's files.
  chroot "$root.new" /bin/sh -c 'for l in $(find /usr/lib/x86_64-linux-gnu /usr/lib64 -maxdepth 1 -type l -lname "/*"); do
      ln -sfn "$(realpath -m -s --relative-to="$(dirname "$l")" "$(readlink "$l")")" "$l"; done'
  chroot "$root.new" ldd --version | sed -n 1p >"$root.new/.resident-matrix"
  echo "$packages" >"$root.new/.resident-matrix-packages"
  rm -rf "$root"
  mv "$root.new" "$root"
  echo "chroots: $suite ready: $(cat "$root/.resident-matrix")" >&2
done
[ -z "$print_path" ] || echo "$cache/${suites[0]}"
