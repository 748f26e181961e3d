#!/usr/bin/python3.11
"""gen.py DIR [-L LIBS] [-R RELOCS] - a synthetic program with LIBS shared libraries and RELOCS
symbol relocations in total, built dynamically (DIR/dynamic/prog) and statically (DIR/static/prog).

Every library libsynI.so exports FUNCS tiny functions fI_J and a pointer table tableI of RELOCS/LIBS
entries, each pointing at a function chosen at random (fixed seed) from all libraries. In the
shared build every entry is an R_X86_64_64 relocation against a global symbol, which ld.so must
look up through the whole scope (the main program, every libsyn, libc): the work that grows with R
and that a resident image skips. main calls checkI() of every library through the PLT (the only
lazy relocations, the ones LD_BIND_NOW changes) and returns 0 when each table's first entry is set.
The static build links the same sources into one non-PIE executable: no relocation at run time.
Written in assembly because a C initialiser with a million addresses takes gcc minutes.
"""
import argparse
import os
import random
import subprocess


def library_source(i, libs, funcs, entries, rng):
    out = ["\t.text"]
    for j in range(funcs):
        out += [f"\t.globl f{i}_{j}", f"\t.type f{i}_{j}, @function", f"f{i}_{j}:", f"\tmovl ${j}, %eax", "\tret"]
    # checkI reads the table through a local label: no relocation, no copy relocation into main
    out += [f"\t.globl check{i}", f"\t.type check{i}, @function", f"check{i}:",
            f"\tmovq .Ltable{i}(%rip), %rax", "\tret"]
    out += ["\t.section .data.rel,\"aw\"", "\t.balign 8", f"\t.globl table{i}", f"\t.type table{i}, @object",
            f"\t.size table{i}, {entries * 8}", f"table{i}:", f".Ltable{i}:"]
    out += [f"\t.quad f{rng.randrange(libs)}_{rng.randrange(funcs)}" for _ in range(entries)]
    out.append('\t.section .note.GNU-stack,"",@progbits')
    return "\n".join(out) + "\n"


def main_source(libs):
    decls = "".join(f"extern long check{i}(void);\n" for i in range(libs))
    body = "".join(f"\tif (!check{i}()) return 1;\n" for i in range(libs))
    return f"{decls}\nint main(void)\n{{\n{body}\treturn 0;\n}}\n"


def generate(dir, libs, relocs, funcs=1000, seed=1):
    """Writes DIR/src/main.c and DIR/src/libsynI.s; returns the library sources' paths."""
    src = os.path.join(dir, "src")
    os.makedirs(src, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for i in range(libs):
        entries = relocs * (i + 1) // libs - relocs * i // libs
        path = os.path.join(src, f"libsyn{i}.s")
        with open(path, "w") as f:
            f.write(library_source(i, libs, funcs, entries, rng))
        paths.append(path)
    with open(os.path.join(src, "main.c"), "w") as f:
        f.write(main_source(libs))
    return paths


def run(cmd):
    subprocess.run(cmd, check=True)


def build(dir, lib_sources):
    """DIR/dynamic/prog (+ its libsynI.so, found via $ORIGIN) and DIR/static/prog."""
    dyn, sta = os.path.join(dir, "dynamic"), os.path.join(dir, "static")
    os.makedirs(dyn, exist_ok=True)
    os.makedirs(sta, exist_ok=True)
    main_c = os.path.join(dir, "src", "main.c")
    names = []
    for path in lib_sources:
        name = os.path.splitext(os.path.basename(path))[0]
        run(["gcc", "-shared", "-o", os.path.join(dyn, name + ".so"), path, "-Wl,-soname," + name + ".so"])
        names.append("-l" + name[3:])
    run(["gcc", "-O2", "-o", os.path.join(dyn, "prog"), main_c, "-L" + dyn, *names, "-Wl,-rpath,$ORIGIN"])
    run(["gcc", "-O2", "-static", "-o", os.path.join(sta, "prog"), main_c, *lib_sources])
    return os.path.join(dyn, "prog"), os.path.join(sta, "prog")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir")
    p.add_argument("-L", "--libs", type=int, default=10, help="shared libraries (default 10)")
    p.add_argument("-R", "--relocs", type=int, default=100_000, help="symbol relocations in all tables (default 100000)")
    p.add_argument("--funcs", type=int, default=1000, help="exported functions per library (default 1000)")
    args = p.parse_args()
    dynamic, static = build(args.dir, generate(args.dir, args.libs, args.relocs, args.funcs))
    print(dynamic)
    print(static)


if __name__ == "__main__":
    main()
