/*
 * export.h - the descriptor an exported file's stub reads (docs/export.md).
 *
 * `resident export` writes one static ELF executable: the snapshot's
 * regions as PT_LOAD segments at their addresses, the stub (export.c, built
 * as dist/resident-stub at a fixed address) as its own segments, and the
 * image's metadata in one more. The stub's data holds one struct rs_export,
 * found by its magic; the exporter fills in where the metadata lies and
 * the CPU the export was made on. Its C# mirror is
 * src/Resident.Core/Export/ExportDescriptor.cs (tests/.../LayoutTests.cs
 * checks the offsets).
 */
#ifndef RESIDENT_EXPORT_H
#define RESIDENT_EXPORT_H

#include "image.h"

#define RS_EXPORT_MAGIC "RSEXPORT" /* 8 bytes, no NUL stored */
#define RS_EXPORT_VERSION 1u
#define RS_EXPORT_CPUID_MAX 16

/* rs_export_cpuid.reg */
#define RS_CPUID_EAX 0u
#define RS_CPUID_EBX 1u
#define RS_CPUID_ECX 2u
#define RS_CPUID_EDX 3u
#define RS_CPUID_XCR0 4u /* xgetbv(0): the register state the kernel enables (AVX, AVX-512) */

/* One word of CPU features. The stub's own data lists which (leaf, subleaf,
 * reg, mask); `resident-stub` run by itself prints each word's value on this
 * CPU, and the exporter stores them in value. At start every bit of
 * (value & mask) must be set on the running CPU: the ifunc choices the
 * snapshot froze may use any feature the export's CPU had. */
struct rs_export_cpuid {
	rs_u32 leaf, subleaf, reg, mask;
	rs_u32 value; /* filled in by the exporter */
	rs_u32 reserved;
};

struct rs_export {
	char magic[8]; /* RS_EXPORT_MAGIC */
	rs_u32 version; /* RS_EXPORT_VERSION */
	rs_u32 cpuid_count; /* entries of cpuid[] in use (the stub's) */
	/* filled in by the exporter; meta 0: not exported (print the CPU words) */
	rs_u64 meta; /* address of the image's metadata [0, meta_size) in the exported process */
	rs_u64 meta_size;
	rs_u64 file_size; /* the image file's size when written (its offsets are checked against it) */
	rs_u64 self_start, self_end; /* the stub's segments and the metadata's: unmapped by the takeover */
	rs_u64 brk_from; /* the end of the file's highest segment: where the kernel counts this exec's break from */
	struct rs_export_cpuid cpuid[RS_EXPORT_CPUID_MAX];
};

#endif
