#!/bin/sh
# run-empty.sh ROOT PROG ARGS... : PROG in chroot ROOT with only /proc and /dev mounted, plus the
# directories named in RO_BINDS (colon-separated host paths) bound read-only at the same place.
set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
root=$1; shift
exec unshare --mount --fork /bin/sh -c '
set -eu
root=$1; shift
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
IFS=:
for d in ${RO_BINDS:-}; do mkdir -p "$root$d"; mount -o bind,ro "$d" "$root$d"; done
unset IFS
exec chroot "$root" "$@"' sh "$root" "$@"
