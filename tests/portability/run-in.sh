#!/bin/sh
# run-in.sh ROOT CMD ARGS... — run CMD inside the chroot at ROOT (one of chroots.sh's), with
# /proc, /dev, the repository's dist/ at /opt/resident and the repository itself (read-only) at
# /opt/resident-src, in a private mount namespace: every mount ends with the command. CMD, its
# arguments, environment, stdio and exit status are the command's own. Needs root.
#   RESIDENT_DIST=DIR   mount DIR instead of dist/ at /opt/resident
set -e
[ $# -ge 2 ] || { echo "usage: run-in.sh ROOT CMD ARGS..." >&2; exit 2; }
if [ -z "${RESIDENT_RUN_IN_NS:-}" ]; then
  RESIDENT_RUN_IN_NS=1 exec unshare -m --propagation private "$0" "$@"
fi
unset RESIDENT_RUN_IN_NS
repo=$(cd "$(dirname "$0")/../.." && pwd)
root=$1; shift
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mkdir -p "$root/opt/resident" "$root/opt/resident-src"
mount --bind "${RESIDENT_DIST:-$repo/dist}" "$root/opt/resident"
mount --bind -o ro "$repo" "$root/opt/resident-src"
exec chroot "$root" "$@"
