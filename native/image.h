/*
 * image.h - the on-disk image format of resident (RS_VERSION below).
 *
 * This header is the C half of ONE spec (docs/image-format.md). Its C# mirror
 * is src/Resident.Core/Format/ImageFormat.cs; tests/Resident.Tests/Image/LayoutTests.cs
 * compiles a program against this header and checks every size and offset
 * against the mirror. Rules: fields are only appended, retired
 * fields are never reused, RS_VERSION is bumped on any change.
 *
 * Everything is little-endian and fixed width. Arrays are (offset, count) pairs
 * with offsets from the start of the file. Strings live in one string table and
 * are referenced by byte offset; each is NUL-terminated.
 *
 * File layout:
 *   [0, meta_size)          header, tables, string table, blobs (checksummed)
 *   [data_offset, file_size) saved pages, page-aligned so regions of kind
 *                            RS_REGION_IMAGE are mmapped straight from the file
 *
 * This header is included by the freestanding restore core: no libc types.
 */
#ifndef RESIDENT_IMAGE_H
#define RESIDENT_IMAGE_H

typedef unsigned char rs_u8;
typedef unsigned int rs_u32;
typedef unsigned long long rs_u64;
typedef long long rs_i64;

#define RS_MAGIC "RESIDENT" /* 8 bytes, no NUL stored */
/* 2: rlimit_stack appended to rs_header; 3: heap_word, heap_prefault; 4: prefault; 5: rs_file ctime, rs_header mm_*;
 * 6: the init level (RS_LEVEL_INIT, rs_header frame_* mm_*brk env_deps, patch kinds 8-13);
 * 7: rs_header kernel_ops (struct rs_kernel_op), fallback_offset, fallback_size; 8: rs_header variant_count, variant_index */
#define RS_VERSION 8u
#define RS_PAGE 4096u

/* Image names in a registry directory: printf("%llx-%llx.img", dev, ino) of the
 * executable as stat(2) reports it (st_dev, st_ino; lowercase hex, no padding).
 * Variant N > 0 of an image of several layouts: that name and printf(".%u", N). */

/* rs_header.level */
#define RS_LEVEL_LINK 1u /* stopped at ld.so's _dl_start_user: no constructor run */
#define RS_LEVEL_INIT 2u /* stopped at main's first instruction: the constructors have run (docs/init-level.md) */

/* rs_header.flags */
#define RS_HF_LAZY_BIND 1u /* captured without LD_BIND_NOW (program needed lazy binding) */

/* A table: where it is and how many fixed-size entries it has. */
struct rs_table {
	rs_u64 offset; /* from the start of the file; 8-aligned */
	rs_u32 count; /* number of entries */
	rs_u32 entry_size; /* sizeof the entry type; readers refuse a mismatch */
};

/* One address range [start, end). */
struct rs_span {
	rs_u64 start;
	rs_u64 end;
};

/* rs_file.flags */
#define RS_FILE_MAPPED 1u /* regions map it: the restorer opens it and keeps the fd */
#define RS_FILE_STAMP 2u /* checked by stat only (e.g. /etc/ld.so.cache) */
#define RS_FILE_ABSENT 4u /* probed by ld.so and not found: must still not exist */

/* A file the image depends on. files[0] is always the executable. */
struct rs_file {
	rs_u32 path; /* string table offset of the absolute path */
	rs_u32 flags; /* RS_FILE_* */
	rs_u64 dev; /* st_dev as stat(2) returns it (ABSENT: 0) */
	rs_u64 ino; /* st_ino (ABSENT: 0) */
	rs_u64 size; /* st_size (ABSENT: 0) */
	rs_i64 mtime_sec; /* st_mtim.tv_sec (ABSENT: 0) */
	rs_i64 mtime_nsec; /* st_mtim.tv_nsec (ABSENT: 0) */
	/* version 5: the inode change time, which no user can set: a file rewritten in place
	 * with its size and mtime put back (touch -d) still differs here */
	rs_i64 ctime_sec; /* st_ctim.tv_sec (ABSENT: 0) */
	rs_i64 ctime_nsec; /* st_ctim.tv_nsec (ABSENT: 0) */
};

/* rs_region.kind */
#define RS_REGION_FILE 1u /* MAP_PRIVATE from files[file] at offset */
#define RS_REGION_IMAGE 2u /* MAP_PRIVATE from the image file at offset */
#define RS_REGION_ZERO 3u /* anonymous zero pages */

/* rs_region.flags */
#define RS_RF_PATCHED 1u /* contains patch targets: map writable, patch, then mprotect to prot */

/*
 * One mapping to create at restore, [start, end) page-aligned. Regions are
 * sorted by start and do not overlap. Adjacent pages with the same kind, prot,
 * source and contiguous offsets are merged into one region by the writer.
 * Executable regions are always RS_REGION_FILE.
 */
struct rs_region {
	rs_u64 start;
	rs_u64 end;
	rs_u64 offset; /* FILE: offset in files[file]; IMAGE: offset in the image (page-aligned, >= data_offset); ZERO: 0 */
	rs_u32 prot; /* final PROT_READ|PROT_WRITE|PROT_EXEC bits */
	rs_u32 kind; /* RS_REGION_* */
	rs_u32 file; /* FILE: index into files (that file has RS_FILE_MAPPED); else 0 */
	rs_u32 flags; /* RS_RF_* */
	rs_u32 name; /* string table offset of the /proc/PID/maps name at capture ("" for none); informational */
	rs_u32 reserved; /* 0 */
};

/* rs_patch.kind: the word at addr becomes BASE + delta, where BASE is, in this exec: */
#define RS_PATCH_ARGC 1u /* &argc (the initial stack pointer) */
#define RS_PATCH_ARGV 2u /* &argv[0] */
#define RS_PATCH_ENVP 3u /* &envp[0] */
#define RS_PATCH_AUXV 4u /* &auxv[0] (the first Elf64_auxv_t) */
#define RS_PATCH_ARG_STRING 5u /* argv[index] (index < this exec's argc, else fall back) */
#define RS_PATCH_ENV_STRING 6u /* the envp string "NAME=VALUE" whose NAME is strings[index]; absent: fall back */
/* RS_PATCH_AUXV_VALUE: the value of the auxv entry with a_type == index
 * (AT_PLATFORM, AT_EXECFN, AT_RANDOM, ...); absent: fall back */
#define RS_PATCH_AUXV_VALUE 7u
/* version 6, init level only: */
/* RS_PATCH_ARGC_COUNT: the 4-byte int at addr + index (0 or 4) becomes this exec's argc; the word's
 * other four bytes are delta's (the saved word). A frame below main keeps argc so. */
#define RS_PATCH_ARGC_COUNT 8u
/* RS_PATCH_ARG_BASENAME: argv[index] after its last '/' (glibc's program_invocation_short_name) */
#define RS_PATCH_ARG_BASENAME 9u
/* RS_PATCH_MANGLED: the address delta, mangled with this exec's pointer guard as glibc's PTR_MANGLE
 * does (rol(delta ^ guard, 17)): atexit handlers, setjmp buffers. The guard is fresh per exec. */
#define RS_PATCH_MANGLED 10u
/* RS_PATCH_MANGLED_ARGC: &argc + delta, mangled the same way (a setjmp buffer's rsp and rbp) */
#define RS_PATCH_MANGLED_ARGC 11u
/* RS_PATCH_RANDOM: eight bytes drawn afresh per exec, the same for every such patch of the image:
 * a word a constructor filled from getrandom (glibc malloc's tcache key) and its copies (the key
 * in each chunk freed into the tcache) */
#define RS_PATCH_RANDOM 12u
/* RS_PATCH_CANARY: this exec's stack protector canary (fresh per exec, as the thread pointer's):
 * a copy of the capture's canary that a constructor kept */
#define RS_PATCH_CANARY 13u
#define RS_PATCH_KIND_MAX 13u

/* One word in the snapshot that pointed into the capture's initial stack. */
struct rs_patch {
	rs_u64 addr; /* address of the 8-byte word (inside some region) */
	rs_u32 kind; /* RS_PATCH_* */
	rs_u32 index; /* see kind; 0 when unused */
	rs_i64 delta; /* byte offset added to BASE */
};

/* rs_kernel_op.kind (init level): kernel state the constructors set, replayed by the takeover in order */
/* RS_KOP_SIGACTION: rt_sigaction(arg, value, 0, 8), value the kernel's struct sigaction {handler, flags, restorer, mask} */
#define RS_KOP_SIGACTION 1u
#define RS_KOP_SIGPROCMASK 2u /* rt_sigprocmask(arg = how, &value[0], 0, 8) */
#define RS_KOP_UMASK 3u /* umask(value[0]) */
#define RS_KOP_RLIMIT 4u /* prlimit64(0, arg = resource, {value[0] soft, value[1] hard}, 0) */
#define RS_KOP_NAME 5u /* prctl(PR_SET_NAME, value): 16 bytes, NUL-terminated */
#define RS_KOP_MAX 5u

/* One call of the constructors that changed kernel state of the process (init level). */
struct rs_kernel_op {
	rs_u32 kind; /* RS_KOP_* */
	rs_u32 arg; /* signal number, how, resource; 0 when unused */
	rs_u64 value[4]; /* see kind; unused words 0 */
};

/* rs_vdso_vma.kind */
#define RS_VDSO_VVAR 1u /* [vvar] */
#define RS_VDSO_VVAR_VCLOCK 2u /* [vvar_vclock] */
#define RS_VDSO_VDSO 3u /* [vdso] */

/* One VMA of the kernel's vvar..vdso block at capture. Its offset from [vdso]
 * start is the same in every process of the same kernel, which lets the
 * restorer find the live block from AT_SYSINFO_EHDR alone. */
struct rs_vdso_vma {
	rs_u64 start;
	rs_u64 end;
	rs_u32 kind; /* RS_VDSO_* ; 0 = unused slot */
	rs_u32 reserved;
};

#define RS_MAX_VDSO_VMAS 4

/*
 * The header, at offset 0. Every field has one meaning forever.
 */
struct rs_header {
	/* identity of the format */
	char magic[8]; /* RS_MAGIC */
	rs_u32 version; /* RS_VERSION */
	rs_u32 header_size; /* sizeof(struct rs_header) */
	rs_u64 file_size; /* exact size of the image file; a different size means truncated or corrupt */
	rs_u64 meta_size; /* bytes [0, meta_size) are covered by checksum; multiple of 8 */
	rs_u64 checksum; /* rs_checksum() of [0, meta_size) computed with this field zero */
	rs_u64 data_offset; /* page-aligned start of saved pages, >= meta_size */

	/* what and when (informational for the CLI; the hook does not read these) */
	rs_u64 id; /* registry id, stable, never reused */
	rs_i64 capture_time_ns; /* CLOCK_REALTIME at capture */
	rs_u32 level; /* RS_LEVEL_* */
	rs_u32 flags; /* RS_HF_* */
	rs_u32 exe_path; /* string table offset: the path the user registered (resolved) */
	rs_u32 reserved0;

	/* tables */
	struct rs_table files; /* struct rs_file; files[0] = executable */
	struct rs_table regions; /* struct rs_region, sorted by start */
	struct rs_table patches; /* struct rs_patch */
	struct rs_table env; /* rs_u32 string offsets of "NAME=VALUE": the LD_*, MALLOC_* and GLIBC_TUNABLES
	                          * variables at capture, except LD_AUDIT and LD_BIND_NOW; entry_size 4 */
	rs_u64 strings_offset; /* string table */
	rs_u64 strings_size;

	/* machine the image is valid on */
	rs_u64 hwcap; /* AT_HWCAP */
	rs_u64 hwcap2; /* AT_HWCAP2 */
	char platform[16]; /* AT_PLATFORM string, NUL-padded */
	char kernel_release[65]; /* uname().release */
	char reserved1[7];
	char kernel_version[65]; /* uname().version */
	char reserved2[7];
	rs_u64 vdso_hash; /* rs_checksum() of the [vdso] VMA's bytes */
	struct rs_vdso_vma vdso_vmas[RS_MAX_VDSO_VMAS]; /* the vvar..vdso block, by address */

	/* ld.so: offsets from its load base (AT_BASE); valid because ld.so (a files[] entry) is unchanged */
	rs_u64 ldso_base; /* AT_BASE at capture */
	rs_u64 cpu_features_off; /* struct cpu_features (what _dl_x86_get_cpu_features returns) */
	rs_u64 cpu_features_len; /* bytes compared */
	rs_u64 cpu_features_blob; /* file offset of cpu_features_len bytes: the capture's values */
	rs_u64 cpu_features_mask; /* file offset of cpu_features_len mask bytes: compare (v & m) only;
	                             * 0 in the per-core APIC id byte */
	rs_u64 syscall_ret_off; /* a "syscall; ret" (0f 05 c3) in ld.so's executable text */

	/* resume state at the stop point */
	rs_u64 resume_pc; /* _dl_start_user: first instruction after "call _dl_start" */
	rs_u64 resume_cont; /* where the final return lands: resume_pc + length of its "mov %rax,%r12" */
	rs_u64 user_entry; /* rax at the stop (the program's entry point), goes into r12 */
	rs_u64 fs_base; /* arch_prctl(ARCH_SET_FS) value */
	rs_u64 tid_address; /* set_tid_address() pointer (struct pthread.tid); 0 = ld.so made no such call */
	rs_u64 robust_head; /* set_robust_list() head; 0 = none */
	rs_u64 robust_len;
	rs_u64 rseq_addr; /* rseq() area; 0 = not registered */
	rs_u32 rseq_len;
	rs_u32 rseq_sig;

	/* auxv values of the snapshot, written over this exec's auxv at restore */
	rs_u64 at_phdr;
	rs_u64 at_phent;
	rs_u64 at_phnum;
	rs_u64 at_entry;
	rs_u64 at_base;
	rs_u64 at_sysinfo_ehdr;

	/* the capture's initial stack (informational; patches carry the meaning) */
	rs_u64 old_stack_argc; /* rsp at the stop */
	rs_u64 old_stack_end; /* end of the [stack] VMA */

	/* version 2 */
	rs_u64 rlimit_stack; /* soft RLIMIT_STACK of the captured process (RLIM_INFINITY: ~0). glibc
	                      * derives the default thread stack size from it before the stop point,
	                      * so the restorer falls back when this exec's soft limit differs */

	/* version 3 */
	rs_u64 heap_word; /* address of libc's __curbrk in the snapshot (0 there: libc has not asked the
	                   * kernel for its break yet), or 0 for none */
	rs_u64 heap_prefault; /* bytes (page multiple, <= RS_HEAP_PREFAULT_MAX): the restorer extends this
	                       * exec's break by that much, populates it, and stores the old break in
	                       * heap_word, so malloc's first sbrk finds its pages already there; 0 = off */

	/* version 4 */
	struct rs_table prefault; /* struct rs_span, sorted, disjoint, page-aligned, at most RS_PREFAULT_MAX: the
	                           * pages of read-only FILE regions that the program's constructors touched
	                           * at capture (present at main, not at the stop). The restorer populates
	                           * those of regions it does not populate whole; count 0 = none */

	/* version 5: the executable's layout as the kernel reports it (/proc/PID/stat, core dumps),
	 * read from the capture's process. The restorer hands them to prctl(PR_SET_MM_MAP) with this
	 * exec's auxv as patched, so that gdb, ltrace and cores see the restored layout; all 0 = none */
	rs_u64 mm_start_code; /* start_code: the executable's first code byte */
	rs_u64 mm_end_code; /* end_code */
	rs_u64 mm_start_data; /* start_data */
	rs_u64 mm_end_data; /* end_data */
	rs_u64 mm_brk_base; /* the end of the executable's last segment (its bss), page-aligned: where the
	                     * kernel starts the brk heap, before its random offset */
	rs_u64 stacksize_word; /* the word where libc keeps the default thread stack size it derived from
	                        * rlimit_stack before the stop point (glibc 2.34+; found at capture as the
	                        * one {guardsize 4096, stackaddr 0, stacksize} in the saved pages), or 0.
	                        * With it, an exec under another finite soft RLIMIT_STACK of at least
	                        * 1 MiB is restored with the size a normal start would derive (the limit,
	                        * page-aligned); without it the limits must be equal */
	rs_u64 measured_normal_ns; /* `resident add`'s timing, for list and show (the hook does not read it): a start
	                            * to main without this image, median ns; 0 = not measured */
	rs_u64 measured_resident_ns; /* the same start restored from this image */

	/* version 6: the init level (level RS_LEVEL_INIT; every field 0 at the link level). The
	 * snapshot is taken at main's first instruction. The restore rebuilds the frames below main
	 * in this exec's stack, ending where this exec's argc is, and resumes in main's caller at
	 * frame_resume, the first of the loads of main's arguments before its call, so that main
	 * gets this exec's argc, argv and environment, and its return goes to exit() */
	rs_u64 frame_addr; /* rsp at main at capture: the frames are [frame_addr, old_stack_argc), at most
	                    * RS_FRAME_MAX bytes; patches inside them move with them */
	rs_u64 frame_blob; /* file offset of their bytes (inside the checksummed metadata) */
	rs_u64 frame_resume; /* where the takeover resumes (written at the frames' first word, the
	                      * return address main's call will push again) */
	rs_u64 mm_start_brk; /* the program break at capture: the kernel's start_brk and brk are set to */
	rs_u64 mm_brk; /* these (PR_SET_MM_MAP), so that malloc's heap grows on where it ended */
	struct rs_table env_deps; /* rs_u32 string offsets: the variables the constructors looked up
	                           * (getenv), "NAME=VALUE" as set at capture or "NAME" unset; an exec
	                           * where one differs starts from the fallback image below, else normally; entry_size 4 */

	/* version 7 */
	struct rs_table kernel_ops; /* struct rs_kernel_op, init level: what the constructors changed in the
	                             * kernel's state of the process (signal dispositions and mask, umask,
	                             * limits, the thread's name), replayed in order after the mappings; the
	                             * capture proved they do not depend on the state inherited; count 0 = none */
	rs_u64 fallback_offset; /* init level with env_deps: a complete link-level image of the same program
	                         * lies at [fallback_offset, fallback_offset + fallback_size) of this file,
	                         * page-aligned, its offsets counted from its own start; an exec where a
	                         * looked-up variable differs is restored from it. Its end is this file's
	                         * file_size. 0, 0 = none */
	rs_u64 fallback_size;

	/* version 8: layout variants (resident add --variants K): K images of the same program, one
	 * registration (the same id), each captured in another address layout; variant 0 is the
	 * registry's usual file, variant N > 0 the file of its name + ".N". The hook reads variant 0
	 * and uses variant (a hash of this exec's AT_RANDOM) mod K. 0, 0 or 1, 0 = one layout */
	rs_u32 variant_count;
	rs_u32 variant_index;
};

#define RS_VARIANTS_MAX 256u

#define RS_FRAME_MAX 4096u

#define RS_PREFAULT_MAX 4096u

#define RS_KOP_TABLE_MAX 256u /* kernel_ops entries at most */

#define RS_HEAP_PREFAULT_MAX 1048576u /* 1 MiB */

/*
 * rs_checksum: 64-bit FNV-1a over little-endian 8-byte words.
 *   h = 0xcbf29ce484222325; for each word w: h = (h ^ w) * 0x100000001b3
 * size must be a multiple of 8.
 */
#define RS_FNV_OFFSET 0xcbf29ce484222325ull
#define RS_FNV_PRIME 0x100000001b3ull

#endif
