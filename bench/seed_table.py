#!/usr/bin/python3.11
"""seed_table.py OUTDIR - the seed's table rebuilt on this machine.

The seed (DragonFly, 2004) timed 1000 x `perl </dev/null` with perl linked against a shared
libperl: normal, prebind, resident, and a perl with libperl linked in statically. Debian's
/usr/bin/perl is the static one (libperl.a inside, only libc/libm/libcrypt shared); the shared one
is built here: the perlmain.c of `perl -MExtUtils::Miniperl` compiled with
`perl -MExtUtils::Embed -e ccopts` and linked with `-e ldopts` against libperl.so.5.36
(package libperl-dev). Rows: shared-libperl perl normal, LD_BIND_NOW=1 (prebind's stand-in),
resident (through the hook), Debian's /usr/bin/perl as "static". Writes OUTDIR/seed_table.{json,md}.
"""
import os
import subprocess
import sys
import tempfile

import benchlib


def build_shared_perl(dir):
    """DIR/perl: perlmain against libperl.so. Exits with a hint when libperl-dev is missing."""
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/libperl.so"):
        sys.exit("seed_table: libperl.so (the linker's name for libperl.so.5.36) is missing: apt-get install libperl-dev")
    main_c = os.path.join(dir, "perlmain.c")
    with open(main_c, "w") as f:
        subprocess.run(["perl", "-MExtUtils::Miniperl", "-e", 'writemain(\\*STDOUT, "DynaLoader")'], stdout=f, check=True)
    opts = lambda what: subprocess.run(["perl", "-MExtUtils::Embed", "-e", what], capture_output=True, text=True, check=True).stdout.split()
    exe = os.path.join(dir, "perl")
    subprocess.run(["gcc", "-O2", *opts("ccopts"), main_c, "-o", exe, *opts("ldopts")], check=True)
    ldd = subprocess.run(["ldd", exe], capture_output=True, text=True).stdout
    if "libperl.so.5.36" not in ldd:
        sys.exit(f"seed_table: {exe} is not linked against libperl.so.5.36:\n{ldd}")
    return exe


def main():
    p = benchlib.standard_args(__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=1000, help="runs per row (default 1000, as the seed)")
    p.add_argument("--rounds", type=int, default=20, help="alternating rounds (default 20)")
    args = p.parse_args()
    benchlib.require_product()
    runs, rounds = (50, 5) if args.quick else (args.n, args.rounds)
    with tempfile.TemporaryDirectory(prefix="resident-seed-") as tmp:
        perl = build_shared_perl(tmp)
        report = benchlib.resident_bench([perl], runs, rounds, static="/usr/bin/perl")
    md = ("The seed's numbers (DragonFly 2004, 1000 runs): normal 5.61 s, prebind 3.90 s, resident 3.08 s, "
          "static 1.28 s. Here: `perl` is perlmain linked against libperl.so.5.36; static is Debian's /usr/bin/perl.\n\n"
          + benchlib.bench_markdown(report))
    benchlib.write_results(args.outdir, "seed_table", "The seed's table: perl </dev/null", report, md)


if __name__ == "__main__":
    main()
